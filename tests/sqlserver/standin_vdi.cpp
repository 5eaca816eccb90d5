// Stand-in for SQL Server on Linux's libsqlvdi.so, for tests only.
//
// Exports the two C++ classes of the published VDI client SDK (same class names, same
// member signatures, hence the same mangled symbols the agent binds), and plays SQL
// Server's side in-process: the test's fake T-SQL connection calls standin_serve() on
// its "statement" thread, which configures the set, then streams Write commands
// (backup) or issues Read commands and checks the bytes (restore), one thread per
// device.  It can misbehave on request.  Every wait is bounded.
//
// Build: g++ -std=c++17 -shared -fPIC -O1 -pthread standin_vdi.cpp -o libsqlvdi.so

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern "C" {

struct VDConfig {
    uint32_t deviceCount;
    uint32_t features;
    uint32_t prefixZoneSize;
    uint32_t alignment;
    uint32_t softFileMarkBlockSize;
    uint32_t EOMWarningSize;
    uint32_t serverTimeOut;
    uint32_t blockSize;
    uint32_t maxIODepth;
    uint32_t maxTransferSize;
    uint32_t bufferAreaSize;
};

struct VDC_Command {
    int32_t commandCode;
    int32_t size;
    int64_t position;
    uint8_t* buffer;
};

}  // extern "C"

namespace {

const int VD_E_NOTOPEN = static_cast<int>(0x80770002u);
const int VD_E_TIMEOUT = static_cast<int>(0x80770003u);
const int VD_E_ABORT = static_cast<int>(0x80770004u);
const int VD_E_INVALID = static_cast<int>(0x80770006u);
const int VD_E_NOTSUPPORTED = static_cast<int>(0x80770009u);
const int VD_E_CLOSE = static_cast<int>(0x8077000Eu);

using Clock = std::chrono::steady_clock;

struct Device {
    std::string name;
    bool opened = false;
    bool server_closed = false;
    bool posted = false;      // a command waits for GetCommand
    bool fetched = false;     // the client holds it
    bool completed = false;   // the client completed it
    VDC_Command cmd{};
    int completion = 0;
    unsigned long transferred = 0;
    std::vector<uint8_t> buffer;
};

struct Set {
    std::mutex m;
    std::condition_variable cv;
    std::string name;
    VDConfig cfg{};
    bool configured = false;
    bool aborted = false;
    bool closed = false;
    std::vector<std::unique_ptr<Device>> devices;
};

std::mutex registry_mutex;
std::condition_variable registry_cv;
std::map<std::string, std::shared_ptr<Set>> registry;

}  // namespace

class ClientVirtualDeviceSet;

class ClientVirtualDevice {
public:
    ClientVirtualDevice();
    ~ClientVirtualDevice();
    int GetCommand(time_t timeOut, VDC_Command** ppCmd);
    int CompleteCommand(VDC_Command* pCmd, int completionCode, unsigned long bytesTransferred,
                        int64_t position);

private:
    void* impl;  // StandinDevice*
    friend class ClientVirtualDeviceSet;
};

class ClientVirtualDeviceSet {
public:
    int Create(char* name, VDConfig* cfg);
    int GetConfiguration(time_t timeout, VDConfig* cfg);
    int OpenDevice(char* name, ClientVirtualDevice** ppVirtualDevice);
    int Close();
    int SignalAbort();
    int OpenInSecondary(char* setName);
    int GetBufferHandle(uint8_t* pBuffer, unsigned int* pBufferHandle);
    int MapBufferHandle(int dwBuffer, uint8_t** ppBuffer);
    void RegisterDeviceClosed();
    ClientVirtualDeviceSet();
    ~ClientVirtualDeviceSet();

private:
    void* impl;  // shared_ptr<Set>* (same size as the SDK's one pointer)
};

namespace {

struct StandinDevice {
    std::shared_ptr<Set> set;
    Device* device;
};

std::shared_ptr<Set>* holder(void* impl) { return static_cast<std::shared_ptr<Set>*>(impl); }

template <class Pred>
bool wait_ms(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, long ms, Pred pred) {
    return cv.wait_for(lock, std::chrono::milliseconds(ms < 0 ? 0 : ms), pred);
}

}  // namespace

ClientVirtualDevice::ClientVirtualDevice() : impl(nullptr) {}
ClientVirtualDevice::~ClientVirtualDevice() { delete static_cast<StandinDevice*>(impl); }

int ClientVirtualDevice::GetCommand(time_t timeOut, VDC_Command** ppCmd) {
    auto* sd = static_cast<StandinDevice*>(impl);
    Set& s = *sd->set;
    Device& d = *sd->device;
    std::unique_lock<std::mutex> lock(s.m);
    wait_ms(lock, s.cv, static_cast<long>(timeOut),
            [&] { return s.aborted || d.server_closed || (d.posted && !d.fetched); });
    if (s.aborted) return VD_E_ABORT;
    if (d.posted && !d.fetched) {
        d.fetched = true;
        *ppCmd = &d.cmd;
        return 0;
    }
    if (d.server_closed) return VD_E_CLOSE;
    return VD_E_TIMEOUT;
}

int ClientVirtualDevice::CompleteCommand(VDC_Command* pCmd, int completionCode,
                                         unsigned long bytesTransferred, int64_t) {
    auto* sd = static_cast<StandinDevice*>(impl);
    Set& s = *sd->set;
    Device& d = *sd->device;
    std::lock_guard<std::mutex> lock(s.m);
    if (pCmd != &d.cmd || !d.fetched || d.completed) return VD_E_INVALID;
    d.completed = true;
    d.completion = completionCode;
    d.transferred = bytesTransferred;
    s.cv.notify_all();
    return 0;
}

ClientVirtualDeviceSet::ClientVirtualDeviceSet() : impl(nullptr) {}
ClientVirtualDeviceSet::~ClientVirtualDeviceSet() {
    if (impl) Close();
}

int ClientVirtualDeviceSet::Create(char* name, VDConfig* cfg) {
    if (impl || !name || !cfg || cfg->deviceCount < 1 || cfg->deviceCount > 64) return VD_E_INVALID;
    auto set = std::make_shared<Set>();
    set->name = name;
    set->cfg = *cfg;
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (registry.count(set->name)) return VD_E_INVALID;
    registry[set->name] = set;
    impl = new std::shared_ptr<Set>(set);
    registry_cv.notify_all();
    return 0;
}

int ClientVirtualDeviceSet::GetConfiguration(time_t timeout, VDConfig* cfg) {
    if (!impl) return VD_E_NOTOPEN;
    Set& s = **holder(impl);
    std::unique_lock<std::mutex> lock(s.m);
    wait_ms(lock, s.cv, static_cast<long>(timeout), [&] { return s.configured || s.aborted; });
    if (s.aborted) return VD_E_ABORT;
    if (!s.configured) return VD_E_TIMEOUT;
    *cfg = s.cfg;
    return 0;
}

int ClientVirtualDeviceSet::OpenDevice(char* name, ClientVirtualDevice** ppVirtualDevice) {
    if (!impl) return VD_E_NOTOPEN;
    std::shared_ptr<Set> set = *holder(impl);
    std::lock_guard<std::mutex> lock(set->m);
    if (!set->configured) return VD_E_NOTOPEN;
    if (set->aborted) return VD_E_ABORT;
    for (auto& d : set->devices) {
        if (d->name == name && !d->opened) {
            d->opened = true;
            auto* client = new ClientVirtualDevice();
            client->impl = new StandinDevice{set, d.get()};
            *ppVirtualDevice = client;
            set->cv.notify_all();
            return 0;
        }
    }
    return VD_E_INVALID;
}

int ClientVirtualDeviceSet::Close() {
    if (!impl) return VD_E_NOTOPEN;
    std::shared_ptr<Set>* h = holder(impl);
    {
        std::lock_guard<std::mutex> lock((*h)->m);
        (*h)->closed = true;
        (*h)->cv.notify_all();
    }
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        registry.erase((*h)->name);
    }
    delete h;
    impl = nullptr;
    return 0;
}

int ClientVirtualDeviceSet::SignalAbort() {
    if (!impl) return VD_E_NOTOPEN;
    Set& s = **holder(impl);
    std::lock_guard<std::mutex> lock(s.m);
    s.aborted = true;
    s.cv.notify_all();
    return 0;
}

int ClientVirtualDeviceSet::OpenInSecondary(char*) { return VD_E_NOTSUPPORTED; }
int ClientVirtualDeviceSet::GetBufferHandle(uint8_t*, unsigned int*) { return VD_E_NOTSUPPORTED; }
int ClientVirtualDeviceSet::MapBufferHandle(int, uint8_t**) { return VD_E_NOTSUPPORTED; }
void ClientVirtualDeviceSet::RegisterDeviceClosed() {}

// ---------------------------------------------------------------------------------------
// The server side, driven by the tests.

extern "C" {

enum StandinMode { STANDIN_BACKUP = 1, STANDIN_RESTORE = 2 };

enum StandinMisbehaviour {
    STANDIN_NORMAL = 0,
    STANDIN_NEVER_CONFIGURE = 1,   // never answers GetConfiguration
    STANDIN_ABORT_MID_STREAM = 2,  // aborts after the first data command
    STANDIN_UNSUPPORTED = 3,       // sends GetPosition (9) first; expects 50, then goes on
    STANDIN_STALL = 4,             // configures, then never sends a command nor closes
    STANDIN_FAIL_AT_END = 5,       // streams everything, then the statement fails
};

struct StandinResult {
    int32_t status;             // 0 success, else a SQL Server error number
    int32_t unsupported_seen;   // completions with 50 for command 9
    int64_t bytes;              // bytes moved (all devices)
    int32_t commands;           // data commands completed
    char message[256];
};

}  // extern "C"

namespace {

struct Job {
    std::shared_ptr<Set> set;
    Device* device;
    const uint8_t* data;
    size_t length;
    int mode;
    int misbehave;
    long timeout_ms;
    // results
    int status = 0;
    int unsupported_seen = 0;
    int commands = 0;
    int64_t bytes = 0;
    std::string message;
};

// Posts one command and waits for its completion.  Returns false on abort or timeout.
bool roundtrip(Job& job, int code, int32_t size, std::string& why) {
    Set& s = *job.set;
    Device& d = *job.device;
    std::unique_lock<std::mutex> lock(s.m);
    d.cmd = VDC_Command{code, size, 0, d.buffer.data()};
    d.posted = true;
    d.fetched = false;
    d.completed = false;
    s.cv.notify_all();
    bool ok = wait_ms(lock, s.cv, job.timeout_ms, [&] { return d.completed || s.aborted; });
    d.posted = false;
    if (s.aborted) {
        why = "the client aborted the virtual device (995)";
        return false;
    }
    if (!ok) {
        why = "the client did not complete a command in time (VD_E_TIMEOUT)";
        s.aborted = true;
        s.cv.notify_all();
        return false;
    }
    return true;
}

void fail(Job& job, int status, const std::string& why) {
    job.status = status;
    job.message = why;
    std::lock_guard<std::mutex> lock(job.set->m);
    job.set->aborted = true;
    job.set->cv.notify_all();
}

void close_device(Job& job) {
    std::lock_guard<std::mutex> lock(job.set->m);
    job.device->server_closed = true;
    job.set->cv.notify_all();
}

void run_backup(Job& job, uint32_t mts) {
    std::string why;
    size_t offset = 0;
    while (offset < job.length) {
        int32_t size = static_cast<int32_t>(std::min<size_t>(mts, job.length - offset));
        memcpy(job.device->buffer.data(), job.data + offset, size);
        if (!roundtrip(job, 2, size, why)) return fail(job, 3013, why);
        if (job.device->completion != 0 || job.device->transferred != static_cast<unsigned long>(size)) {
            return fail(job, 3013, "write failed: completion " + std::to_string(job.device->completion));
        }
        offset += size;
        job.bytes += size;
        job.commands++;
        if (job.misbehave == STANDIN_ABORT_MID_STREAM) return fail(job, 3013, "server aborted mid-stream");
    }
    if (!roundtrip(job, 12, 0, why)) return fail(job, 3013, why);  // Flush
    if (job.device->completion != 0) return fail(job, 3013, "flush failed");
    close_device(job);
}

void run_restore(Job& job, uint32_t mts) {
    std::string why;
    std::vector<uint8_t> got;
    for (;;) {
        if (!roundtrip(job, 1, static_cast<int32_t>(mts), why)) return fail(job, 3013, why);
        int completion = job.device->completion;
        unsigned long n = job.device->transferred;
        if (completion == 38) break;
        if (completion != 0) return fail(job, 3013, "read failed: completion " + std::to_string(completion));
        if (n > mts) return fail(job, 3013, "read overran the buffer");
        got.insert(got.end(), job.device->buffer.data(), job.device->buffer.data() + n);
        job.bytes += static_cast<int64_t>(n);
        job.commands++;
        if (job.misbehave == STANDIN_ABORT_MID_STREAM) return fail(job, 3013, "server aborted mid-stream");
        if (got.size() > job.length) break;
    }
    if (got.size() != job.length) {
        return fail(job, 3203, "read " + std::to_string(got.size()) + " bytes, expected " +
                                   std::to_string(job.length) + " (short read)");
    }
    if (job.length && memcmp(got.data(), job.data, job.length) != 0) {
        size_t at = 0;
        while (got[at] == job.data[at]) at++;
        return fail(job, 3183, "restored bytes differ at offset " + std::to_string(at));
    }
    close_device(job);
}

void run_device(Job* job, uint32_t mts) {
    std::string why;
    if (job->misbehave == STANDIN_UNSUPPORTED) {
        if (!roundtrip(*job, 9, 0, why)) return fail(*job, 3013, why);
        if (job->device->completion == 50) job->unsupported_seen++;
        if (!roundtrip(*job, 3, 0, why)) return fail(*job, 3013, why);  // ClearError
    }
    if (job->mode == STANDIN_BACKUP) run_backup(*job, mts);
    else run_restore(*job, mts);
}

std::vector<std::string> split(const char* names) {
    std::vector<std::string> out;
    std::string cur;
    for (const char* p = names; *p; ++p) {
        if (*p == '\n') { out.push_back(cur); cur.clear(); }
        else cur += *p;
    }
    out.push_back(cur);
    return out;
}

void report(StandinResult* out, int status, const std::string& message) {
    out->status = status;
    snprintf(out->message, sizeof(out->message), "%s", message.c_str());
}

}  // namespace

extern "C" {

// Plays SQL Server for one BACKUP (mode 1) or RESTORE (mode 2) through the device set
// named by the first of device_names ('\n'-separated).  data[i] / lengths[i]: what device
// i sends (backup) or must receive (restore).  Blocks until done; never longer than about
// a few multiples of timeout_ms.
void standin_serve(const char* device_names, int mode, const uint8_t* const* data,
                   const size_t* lengths, uint32_t max_transfer_size, uint32_t buffer_count,
                   uint32_t block_size, int misbehave, int timeout_ms, StandinResult* out) {
    memset(out, 0, sizeof(*out));
    std::vector<std::string> names = split(device_names);
    std::shared_ptr<Set> set;
    {
        std::unique_lock<std::mutex> lock(registry_mutex);
        registry_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [&] { return registry.count(names[0]) > 0; });
        if (!registry.count(names[0])) return report(out, 3201, "virtual device set not found");
        set = registry[names[0]];
    }
    std::vector<Device*> devices;
    {
        std::unique_lock<std::mutex> lock(set->m);
        if (set->cfg.deviceCount != names.size()) {
            set->aborted = true;
            set->cv.notify_all();
            return report(out, 3205, "device count does not match the statement");
        }
        if (misbehave == STANDIN_NEVER_CONFIGURE) {
            wait_ms(lock, set->cv, timeout_ms, [&] { return set->aborted || set->closed; });
            return report(out, 3013, "the client never opened the virtual devices");
        }
        for (auto& n : names) {
            auto d = std::make_unique<Device>();
            d->name = n;
            d->buffer.assign(max_transfer_size, 0);
            devices.push_back(d.get());
            set->devices.push_back(std::move(d));
        }
        set->cfg.blockSize = block_size;
        set->cfg.maxIODepth = buffer_count;
        set->cfg.maxTransferSize = max_transfer_size;
        set->cfg.bufferAreaSize = buffer_count * max_transfer_size;
        set->configured = true;
        set->cv.notify_all();
        bool opened = wait_ms(lock, set->cv, timeout_ms, [&] {
            if (set->aborted) return true;
            for (auto* d : devices) if (!d->opened) return false;
            return true;
        });
        if (set->aborted) return report(out, 3013, "the client aborted before opening the devices");
        if (!opened) {
            set->aborted = true;
            set->cv.notify_all();
            return report(out, 3013, "the client did not open every device in time");
        }
        if (misbehave == STANDIN_STALL) {
            wait_ms(lock, set->cv, timeout_ms * 4, [&] { return set->aborted; });
            return report(out, 3013, set->aborted ? "aborted while stalled" : "stalled");
        }
    }
    std::vector<std::unique_ptr<Job>> jobs;
    std::vector<std::thread> threads;
    for (size_t i = 0; i < devices.size(); ++i) {
        auto job = std::make_unique<Job>();
        job->set = set;
        job->device = devices[i];
        job->data = data[i];
        job->length = lengths[i];
        job->mode = mode;
        job->misbehave = misbehave;
        job->timeout_ms = timeout_ms;
        threads.emplace_back(run_device, job.get(), max_transfer_size);
        jobs.push_back(std::move(job));
    }
    for (auto& t : threads) t.join();
    for (auto& j : jobs) {
        out->bytes += j->bytes;
        out->commands += j->commands;
        out->unsupported_seen += j->unsupported_seen;
    }
    for (auto& j : jobs) {
        if (j->status) return report(out, j->status, j->message);
    }
    if (misbehave == STANDIN_FAIL_AT_END) return report(out, 3041, "writing backup history failed");
    report(out, 0, "ok");
}

// How many device sets are registered (created and not yet closed): leak detection.
int standin_open_sets() {
    std::lock_guard<std::mutex> lock(registry_mutex);
    return static_cast<int>(registry.size());
}

}  // extern "C"

"""Storage rights and keys per job, end to end: the real operator grants each claimed job
exactly what it needs, sealed to the claiming session, and Azurite enforces the SAS.

One stack per module: agent ``gvm`` (a real process) backs up ``sales`` on ``sim-a``;
agent ``thief`` is enrolled for ``sim-t`` but played by the test, which claims thief's jobs
with its own session key, opens the operator's grants and tries, with exactly those rights,
everything an attacker on thief's VM would: read, list and delete ``sales``' points, read
its own new point back, read blobs outside a restore's plan.  The last test tampers with
``sales``' manifests in the vault and shows the restore fails before any data moves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient
from sqlharbor_agent.engines.simulated import open_simulated_engine
from sqlharbor_agent.grants import vault_of
from sqlharbor_devtools.demo.stack import Stack
from sqlharbor_devtools.devenv.controlplane import ControlPlane

from sqlharbor import __version__
from sqlharbor.api import API_VERSION, ErrorInfo, JobPhase, JobReason, RestorePhase, contract
from sqlharbor.api.contract.grants import BackupGrant, RestoreGrant, open_grant
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor.api.instance import AgentInfo
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import ErrorCode, IntegrityError, KeyUnavailable, VaultAccessDenied
from sqlharbor.kube import KubeClient
from sqlharbor.vault import AzureBlobStore, Layout, WriterSettings
from sqlharbor.vault.catalog_lines import entry_line
from sqlharbor.vault.store_sas import BlobSasStore, ContainerSasStore
from tests.builders.records import backup_record

from .harness import E2E, module_e2e

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SOURCE_ID = "gvm1"
THIEF_ID = "tvm1"
LOOT_GUID = "5e5e5e5e-0000-4000-8000-000000000001"
#: above any real LSN (numeric(25,0)): a "latest" restore would pick the forged full
FORGED_LSN = 10**24


@dataclass(frozen=True)
class Env:
    e2e: E2E
    thief: KubeClient
    thief_session: contract.AgentSession  # holds thief's Lease
    admin_store: AzureBlobStore  # the vault container with the account key (the admin's)

    @property
    def stack(self) -> Stack:
        return self.e2e.stack

    @property
    def ns(self) -> str:
        return self.e2e.namespace


@pytest.fixture(scope="module")
def env(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with module_e2e(control_plane, tmp_path_factory.mktemp("grants-e2e"), "e2e-g") as e2e:
        stack = e2e.stack
        e2e.apply_vault_and_policy(full="0 1 * * 0", differential=None, log="30s")
        e2e.instance("sim-a", SOURCE_ID, {"sales": "FULL"})
        e2e.instance("sim-t", THIEF_ID, {"loot": "FULL"})
        e2e.protect("sim-a", "sales")
        stack.start_workload("w", e2e.root, SOURCE_ID, ["sales"], rate=20)
        stack.start_operator()
        e2e.start_agent("gvm", ["sim-a"])
        thief = KubeClient.from_kubeconfig(str(stack.enroll_agent("thief", ["sim-t"])))
        session = _register(thief, stack.namespace)

        def window() -> bool:
            return int(e2e.pd_status("sim-a-sales").get("recoveryPoints", 0)) >= 3

        e2e.wait("a full and two logs of sales", window, timeout=150)
        store = AzureBlobStore.from_connection_string(
            stack.plane.blob_connection_string, e2e.container, create=False
        )
        yield Env(e2e, thief, session, store)


def _register(thief: KubeClient, namespace: str) -> contract.AgentSession:
    """What agent thief's process would do at start: its Lease (for ten minutes, the whole
    module) and its session in sim-t's status, so the operator counts sim-t as served."""
    session = contract.AgentSession("thief", uuid.uuid4().hex[:12])
    lease = contract.lease_object(session, 600, datetime.now(UTC))
    thief.call("create lease", thief.coordination.create_namespaced_lease, namespace, lease)
    agent = AgentInfo(
        session_id=session.token,
        version=__version__,
        hostname=THIEF_ID,
        lease_name=contract.lease_name("thief"),
        started=datetime.now(UTC),
    )
    thief.patch_status("SqlInstance", namespace, "sim-t", {"agent": agent.to_wire()})
    return session


def _claim(env: Env, kind: str, name: str, key: SessionKey) -> dict[str, Any]:
    """Claim ``name`` as agent thief (against the version read), then await the grant."""
    obj = env.thief.get_raw(kind, env.ns, name)
    session = env.thief_session
    claimed = env.thief.patch_status(
        kind,
        env.ns,
        name,
        contract.claim(kind, session, key.public_text, datetime.now(UTC)),
        resource_version=obj["metadata"]["resourceVersion"],
    )
    assert claimed["status"]["agentKey"] == key.public_text

    def granted() -> dict[str, Any] | None:
        current = env.thief.get_raw(kind, env.ns, name)
        return current if (current.get("status") or {}).get("grant") else None

    result: dict[str, Any] = env.e2e.wait(f"the operator's grant of {name}", granted, 60)
    return result


def _end(env: Env, kind: str, name: str) -> None:
    done = ErrorInfo(code=ErrorCode.AGENT_INTERNAL_ERROR, message="test done", remediation="-")
    env.thief.patch_status(kind, env.ns, name, contract.failed(kind, done, datetime.now(UTC)))


def _sales_manifests(env: Env) -> list[str]:
    names = [b.name for b in env.admin_store.list("demo/") if b.name.endswith("manifest.json")]
    return sorted(n for n in names if f"/{SOURCE_ID}/" in n)


def _refused(action: Callable[[], object]) -> VaultAccessDenied:
    with pytest.raises(VaultAccessDenied) as caught:
        action()
    return caught.value


def _backup_job(env: Env) -> str:
    """An on-demand full of thief's ``loot``, assigned by the operator to agent thief."""
    name = f"b-{uuid.uuid4().hex[:6]}"
    env.stack.client.create(
        "BackupJob",
        env.ns,
        {
            "apiVersion": API_VERSION,
            "kind": "BackupJob",
            "metadata": {"name": name},
            "spec": {
                "instanceRef": {"name": "sim-t"},
                "vaultRef": {"name": "demo-vault"},
                "type": "Full",
                "reason": JobReason.ON_DEMAND.value,
                "databases": [{"name": "loot"}],
            },
        },
    )

    def assigned() -> bool:  # the operator labels it for sim-t's agent
        labels = env.thief.get_raw("BackupJob", env.ns, name)["metadata"].get("labels") or {}
        return labels.get(contract.LABEL_AGENT) == "thief"

    env.e2e.wait(f"BackupJob {name} assigned to agent thief", assigned, 60)
    return name


def test_a_backup_grant_creates_new_points_and_nothing_else(env: Env) -> None:
    name = _backup_job(env)
    key = SessionKey()
    job = _claim(env, "BackupJob", name, key)
    with pytest.raises(IntegrityError, match="sealed to session key"):
        open_grant("BackupJob", job, SessionKey())  # another process (or VM) cannot open it
    grant = open_grant("BackupJob", job, key)
    assert isinstance(grant, BackupGrant)
    assert "sp=cw&" in grant.sas + "&"
    assert grant.sas not in json.dumps(job)  # only sealed in the job

    store = ContainerSasStore.open(grant.account_url, grant.container, grant.sas)
    theirs = _sales_manifests(env)
    assert theirs
    _refused(lambda: store.get(theirs[0]))
    _refused(lambda: list(store.list("demo/")))
    _refused(lambda: store.delete(theirs[0]))
    assert env.admin_store.exists(theirs[0])

    # its own new point: written and committed, then neither readable nor decryptable
    vault = vault_of(grant, WriterSettings(chunk_size=64 * 1024))
    writer = vault.open_writer(
        THIEF_ID, "loot", "5e5e5e5e-0000-4000-8000-000000000001", BackupType.FULL
    )
    writer.write(b"loot pages" * 1000)
    manifest = writer.commit(backup_record(guid="5e5e5e5e-0000-4000-8000-000000000001"))
    assert manifest.encryption.data_key.wrap == "RSA-OAEP-256"
    point = manifest.identity.recovery_point_id
    _refused(lambda: vault.manifest(THIEF_ID, manifest.identity.database_id, point))
    with pytest.raises(KeyUnavailable, match="holds only the vault's public key"):
        vault.open_reader(manifest)
    _end(env, "BackupJob", name)


def test_a_restore_grant_reads_exactly_its_plan(env: Env) -> None:
    name = f"r-{uuid.uuid4().hex[:6]}"
    doc = {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": name},
        "spec": {
            "source": {"protectedDatabase": "sim-a-sales"},
            "target": {"database": {"instanceRef": {"name": "sim-t"}, "databaseName": "copy"}},
            "pointInTime": {"latest": True},
        },
    }
    env.stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))

    def planned() -> bool:
        obj = env.thief.get_raw("RestoreJob", env.ns, name)
        return contract.phase_of(obj) == RestorePhase.PLANNED

    env.e2e.wait(f"RestoreJob {name} planned for agent thief", planned, 60)
    key = SessionKey()
    job = _claim(env, "RestoreJob", name, key)
    grant = open_grant("RestoreJob", job, key)
    assert isinstance(grant, RestoreGrant)
    plan = job["status"]["plan"]
    points = [s["recoveryPointId"] for s in plan["steps"]]
    assert sorted(grant.data_keys) == sorted(points)
    layout = Layout(grant.prefix)
    manifests = {layout.manifest_blob(plan["instance"], plan["databaseGuid"], p) for p in points}
    assert manifests <= set(grant.blobs)
    assert all(b.startswith(tuple(m.rsplit("/", 1)[0] for m in manifests)) for b in grant.blobs)

    vault = vault_of(grant, WriterSettings())
    for point in points:  # the plan: readable and its keys open it
        vault.authenticate(vault.manifest(plan["instance"], plan["databaseGuid"], point))
    outside = [m for m in _sales_manifests(env) if m not in manifests]
    if not outside:  # logs keep coming every 30 s
        env.e2e.wait(
            "a sales point outside the plan",
            lambda: [m for m in _sales_manifests(env) if m not in manifests],
            60,
        )
        outside = [m for m in _sales_manifests(env) if m not in manifests]
    store = BlobSasStore.open(grant.account_url, grant.container, grant.blobs)
    _refused(lambda: store.get(outside[0]))  # refused here ...
    token = next(iter(grant.blobs.values()))
    other = BlobClient.from_blob_url(
        f"{grant.account_url}/{grant.container}/{outside[0]}", credential=token
    )
    with pytest.raises(HttpResponseError) as by_server:  # ... and by the storage service
        other.download_blob().readall()
    assert getattr(by_server.value, "status_code", None) == 403
    _refused(lambda: store.delete(sorted(manifests)[0]))
    _end(env, "RestoreJob", name)


def test_a_point_forged_with_a_backup_grant_is_never_planned(env: Env) -> None:
    """With its backup grant, thief writes a self-consistent full of *sales* (its own data
    key, wrapped with the vault's public key) newer than any real one, and appends catalog
    lines for it to sales' segments (append is a write).  The operator made the vault
    require endorsement when it first opened it, so its restore plan ignores the lines."""
    layout = Layout("demo")
    assert env.admin_store.exists(layout.endorsement_marker()), "a new vault requires it"
    name = _backup_job(env)
    key = SessionKey()
    grant = open_grant("BackupJob", _claim(env, "BackupJob", name, key), key)
    assert isinstance(grant, BackupGrant)
    guid = str(env.e2e.pd_status("sim-a-sales")["databaseGuid"])
    forged_id = "20200101T000000Z-F-f0f0f0f0"  # sorts before every real point of sales
    vault = vault_of(grant, WriterSettings(chunk_size=64 * 1024))
    writer = vault.open_writer(
        SOURCE_ID, "sales", guid, BackupType.FULL, recovery_point_id=forged_id
    )
    writer.write(b"planted pages" * 1000)
    now = datetime.now(UTC)
    forged = writer.commit(
        backup_record(
            name="sales", guid=guid, first_lsn=FORGED_LSN, last_lsn=FORGED_LSN + 10, start=now
        )
    )
    line = entry_line(forged.recovery_point())
    for segment in (
        layout.points_segment(SOURCE_ID, guid, forged.backup.finish),
        layout.bases_segment(SOURCE_ID, guid, forged.backup.finish.year),
    ):
        vault.store.append(segment, line)  # the grant's w allows appending
    assert line in env.admin_store.get(layout.points_segment(SOURCE_ID, guid, now))
    _end(env, "BackupJob", name)

    restore = f"f-{uuid.uuid4().hex[:6]}"
    doc = {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": restore},
        "spec": {
            "source": {"protectedDatabase": "sim-a-sales"},
            "target": {"database": {"instanceRef": {"name": "sim-t"}, "databaseName": "f"}},
            "pointInTime": {"latest": True},
        },
    }
    env.stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))

    def plan() -> dict[str, Any] | None:
        status = env.stack.client.get_raw("RestoreJob", env.ns, restore).get("status") or {}
        return status.get("plan") if status.get("phase") == RestorePhase.PLANNED else None

    steps = env.e2e.wait(f"{restore} planned", plan, 60)["steps"]
    assert steps, "a plan of real points"
    assert forged_id not in [s["recoveryPointId"] for s in steps]
    assert all(int(s["lastLsn"]) < FORGED_LSN for s in steps)
    env.stack.kubectl("delete", "restorejob", restore, "--wait=false")


def test_a_tampered_point_fails_the_restore_before_data_moves(env: Env) -> None:
    manifests = _sales_manifests(env)
    edited, copied_over, source = manifests[-1], manifests[-2], manifests[-3]
    doc = json.loads(env.admin_store.get(edited))
    doc["backup"]["database_name"] = "forged"
    env.admin_store.put(edited, json.dumps(doc).encode())
    env.admin_store.put(copied_over, env.admin_store.get(source))

    name = f"t-{uuid.uuid4().hex[:6]}"
    restore = {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": name},
        "spec": {
            "source": {"protectedDatabase": "sim-a-sales"},
            "target": {"database": {"instanceRef": {"name": "sim-a"}, "databaseName": "tamper"}},
            "pointInTime": {"latest": True},
        },
    }
    env.stack.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(restore))

    def failed() -> dict[str, Any] | None:
        status = env.stack.client.get_raw("RestoreJob", env.ns, name).get("status") or {}
        return dict(status) if status.get("phase") == JobPhase.FAILED else None

    status = env.e2e.wait(f"RestoreJob {name} refused", failed, 90)
    assert status["error"]["code"] == ErrorCode.VAULT_INTEGRITY_FAILURE, status
    assert "grant" not in status  # the agent never got the data or a key
    engine = open_simulated_engine(Path(env.e2e.root), SOURCE_ID)
    assert "tamper" not in {d.name for d in engine.discover()}

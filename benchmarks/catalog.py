"""Benchmark 5: the vault catalog at a year of one-minute log backups.

525,600 log points (plus a weekly full and daily differentials) are written straight
into the catalog (``Catalog.add_points``, no backups).  Then, on Azurite: planning a
point-in-time restore (``Catalog.base_before`` + ``Catalog.list_points`` +
``sqlharbor.domain.planner.plan_restore``) and reading the recovery window
(``Catalog.window``), each timed and with its blob reads and listings counted.
Targets: <= 2 s and at most a few hundred blob reads each.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from benchmarks.common import Azurite, Config, Result, median, spread
from sqlharbor.domain.backupset import BackupType, RecoveryPoint
from sqlharbor.domain.planner import AtTime, plan_restore
from sqlharbor.vault import AzureBlobStore, Catalog, Layout
from tests.builders.records import LOG_LSNS, catalog_history
from tests.builders.stores import CountingStore

NAME = "catalog"
INSTANCE = "VM01\\SQL2022"
GUID = "0b3c9d7e-1111-4222-8333-944455556666"
START = datetime(2025, 1, 1, tzinfo=UTC)
MAX_READS = 300
FULL_ONLY = frozenset({BackupType.FULL})


def _base_at(moment: datetime) -> BackupType | None:
    """A full at the start and every Sunday 01:00; a differential at 01:00 on other days."""
    if moment == START:
        return BackupType.FULL
    if (moment.hour, moment.minute) != (1, 0):
        return None
    return BackupType.FULL if moment.weekday() == 6 else BackupType.DIFFERENTIAL


def history(days: int) -> list[RecoveryPoint]:
    """One log a minute for ``days`` days; a full every Sunday 01:00, differentials daily.
    A base ends 20 minutes later, at the LSN the log has reached by then."""
    return catalog_history(
        start=START,
        end=START + timedelta(days=days),
        step=timedelta(minutes=1),
        base_at=_base_at,
        base_lsns=20 * LOG_LSNS,
        name="Orders",
        guid=GUID,
    )


def run(config: Config) -> Result:
    result = Result(NAME)
    days = config.pick(365, 30, 2)
    queries = config.pick(5, 3, 1)
    with Azurite(config.workdir / "azurite-catalog") as azurite:
        inner = AzureBlobStore.from_connection_string(azurite.connection_string, "catalog-bench")
        store = CountingStore(inner)
        catalog = Catalog(store, Layout("bench"))
        began = time.perf_counter()
        points = history(days)
        built = time.perf_counter() - began
        catalog.register(INSTANCE, "Orders", GUID)
        catalog.add_points(INSTANCE, points)
        written = time.perf_counter() - began - built
        logs = sum(p.record.backup_type is BackupType.LOG for p in points)
        result.details.update(
            days=days,
            points=len(points),
            log_points=logs,
            build_seconds=built,
            write_seconds=written,
        )
        rng = random.Random(1)
        plan_times: list[float] = []
        plan_reads: list[int] = []
        plan_lists: list[int] = []
        chain_lengths: list[int] = []
        for _ in range(queries):
            offset = rng.uniform(0.2, 0.95) * days * 86400
            target = START + timedelta(seconds=offset)
            store.reset()
            t0 = time.perf_counter()
            base = catalog.base_before(INSTANCE, GUID, target)
            assert base is not None
            full = catalog.base_before(INSTANCE, GUID, target, types=FULL_ONLY)
            assert full is not None
            bases = catalog.bases(INSTANCE, GUID, full.record.finish, target)
            logs_after = catalog.list_points(
                INSTANCE, GUID, base.record.finish, target + timedelta(minutes=5)
            )
            plan = plan_restore([*bases, *logs_after], AtTime(target))
            plan_times.append(time.perf_counter() - t0)
            plan_reads.append(len(store.reads))
            plan_lists.append(len(store.lists))
            chain_lengths.append(len(plan.logs))
        window_times: list[float] = []
        window_reads: list[int] = []
        for _ in range(queries):
            store.reset()
            t0 = time.perf_counter()
            window = catalog.window(INSTANCE, GUID)
            window_times.append(time.perf_counter() - t0)
            window_reads.append(len(store.reads) + len(store.lists))
            assert window.latest is not None
    result.add(
        f"plan point-in-time restore ({logs:,} log points)",
        median(plan_times),
        "s",
        target="<= 2 s",
        met=max(plan_times) <= 2.0,
        spread=spread(plan_times),
        note=f"blob reads {max(plan_reads)} + listings {max(plan_lists)} (max); "
        f"chain {median(chain_lengths):.0f} logs",
    )
    result.add(
        "plan: blob reads",
        float(max(plan_reads) + max(plan_lists)),
        "reads",
        target=f"<= {MAX_READS}",
        met=max(plan_reads) + max(plan_lists) <= MAX_READS,
    )
    result.add(
        "recovery window",
        median(window_times),
        "s",
        target="<= 2 s",
        met=max(window_times) <= 2.0,
        spread=spread(window_times, 3),
        note=f"{max(window_reads)} blob reads+listings; catalog written in {written:.0f} s",
    )
    return result

"""The operator-agent contract with real processes: an agent cut off past its Lease (SIGSTOP)
has its job failed ``AgentLost`` by the operator; when it wakes and reports the backup it
finished, the API server refuses the write, the job stays Failed, and the database's
status accounts the job once, as the failure the server holds."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from sqlharbor.api import JobPhase
from sqlharbor.errors import ErrorCode

from .harness import E2E
from .test_backup_e2e import FAST, _fill

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_an_agent_cut_off_past_its_lease_cannot_undo_agent_lost(e2e: E2E) -> None:
    e2e.apply_vault_and_policy(**FAST)
    identity = e2e.instance("sim1", "vm1", {"big": "FULL"})
    _fill(e2e.root, identity, "big", rows=400, size=256 * 1024)  # ~100 MB, incompressible
    e2e.protect("sim1", "big")
    e2e.stack.start_operator()
    agent = e2e.start_agent(
        "vm1",
        ["sim1"],
        uploadConcurrency=1,
        chunkSize=65536,
        leaseSeconds=4,
        heartbeatSeconds=1,
    )

    name = e2e.wait("a full backup in progress", e2e.job_moving_bytes)["metadata"]["name"]

    def job_status() -> dict[str, Any]:
        return dict(e2e.stack.client.get_raw("BackupJob", e2e.namespace, name).get("status") or {})

    agent.popen.send_signal(signal.SIGSTOP)
    try:
        e2e.wait(
            "the operator fails the job AgentLost",
            lambda: (job_status().get("error") or {}).get("code") == ErrorCode.AGENT_LOST,
            timeout=60,
        )
        failed = job_status()
    finally:
        agent.popen.send_signal(signal.SIGCONT)
    e2e.wait(
        "the woken agent finishes the backup and its outcome is refused",
        lambda: "the outcome of this backup job was refused" in agent.log.read_text(),
        timeout=240,
    )
    assert job_status() == failed, "a finished job never changes"
    assert failed["phase"] == JobPhase.FAILED

    pd = e2e.pd_status("sim1-big")
    assert (pd.get("lastError") or {}).get("code") == ErrorCode.AGENT_LOST
    assert pd.get("consecutiveFailures") == 1, pd
    assert "lastFull" not in pd, "the refused backup was never accounted as a success"
    e2e.wait(
        "a full by a job of its own after the lost one",
        lambda: "lastFull" in e2e.pd_status("sim1-big"),
        timeout=240,
    )
    last_full = e2e.pd_status("sim1-big")["lastFull"]
    assert last_full["job"] != name, last_full

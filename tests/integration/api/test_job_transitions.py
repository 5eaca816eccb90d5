"""The job phase state machines of ``api.contract`` as the real API server enforces them:
every illegal transition and every edit of a finished job is refused (and translated to
``TransitionRefused``, a lost race), the legal paths go through, and a write that carries a
stale resourceVersion is a ``Conflict``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sqlharbor.api import API_VERSION, ErrorInfo, JobPhase, RestorePhase, contract
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor.errors import Conflict, ErrorCode, TransitionRefused
from sqlharbor.kube import KubeClient

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ME = contract.AgentSession("vm1", "s1")
KEY = SessionKey().public_text
OTHER = contract.AgentSession("vm2", "s9")
_names = itertools.count()


@pytest.fixture
def client(control_plane: Any) -> Iterator[KubeClient]:
    kube = KubeClient.from_kubeconfig(str(control_plane.kubeconfig))
    yield kube
    kube.close()


def _backup_job(client: KubeClient, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": API_VERSION,
        "kind": "BackupJob",
        "metadata": {"name": f"job-{next(_names)}", "namespace": namespace},
        "spec": {
            "instanceRef": {"name": "sim1"},
            "vaultRef": {"name": "vault"},
            "type": "Log",
            "databases": [{"name": "sales"}],
        },
    }
    return client.create("BackupJob", namespace, body)


def _restore_job(client: KubeClient, namespace: str) -> dict[str, Any]:
    body = {
        "apiVersion": API_VERSION,
        "kind": "RestoreJob",
        "metadata": {"name": f"restore-{next(_names)}", "namespace": namespace},
        "spec": {
            "source": {"protectedDatabase": "sim1-sales"},
            "target": {"database": {"instanceRef": {"name": "sim1"}, "databaseName": "copy"}},
            "pointInTime": {"latest": True},
        },
    }
    return client.create("RestoreJob", namespace, body)


def _write(client: KubeClient, obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return client.patch_status(obj["kind"], meta["namespace"], meta["name"], body)


def _error(code: ErrorCode) -> ErrorInfo:
    return ErrorInfo(code=code, message="m", remediation=code.remediation)


def _claimed(client: KubeClient, namespace: str) -> dict[str, Any]:
    job = _backup_job(client, namespace)
    return _write(client, job, contract.claim("BackupJob", ME, KEY, NOW))


def _succeeded(client: KubeClient, namespace: str) -> dict[str, Any]:
    return _write(client, _claimed(client, namespace), contract.backup_finished([], None, NOW))


def test_the_agent_path_and_the_operator_path_are_accepted(
    client: KubeClient, namespace: str
) -> None:
    done = _succeeded(client, namespace)
    assert done["status"]["phase"] == JobPhase.SUCCEEDED
    lost = _write(
        client, _claimed(client, namespace), contract.agent_lost("BackupJob", ME.token, NOW)
    )
    assert lost["status"]["error"]["code"] == ErrorCode.AGENT_LOST
    restore = _restore_job(client, namespace)
    for body in (
        contract.restore_waiting("waiting for the vault"),
        {"phase": RestorePhase.PLANNED, "message": "planned"},
        contract.claim("RestoreJob", ME, KEY, NOW),
        {"progress": {"bytesDone": 10}},
        contract.restore_finished("restored", None, NOW),
    ):
        restore = _write(client, restore, body)
    assert restore["status"]["phase"] == RestorePhase.SUCCEEDED


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"phase": JobPhase.RUNNING}, id="back-to-running"),
        pytest.param({"phase": JobPhase.FAILED}, id="succeeded-to-failed"),
        pytest.param({"message": "edited"}, id="edit-message"),
        pytest.param({"progress": {"bytesDone": 1}}, id="late-progress"),
        pytest.param({"succeeded": 7}, id="edit-counter"),
    ],
)
def test_a_finished_job_never_changes(
    client: KubeClient, namespace: str, body: dict[str, Any]
) -> None:
    job = _succeeded(client, namespace)
    with pytest.raises(TransitionRefused, match="never changes"):
        _write(client, job, body)
    again = client.get_raw("BackupJob", namespace, job["metadata"]["name"])
    assert again["status"] == job["status"]


@pytest.mark.parametrize(
    ("kind", "steps", "illegal"),
    [
        pytest.param(
            "BackupJob",
            [{"phase": JobPhase.PENDING}],
            {"phase": JobPhase.SUCCEEDED, "agentSession": ME.token},
            id="backup-pending-to-succeeded",
        ),
        pytest.param(
            "BackupJob",
            ["claim"],
            {"phase": JobPhase.PENDING},
            id="backup-running-to-pending",
        ),
        pytest.param(
            "RestoreJob",
            [{"phase": RestorePhase.PENDING}],
            {"phase": RestorePhase.RUNNING, "agentSession": ME.token},
            id="restore-pending-to-running",
        ),
        pytest.param(
            "RestoreJob",
            [{"phase": RestorePhase.PLANNED}],
            {"phase": RestorePhase.PENDING},
            id="restore-planned-to-pending",
        ),
        pytest.param(
            "RestoreJob",
            [{"phase": RestorePhase.PLANNED}, "claim"],
            {"phase": RestorePhase.PLANNED},
            id="restore-running-to-planned",
        ),
    ],
)
def test_phases_only_move_forward(
    client: KubeClient,
    namespace: str,
    kind: str,
    steps: list[Any],
    illegal: dict[str, Any],
) -> None:
    job = _backup_job(client, namespace) if kind == "BackupJob" else _restore_job(client, namespace)
    for step in steps:
        job = _write(client, job, contract.claim(kind, ME, KEY, NOW) if step == "claim" else step)
    with pytest.raises(TransitionRefused, match="only moves forward"):
        _write(client, job, illegal)
    assert client.get_raw(kind, namespace, job["metadata"]["name"])["status"] == job["status"]


def test_a_claimed_jobs_session_never_changes(client: KubeClient, namespace: str) -> None:
    job = _claimed(client, namespace)
    with pytest.raises(TransitionRefused, match="agentSession never changes"):
        _write(client, job, {"agentSession": OTHER.token})
    with pytest.raises(TransitionRefused, match="agentSession never changes"):
        _write(client, job, {"agentSession": None})


def test_running_or_succeeded_names_its_session(client: KubeClient, namespace: str) -> None:
    job = _backup_job(client, namespace)
    for phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED):
        with pytest.raises(TransitionRefused, match="names the agent session"):
            _write(client, job, {"phase": phase})


def test_the_late_agent_loses_to_agent_lost(client: KubeClient, namespace: str) -> None:
    """The operator fails a claimed job (against the version it read); the agent, still
    alive, then reports Succeeded without a version: the server refuses it."""
    job = _claimed(client, namespace)
    meta = job["metadata"]
    client.patch_status(
        "BackupJob",
        namespace,
        meta["name"],
        contract.agent_lost("BackupJob", ME.token, NOW),
        resource_version=meta["resourceVersion"],
    )
    with pytest.raises(TransitionRefused):
        _write(client, job, contract.backup_finished([], None, NOW))
    status = client.get_raw("BackupJob", namespace, meta["name"])["status"]
    assert (status["phase"], status["error"]["code"]) == (JobPhase.FAILED, ErrorCode.AGENT_LOST)


def test_a_write_against_a_stale_version_is_a_conflict(client: KubeClient, namespace: str) -> None:
    job = _backup_job(client, namespace)
    meta = job["metadata"]
    client.patch_status(
        "BackupJob",
        namespace,
        meta["name"],
        contract.claim("BackupJob", ME, KEY, NOW),
        resource_version=meta["resourceVersion"],
    )
    with pytest.raises(Conflict) as refused:
        client.patch_status(
            "BackupJob",
            namespace,
            meta["name"],
            contract.failed("BackupJob", _error(ErrorCode.AGENT_LOST), NOW),
            resource_version=meta["resourceVersion"],
        )
    assert not isinstance(refused.value, TransitionRefused)

"""Registration, discovery and heartbeat: what the agent writes into ``SqlInstance`` status
and its Lease.

Called periodically by the instance worker.  The status is written only when something
changed (discovered databases, permissions, session), so an idle instance costs one Lease
renewal per heartbeat and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime
from typing import Any

from sqlharbor.api import (
    AgentInfo,
    Condition,
    ConditionStatus,
    DiscoveredDatabase,
    ErrorInfo,
    PermissionStatus,
)
from sqlharbor.api.contract import lease_name
from sqlharbor.errors import ErrorCode, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.kube.leases import renew
from sqlharbor_agent.engines.base import Engine
from sqlharbor_agent.session import Session


class Registrar:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        instance: str,
        session: Session,
        engine: Engine,
        lease_seconds: int,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._instance = instance
        self._session = session
        self._engine = engine
        self._lease_seconds = lease_seconds
        self._last_digest: str | None = None

    def heartbeat(self) -> None:
        renew(self._client, self._namespace, self._session.identity, self._lease_seconds)

    def discover(self) -> None:
        status = self._status()
        digest = hashlib.sha256(json.dumps(status, sort_keys=True).encode()).hexdigest()
        if digest == self._last_digest:
            return
        now = datetime.now(UTC).isoformat()
        status["lastDiscovery"] = now
        for condition in status.get("conditions", []):
            condition["lastTransitionTime"] = now
        self._client.patch_status("SqlInstance", self._namespace, self._instance, status)
        self._last_digest = digest

    def _status(self) -> dict[str, Any]:
        agent = AgentInfo(
            session_id=self._session.token,
            version=self._session.version,
            hostname=socket.gethostname(),
            lease_name=lease_name(self._session.agent_id),
            started=self._session.started,
        )
        try:
            databases = [
                DiscoveredDatabase(
                    name=d.name,
                    database_guid=d.database_guid,
                    recovery_model=d.recovery_model,
                    state=d.state,
                    size_bytes=d.size_bytes,
                    read_only=d.read_only,
                    availability_group=d.availability_group,
                    recovery_fork_guid=d.recovery_fork_guid or None,
                )
                for d in self._engine.discover()
            ]
            check = self._engine.check_permissions()
            version = self._engine.version()
        except SqlHarborError as exc:
            return {
                "agent": agent.to_wire(),
                "conditions": [
                    _condition(
                        "Ready",
                        False,
                        ErrorCode.ENGINE_UNAVAILABLE,
                        f"{exc.code}: {exc.message}. {exc.remediation}",
                    )
                ],
            }
        permissions = PermissionStatus(
            ok=check.ok,
            login=check.login,
            error=None
            if check.ok
            else ErrorInfo(
                code=check.code or ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
                message=check.message,
                remediation=(
                    f"Run on the VM: sqlharbor-agent grant-permissions --instance "
                    f"{self._instance} --apply   (or execute: {check.remediation_tsql})"
                ),
            ),
        )
        ready = _condition(
            "Ready", True, "AgentConnected", f"agent {self._session.agent_id} serves the instance"
        )
        if not check.ok:
            ready = _condition(
                "Ready",
                False,
                check.code or ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP,
                f"{check.message}. Fix: sqlharbor-agent grant-permissions --instance "
                f"{self._instance} --apply",
            )
        return {
            "agent": agent.to_wire(),
            "sqlVersion": version,
            "databaseCount": len(databases),
            "databases": [d.to_wire() for d in databases],
            "permissions": permissions.to_wire(),
            "conditions": [ready],
        }


def _condition(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        reason=reason,
        message=message,
    ).to_wire()

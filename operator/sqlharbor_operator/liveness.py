"""Liveness: a BackupJob or RestoreJob whose claiming agent session stopped renewing its
Lease is failed ``AgentLost`` (``contract.agent_lost``), against the resourceVersion read,
so nothing sits in Running forever.  The operator's only write to a claimed job; a late
write of that agent is then refused by the API server.  Called by the tick.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlharbor.api import BackupJob, JobPhase, RestoreJob, RestorePhase, contract
from sqlharbor.errors import SqlHarborError
from sqlharbor_operator.logs import fields
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.state import Key

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._failed: set[str] = set()  # uids failed AgentLost (until the watch shows it)

    async def tick(self, now: datetime) -> None:
        state = self._rt.state
        for key, job in list(state.jobs.items()):
            if job.status is not None and job.status.phase is JobPhase.RUNNING:
                await self._check("BackupJob", key, job, now)
        for key, restore in list(state.restores.items()):
            if restore.status is not None and restore.status.phase is RestorePhase.RUNNING:
                await self._check("RestoreJob", key, restore, now)

    async def _check(self, kind: str, key: Key, job: BackupJob | RestoreJob, now: datetime) -> None:
        status = job.status
        uid = job.metadata.uid or key[1]
        if status is None or not status.agent_session or uid in self._failed:
            return
        leases = self._rt.state.leases
        if not contract.session_lost(leases, key[0], status.agent_session, status.start_time, now):
            return
        body = contract.agent_lost(kind, status.agent_session, now)
        version = job.metadata.resource_version
        try:
            await self._rt.api.patch_status(kind, *key, body, resource_version=version)
        except SqlHarborError as exc:  # a Conflict included: look again next tick
            log.info(
                "could not fail %s %s/%s: %s",
                kind,
                *key,
                exc,
                extra=fields(namespace=key[0], job=key[1]),
            )
            return
        self._failed.add(uid)
        log.info(
            "%s %s/%s failed: agent session %s lost",
            kind,
            *key,
            status.agent_session,
            extra=fields(namespace=key[0], job=key[1]),
        )

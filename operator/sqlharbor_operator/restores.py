"""Restore planning: every new RestoreJob is decided (``restore_decisions.decide_restore``) and then
labelled for the target instance's agent and marked Planned, marked Pending while it must
wait, or failed with a clear error before data moves.

Called once per tick by ``tick.Controller``.  Only RestoreJobs without a phase (or Pending)
are considered; a job the operator planned or failed, or that an agent runs or finished,
is never written again.  The writes are a metadata patch (``contract.LABEL_TARGET_INSTANCE``,
``contract.ANNOTATION_VAULT``) and a status merge patch carrying the ``resourceVersion`` the
decision was made on (a ``Conflict`` means: decide_restore again next tick).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlharbor.api import BackupVault, RestoreJob, RestorePhase, contract
from sqlharbor.errors import Conflict, SqlHarborError
from sqlharbor.restoreplan import KeyChecker
from sqlharbor_operator.logs import fields
from sqlharbor_operator.restore_decisions import (
    CatalogOpener,
    Decision,
    Refused,
    Wait,
    decide_restore,
)
from sqlharbor_operator.runtime import Runtime
from sqlharbor_operator.state import Key

log = logging.getLogger(__name__)


class RestoreDispatcher:
    """Remembers what it decided so a job is planned once, even before the watch catches up."""

    def __init__(
        self,
        rt: Runtime,
        open_catalog: CatalogOpener,
        open_keys: Callable[[BackupVault], KeyChecker] | None = None,
    ) -> None:
        self._rt = rt
        self._open_catalog = open_catalog
        self._open_keys = open_keys
        self._done: set[str] = set()
        self._waiting: dict[str, str] = {}

    async def tick(self, now: datetime) -> None:
        state = self._rt.state
        for key, job in list(state.restores.items()):
            uid = job.metadata.uid or key[1]
            phase = job.status.phase if job.status else None
            if uid in self._done or phase not in (None, RestorePhase.PENDING):
                continue
            decision = await self._rt.offload(
                decide_restore, state, job, now, self._open_catalog, self._open_keys
            )
            await self._write(key, job, uid, decision, now)

    def _agent_of(self, ns: str, instance: str) -> str | None:
        """The agent the target instance is assigned to (None: the label stays unset and
        ``assignment`` adds it once the instance has one)."""
        target = self._rt.state.instances.get((ns, instance))
        return target.spec.agent if target is not None else None

    async def _write(
        self, key: Key, job: RestoreJob, uid: str, decision: Decision, now: datetime
    ) -> None:
        ns, name = key
        api = self._rt.api
        body: dict[str, Any]
        version = job.metadata.resource_version
        if isinstance(decision, Wait):
            if self._waiting.get(uid) == decision.message:
                return
            body = contract.restore_waiting(decision.message)
        elif isinstance(decision, Refused):
            body = contract.failed("RestoreJob", decision.error, now)
        else:
            try:
                labelled = await api.patch_metadata(
                    "RestoreJob",
                    ns,
                    name,
                    {
                        "labels": {
                            contract.LABEL_TARGET_INSTANCE: decision.target_instance,
                            contract.LABEL_AGENT: self._agent_of(ns, decision.target_instance),
                        },
                        "annotations": {contract.ANNOTATION_VAULT: decision.vault},
                    },
                )
            except SqlHarborError as exc:
                log.warning(
                    "cannot label RestoreJob %s/%s: %s",
                    ns,
                    name,
                    exc,
                    extra=fields(namespace=ns, job=name),
                )
                return
            version = labelled["metadata"]["resourceVersion"]
            body = contract.restore_planned(
                decision.plan, decision.message, job.metadata.generation
            )
        try:
            await api.patch_status("RestoreJob", ns, name, body, resource_version=version)
        except Conflict:
            return  # changed meanwhile: decide_restore again on the next tick
        except SqlHarborError as exc:
            log.warning(
                "status of RestoreJob %s/%s: %s",
                ns,
                name,
                exc,
                extra=fields(namespace=ns, job=name),
            )
            return
        if isinstance(decision, Wait):
            self._waiting[uid] = decision.message
            return
        self._done.add(uid)
        self._waiting.pop(uid, None)
        log.info(
            "RestoreJob %s/%s: %s", ns, name, body["message"], extra=fields(namespace=ns, job=name)
        )

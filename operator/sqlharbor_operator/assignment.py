"""Assignment: every claimable job carries the agent its instance is assigned to.

The API server's fence policy (config/policy/agent_fence.yaml) lets an agent write the
status of a job only when the job's ``sqlharbor.io/agent`` label names it.  Dispatch sets
the label on the BackupJobs it creates and restore planning on the RestoreJobs it plans;
this concern labels the rest: BackupJobs a user created, jobs dispatched before their
instance had an agent (``SqlInstance.spec.agent`` set by ``kubectl sqlharbor agent
enroll``), and jobs of an instance enrolled again with ``--reassign``.  Only jobs no agent
has claimed yet are relabelled: a running job stays with the agent that runs it.

Called every tick by ``tick.Controller``; writes are metadata merge patches.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlharbor.api import contract
from sqlharbor.errors import Conflict, SqlHarborError
from sqlharbor_operator.logs import fields
from sqlharbor_operator.runtime import Runtime

log = logging.getLogger(__name__)


class Assigner:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def tick(self) -> None:
        state = self._rt.state
        for kind in contract.CLAIMABLE:  # BackupJob, RestoreJob
            table = state.table(kind)
            for (ns, name), job in list(table.items()):
                agent = self._wanted(kind, ns, job)
                if agent is None:
                    continue
                # against the version read: an agent that claimed the job meanwhile keeps it
                # (409), instead of being fenced out of the job it runs
                meta: dict[str, Any] = {"labels": {contract.LABEL_AGENT: agent}}
                if job.metadata.resource_version:
                    meta["resourceVersion"] = job.metadata.resource_version
                try:
                    await self._rt.api.patch_metadata(kind, ns, name, meta)
                except Conflict:
                    continue  # the watch brings the claimed job; nothing to assign
                except SqlHarborError as exc:
                    log.warning(
                        "cannot assign %s %s/%s to agent %s: %s",
                        kind,
                        ns,
                        name,
                        agent,
                        exc,
                        extra=fields(namespace=ns, job=name),
                    )
                    continue
                labels = {**(job.metadata.labels or {}), contract.LABEL_AGENT: agent}
                table[(ns, name)] = job.model_copy(
                    update={"metadata": job.metadata.model_copy(update={"labels": labels})}
                )
                log.info(
                    "%s %s/%s assigned to agent %s",
                    kind,
                    ns,
                    name,
                    agent,
                    extra=fields(namespace=ns, job=name),
                )

    def _wanted(self, kind: str, ns: str, job: Any) -> str | None:
        """The agent ``job`` should be labelled with, when that is a change."""
        phase = job.status.phase if job.status else None
        if phase not in contract.CLAIMABLE[kind]:
            return None
        labels = job.metadata.labels or {}
        instance = (
            job.spec.instance_ref.name
            if kind == "BackupJob"
            else labels.get(contract.LABEL_TARGET_INSTANCE)
        )
        target = self._rt.state.instances.get((ns, instance)) if instance else None
        agent = target.spec.agent if target is not None else None
        if agent is None or labels.get(contract.LABEL_AGENT) == agent:
            return None
        return str(agent)

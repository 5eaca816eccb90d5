"""Garbage collection: finished, accounted BackupJobs beyond ``history_limit`` per instance,
type and outcome are deleted (like CronJob's history limits).  Called by the tick."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlharbor_operator.runtime import Runtime


class GarbageCollector:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def tick(self) -> None:
        state, limit = self._rt.state, self._rt.settings.history_limit
        groups: dict[tuple[str, str, str, str], list[tuple[datetime, str, str]]] = defaultdict(list)
        for (ns, name), job in state.jobs.items():
            st = job.status
            if st is None or st.phase is None or not st.phase.finished:
                continue
            if (job.metadata.uid or name) not in state.accounted:
                continue
            when = st.completion_time or job.metadata.creation_timestamp or self._rt.clock()
            groups[(ns, job.spec.instance_ref.name, job.spec.type.value, st.phase.value)].append(
                (when, ns, name)
            )
        for entries in groups.values():
            entries.sort(reverse=True)
            for _, ns, name in entries[limit:]:
                await self._rt.api.delete("BackupJob", ns, name)
                state.jobs.pop((ns, name), None)

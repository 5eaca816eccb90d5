"""The per-instance job loop: list and watch the instance's jobs, fail what an earlier
session of this agent left Running, claim claimable jobs, await each one's grant from the
operator (``sqlharbor_agent.grants``) and run it on a worker thread.

Owned by ``sqlharbor_agent.worker.InstanceWorker``.  API server or network trouble never
ends the loop: it backs off (at least the Retry-After a throttling server asked for) and
lists again (a restarted API server is survived).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlharbor.api import ErrorInfo, JobPhase, contract
from sqlharbor.errors import Conflict, ErrorCode, SqlHarborError, TemporaryError
from sqlharbor.kube import KubeClient
from sqlharbor_agent.grants import Grant, await_grant
from sqlharbor_agent.jobs.claim import fail_orphan, try_claim
from sqlharbor_agent.session import Session

log = logging.getLogger(__name__)

#: runs one claimed job with its opened grant
Runner = Callable[[dict[str, Any], Grant], None]


#: the longest Retry-After the loop honours (a longer one waits this long)
MAX_RETRY_AFTER = 60.0


def retry_delay(exc: SqlHarborError, backoff: float) -> float:
    """The backoff, or the delay the API server asked for (Retry-After) when longer."""
    asked = exc.retry_after if isinstance(exc, TemporaryError) else None
    return backoff if asked is None else max(backoff, min(asked, MAX_RETRY_AFTER))


class JobLoop:
    """Watches one kind of job for one instance and hands claimed jobs to ``runner``."""

    def __init__(
        self,
        *,
        client: KubeClient,
        namespace: str,
        kind: str,
        field_selector: str,
        session: Session,
        runner: Runner,
        workers: int,
        stop: threading.Event,
        watch_timeout: int,
        grant_wait: float,
        select: Callable[[dict[str, Any]], bool] | None = None,
        label_selector: str | None = None,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._kind = kind
        self._selector = field_selector
        self._labels = label_selector
        self._claimable = contract.CLAIMABLE[kind]
        self._session = session
        self._runner = runner
        self._stop = stop
        self._watch_timeout = watch_timeout
        self._grant_wait = grant_wait
        self._select = select or (lambda obj: True)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=kind.lower())
        self._started: set[str] = set()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._cycle()
                backoff = 0.5
            except SqlHarborError as exc:
                delay = retry_delay(exc, backoff)
                log.warning("%s loop: %s (retrying in %.1fs)", self._kind, exc, delay)
                self._stop.wait(delay)
                backoff = min(backoff * 2, 10.0)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def _cycle(self) -> None:
        items, version = self._client.list_raw(
            self._kind,
            self._namespace,
            field_selector=self._selector or None,
            label_selector=self._labels,
        )
        for obj in items:
            self._consider(obj)
        for event in self._client.watch(
            self._kind,
            self._namespace,
            resource_version=version,
            field_selector=self._selector or None,
            label_selector=self._labels,
            timeout_seconds=self._watch_timeout,
        ):
            if self._stop.is_set():
                return
            if event.type == "ERROR":
                raise TemporaryError(f"watch of {self._kind} expired; listing again")
            if event.type in ("ADDED", "MODIFIED"):
                self._consider(event.object)

    def _consider(self, obj: dict[str, Any]) -> None:
        if not self._select(obj):
            return
        phase = contract.phase_of(obj)
        uid = obj["metadata"]["uid"]
        agent_session = contract.session_of(obj)
        if phase == JobPhase.RUNNING and self._session.previous_session_of_mine(agent_session):
            if fail_orphan(self._client, self._kind, obj):
                log.info(
                    "failed %s %s left Running by session %s",
                    self._kind,
                    obj["metadata"]["name"],
                    agent_session,
                )
            return
        if phase not in self._claimable or uid in self._started:
            return
        claimed = try_claim(self._client, self._kind, obj, self._session)
        if claimed is None:
            return
        self._started.add(uid)
        log.info("claimed %s %s", self._kind, obj["metadata"]["name"])
        self._pool.submit(self._run_guarded, claimed)

    def _run_guarded(self, obj: dict[str, Any]) -> None:
        try:
            granted = await_grant(
                self._client,
                self._kind,
                obj,
                self._session,
                timeout=self._grant_wait,
                stop=self._stop,
            )
            if granted is None:
                log.info("%s %s ended before it was granted", self._kind, obj["metadata"]["name"])
                return
            obj, grant = granted
            self._runner(obj, grant)
        except Exception as exc:  # the job must still reach a terminal phase
            log.exception("%s %s crashed", self._kind, obj["metadata"]["name"])
            code = ErrorCode.AGENT_INTERNAL_ERROR
            info = (
                ErrorInfo.of(exc)
                if isinstance(exc, SqlHarborError)
                else ErrorInfo(code=code, message=type(exc).__name__, remediation=code.remediation)
            )
            status = contract.failed(self._kind, info, datetime.now(UTC))
            try:
                meta = obj["metadata"]
                self._client.patch_status(self._kind, meta["namespace"], meta["name"], status)
            except Conflict as lost:
                log.warning("%s %s: %s", self._kind, obj["metadata"]["name"], lost)
            except SqlHarborError:
                log.exception("could not record the failure of %s", obj["metadata"]["name"])

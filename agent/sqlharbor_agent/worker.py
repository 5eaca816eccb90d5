"""``InstanceWorker``: everything the agent does for one SqlInstance — heartbeat and
discovery on one thread, the BackupJob loop on another, jobs on a bounded pool.

Created by ``sqlharbor_agent.main``; owns its engine; shares the Kubernetes client, the
session and the vault resolver with the other instances' workers.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlharbor.api import BackupJob, DatabaseResult, ErrorInfo, JobPhase, SqlInstance, contract
from sqlharbor.api.contract.grants import BackupGrant, RestoreGrant
from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import Conflict, ErrorCode, InvalidInput, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.vault import Compression, WriterSettings
from sqlharbor_agent.config import AgentConfig, InstanceConfig
from sqlharbor_agent.engines.base import Engine
from sqlharbor_agent.engines.factory import open_engine
from sqlharbor_agent.grants import Grant, vault_of
from sqlharbor_agent.jobs.backup import BackupContext, RecoveryPointWriter, run_backup_job
from sqlharbor_agent.jobs.loop import JobLoop
from sqlharbor_agent.jobs.reporter import JobReporter
from sqlharbor_agent.jobs.restore import RestoreContext, run_restore_job
from sqlharbor_agent.registration import Registrar
from sqlharbor_agent.session import Session

log = logging.getLogger(__name__)


class InstanceWorker:
    def __init__(
        self,
        config: AgentConfig,
        instance: InstanceConfig,
        client: KubeClient,
        session: Session,
        writer: WriterSettings,
        stop: threading.Event,
    ) -> None:
        self._config = config
        self._instance = instance
        self._client = client
        self._session = session
        self._writer = writer
        self._stop = stop
        self._slots = threading.BoundedSemaphore(config.max_concurrent_backups)
        self._restore_slots = threading.BoundedSemaphore(config.max_concurrent_restores)
        self._engine: Engine | None = None
        self._vault_identity = ""
        self._threads: list[threading.Thread] = []

    @property
    def namespace(self) -> str:
        return self._config.namespace

    def start(self) -> None:
        resource = self._client.get(SqlInstance, self.namespace, self._instance.name)
        if resource.spec.agent != self._config.agent_id:
            raise InvalidInput(
                f"SqlInstance {self._instance.name} is assigned to "
                f"{'agent ' + resource.spec.agent if resource.spec.agent else 'no agent'} "
                f"(spec.agent), not to this agent {self._config.agent_id}: kubectl sqlharbor "
                f"agent enroll {self._config.agent_id} --instance {self._instance.name}",
                code=ErrorCode.INVALID_AGENT_CONFIG,
            )
        self._vault_identity = resource.spec.vault_identity
        self._engine = open_engine(self._instance, resource.spec.vault_identity)
        registrar = Registrar(
            self._client,
            self.namespace,
            self._instance.name,
            self._session,
            self._engine,
            self._config.lease_seconds,
        )
        backups = JobLoop(
            client=self._client,
            namespace=self.namespace,
            kind="BackupJob",
            field_selector=f"spec.instanceRef.name={self._instance.name}",
            session=self._session,
            runner=self._run_backup_job,
            workers=self._config.max_concurrent_backups,
            stop=self._stop,
            watch_timeout=self._config.watch_timeout_seconds,
            grant_wait=self._config.grant_wait_seconds,
        )
        restores = JobLoop(
            client=self._client,
            namespace=self.namespace,
            kind="RestoreJob",
            field_selector="",
            label_selector=f"{contract.LABEL_TARGET_INSTANCE}={self._instance.name}",
            session=self._session,
            runner=self._run_restore_job,
            workers=self._config.max_concurrent_restores,
            stop=self._stop,
            watch_timeout=self._config.watch_timeout_seconds,
            grant_wait=self._config.grant_wait_seconds,
        )
        self._spawn("heartbeat", lambda: self._heartbeat(registrar))
        self._spawn("backupjobs", backups.run)
        self._spawn("restorejobs", restores.run)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=f"{self._instance.name}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _heartbeat(self, registrar: Registrar) -> None:
        next_discovery = 0.0
        while not self._stop.is_set():
            try:
                registrar.heartbeat()
                if time.monotonic() >= next_discovery:
                    registrar.discover()
                    next_discovery = time.monotonic() + self._config.discovery_seconds
            except SqlHarborError as exc:
                log.warning("heartbeat of %s: %s", self._instance.name, exc)
            self._stop.wait(self._config.heartbeat_seconds)

    # -- restores ---------------------------------------------------------------------
    def _run_restore_job(self, obj: dict[str, Any], grant: Grant) -> None:
        assert self._engine is not None
        assert isinstance(grant, RestoreGrant)

        def write(namespace: str, name: str, status: dict[str, Any]) -> None:
            self._client.patch_status("RestoreJob", namespace, name, status)

        ctx = RestoreContext(
            engine=self._engine,
            slots=self._restore_slots,
            write_status=write,
            progress_seconds=self._config.progress_seconds,
        )
        run_restore_job(ctx, obj, vault_of(grant, self._writer))

    # -- backups ----------------------------------------------------------------------
    def _run_backup_job(self, obj: dict[str, Any], grant: Grant) -> None:
        assert isinstance(grant, BackupGrant)
        job = BackupJob.model_validate(obj)
        meta = obj["metadata"]

        def write(status: dict[str, Any]) -> None:
            self._client.patch_status("BackupJob", meta["namespace"], meta["name"], status)

        reporter = JobReporter(write, interval=self._config.progress_seconds)
        try:
            vault = vault_of(grant, self._writer)
        except SqlHarborError as exc:
            info = ErrorInfo.of(exc)
            for db in job.spec.databases:
                reporter.set_result(DatabaseResult(name=db.name, phase=JobPhase.FAILED, error=info))
            self._finish(reporter, error=exc)
            return
        level = job.spec.compression_level

        def open_writer(
            *, database_name: str, database_guid: str, backup_type: BackupType, progress: Any
        ) -> RecoveryPointWriter:
            settings = vault.writer_settings
            if level is not None:
                settings = dataclasses.replace(
                    settings,
                    compression_level=max(level, 1),
                    compression=Compression.ZSTD if level > 0 else Compression.NONE,
                )
            writer: RecoveryPointWriter = vault.open_writer(
                self._vault_identity,
                database_name,
                database_guid,
                backup_type,
                copy_only=job.spec.copy_only,
                progress=progress,
                settings=settings,
            )
            return writer

        assert self._engine is not None
        ctx = BackupContext(engine=self._engine, open_writer=open_writer, slots=self._slots)
        run_backup_job(ctx, job, reporter)
        self._finish(reporter)

    def _finish(self, reporter: JobReporter, error: SqlHarborError | None = None) -> None:
        info = ErrorInfo.of(error) if error is not None else None
        body = contract.backup_finished(reporter.results(), info, datetime.now(UTC))
        try:
            reporter.final(body)
        except Conflict as lost:  # e.g. failed AgentLost while we were cut off
            log.warning("the outcome of this backup job was refused: %s", lost)

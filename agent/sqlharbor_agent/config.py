"""The agent's configuration file (YAML), parsed once at start and passed down explicitly.

Example::

    kubeconfig: /var/lib/sqlharbor/kubeconfig  # from `agent enroll`; the agent renews its token
    namespace: databases
    agentId: sql-vm-01                          # the enrolled name; sessions change per start
    instances:
      - name: sql-vm-01                         # the SqlInstance this agent serves
        engine: simulated
        simulated: {rootDir: /var/lib/sqlharbor/sim}
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sqlharbor.errors import ErrorCode, InvalidInput


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SimulatedSettings(_Config):
    root_dir: Path = Field(description="Folder of the simulated engine's on-disk state.")
    time_zone: int = Field(
        default=0,
        ge=-48,
        le=56,
        description="The simulated server's UTC offset in 15-minute units, as msdb's "
        "time_zone (4: UTC+1); its backup history keeps local times with it.",
    )


class InstanceConfig(_Config):
    name: str = Field(description="The SqlInstance (in the agent's namespace) served.")
    engine: Literal["simulated", "sqlserver"] = "sqlserver"
    simulated: SimulatedSettings | None = None
    sqlserver: dict[str, Any] | None = Field(
        default=None, description="Settings of the SQL Server plugin (see docs/sqlserver.md)."
    )


class AgentConfig(_Config):
    kubeconfig: Path | None = None
    namespace: str
    agent_id: str = Field(
        default_factory=lambda: socket.gethostname().lower().split(".")[0],
        description="The name it was enrolled with (kubectl sqlharbor agent enroll NAME).",
        max_length=47,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
    )
    token_seconds: int = Field(
        default=86400,
        ge=600,
        le=7 * 86400,
        description="Lifetime of each API token it requests for itself (renewed at 2/3).",
    )
    instances: list[InstanceConfig] = Field(min_length=1)
    max_concurrent_backups: int = Field(default=20, ge=1, le=64)
    max_concurrent_restores: int = Field(default=15, ge=1, le=64)
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: int = Field(default=90, ge=1)
    discovery_seconds: float = Field(default=300.0, gt=0)
    progress_seconds: float = Field(default=5.0, gt=0)
    chunk_size: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    upload_concurrency: int = Field(default=8, ge=1, le=64)
    watch_timeout_seconds: int = Field(default=60, ge=1)
    #: how long a claimed job waits for the operator's grant (storage rights, keys)
    grant_wait_seconds: float = Field(default=120.0, gt=0)


def load_config(path: Path) -> AgentConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInput(
            f"cannot read agent config {path}: {exc.strerror}", code=ErrorCode.INVALID_AGENT_CONFIG
        ) from exc
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(
            f"invalid agent config {path}: {problems}", code=ErrorCode.INVALID_AGENT_CONFIG
        ) from exc

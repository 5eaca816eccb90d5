"""Settings of the SQL Server plugin: how to connect, where VDI lives, how data is streamed.

Filled by the agent's configuration loader (``engine: sqlserver``) through
:meth:`SqlServerSettings.from_mapping` and passed to ``SqlServerEngine``; nothing in the
plugin reads environment variables or globals.  The password never appears in ``repr``,
logs or messages; the ODBC connection string is built only at connect time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlharbor.errors import ErrorCode, InvalidInput

from .tsql import StreamGeometry

DEFAULT_LINUX_VDI_LIBRARY = "/opt/mssql/lib/libsqlvdi.so"


class AuthMode(enum.StrEnum):
    SQL = "sql"
    INTEGRATED = "integrated"


def _odbc_value(value: str) -> str:
    """An ODBC connection-string value, braced (``}`` doubled) when it needs to be."""
    if any(c in value for c in ";{}=[]()\t ,") or value != value.strip():
        return "{" + value.replace("}", "}}") + "}"
    return value


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one instance through ODBC.

    ``host`` plus either ``instance`` (``host\\instance``, resolved by SQL Browser) or
    ``port`` (``host,port``).  The password comes from a Secret, given either directly
    (``password``, excluded from ``repr``) or as a mounted file (``password_file``).
    """

    host: str = "localhost"
    instance: str | None = None
    port: int | None = None
    driver: str = "ODBC Driver 18 for SQL Server"
    auth: AuthMode = AuthMode.SQL
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    encrypt: bool = True
    trust_server_certificate: bool = False
    login_timeout_s: int = 15
    application_name: str = "sqlharbor-agent"

    def __post_init__(self) -> None:
        if self.instance and self.port:
            raise InvalidInput(
                "give either an instance name or a port, not both",
                code=ErrorCode.INVALID_CONFIGURATION,
            )
        if self.auth is AuthMode.SQL and not self.user:
            raise InvalidInput(
                "SQL authentication needs a user", code=ErrorCode.INVALID_CONFIGURATION
            )

    @property
    def server(self) -> str:
        """``host\\instance``, ``host,port`` or ``host``: also the name shown in messages."""
        if self.instance:
            return f"{self.host}\\{self.instance}"
        if self.port:
            return f"{self.host},{self.port}"
        return self.host

    def _secret(self) -> str:
        if self.password is not None:
            return self.password
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        raise InvalidInput(
            f"no password configured for login {self.user!r} on {self.server}",
            code=ErrorCode.OPENING_SQL_CONNECTION,
        )

    def odbc_connection_string(self) -> str:
        """The full ODBC connection string: holds the password, never log it."""
        parts = {
            "DRIVER": _odbc_value(self.driver),
            "SERVER": _odbc_value(self.server),
            "Encrypt": "yes" if self.encrypt else "no",
            "TrustServerCertificate": "yes" if self.trust_server_certificate else "no",
            "APP": _odbc_value(self.application_name),
        }
        if self.auth is AuthMode.INTEGRATED:
            parts["Trusted_Connection"] = "yes"
        else:
            assert self.user is not None
            parts["UID"] = _odbc_value(self.user)
            parts["PWD"] = _odbc_value(self._secret())
        return ";".join(f"{k}={v}" for k, v in parts.items()) + ";"


@dataclass(frozen=True)
class VdiTimeouts:
    """Bounds on every wait of the VDI loop (seconds; ``poll`` is one GetCommand wait)."""

    configure_s: float = 120.0
    idle_s: float = 600.0
    finish_s: float = 600.0
    poll_s: float = 0.5


@dataclass(frozen=True)
class SqlServerSettings:
    """Everything ``SqlServerEngine`` needs, as plain values."""

    instance_name: str
    connection: ConnectionSettings
    vdi_library: str = DEFAULT_LINUX_VDI_LIBRARY
    geometry: StreamGeometry = field(default_factory=StreamGeometry)
    timeouts: VdiTimeouts = field(default_factory=VdiTimeouts)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SqlServerSettings:
        """Build from the agent config's ``sqlserver:`` section (plain YAML values)."""
        conn = dict(data.get("connection", {}))
        if "auth" in conn:
            conn["auth"] = AuthMode(conn["auth"])
        if conn.get("password_file") is not None:
            conn["password_file"] = Path(conn["password_file"])
        connection = ConnectionSettings(**conn)
        return cls(
            instance_name=str(data.get("instance_name") or connection.server),
            connection=connection,
            vdi_library=str(data.get("vdi_library", DEFAULT_LINUX_VDI_LIBRARY)),
            geometry=StreamGeometry(**dict(data.get("geometry", {}))),
            timeouts=VdiTimeouts(**dict(data.get("timeouts", {}))),
        )

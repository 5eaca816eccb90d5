"""``sqlharbor-agent grant-permissions``: print (or run) the T-SQL making the agent sysadmin.

Registered by the agent's main CLI (``cli.add_command(grant_permissions)``).  VDI backups
need a sysadmin login; this prints, per instance on multi-instance hosts, exactly what
fixes ``UserErrorSQLNoSysadminMembership``.  On Windows it also covers
``NT AUTHORITY\\SYSTEM`` and the agent's service account.  ``--apply`` runs it through
the plugin's own connection (integrated auth by default).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from .connection import Connection, connect_pyodbc, execute_drained
from .settings import AuthMode, ConnectionSettings
from .tsql import create_windows_login_statement, grant_sysadmin_statement

WINDOWS_SYSTEM = "NT AUTHORITY\\SYSTEM"
DEFAULT_SERVICE_ACCOUNT = "NT SERVICE\\sqlharbor-agent"


def statements_for(logins: Sequence[str], *, windows: bool) -> list[str]:
    """The T-SQL for one instance: Windows logins are created if missing, then each
    login joins sysadmin.  SQL logins must already exist (we never handle passwords)."""
    out: list[str] = []
    for login in logins:
        if windows and "\\" in login:
            out.append(create_windows_login_statement(login))
        out.append(grant_sysadmin_statement(login))
    return out


def script(servers: Sequence[str], logins: Sequence[str], *, windows: bool) -> str:
    """The printable script; ``:CONNECT`` lines make it runnable in sqlcmd mode."""
    lines: list[str] = []
    for server in servers:
        lines += [f"-- instance {server}", f":CONNECT {server}", "USE [master];"]
        lines += statements_for(logins, windows=windows)
        lines += ["GO", ""]
    return "\n".join(lines)


def _logins(login: tuple[str, ...], windows: bool, service_account: str) -> list[str]:
    chosen = list(login)
    if windows:
        chosen += [WINDOWS_SYSTEM, service_account]
    seen: list[str] = []
    for name in chosen:
        if name not in seen:
            seen.append(name)
    return seen


def _apply(server: str, statements: Sequence[str], driver: str, encrypt: bool) -> None:
    host, _, instance = server.partition("\\")
    settings = ConnectionSettings(
        host=host,
        instance=instance or None,
        driver=driver,
        auth=AuthMode.INTEGRATED,
        encrypt=encrypt,
        trust_server_certificate=not encrypt,
    )
    connection: Connection = connect_pyodbc(settings)
    try:
        cursor = connection.cursor()
        for statement in statements:
            execute_drained(cursor, statement)
    finally:
        connection.close()


@click.command("grant-permissions")
@click.option(
    "--instance",
    "instances",
    multiple=True,
    default=("localhost",),
    show_default=True,
    help="host or host\\instance; repeat for every instance on the VM.",
)
@click.option(
    "--login", multiple=True, help="Login the agent connects as (repeatable), e.g. sqlharbor."
)
@click.option(
    "--windows/--no-windows",
    default=sys.platform == "win32",
    show_default="on Windows",
    help="Also grant NT AUTHORITY\\SYSTEM and the service account.",
)
@click.option("--service-account", default=DEFAULT_SERVICE_ACCOUNT, show_default=True)
@click.option("--apply", "apply_", is_flag=True, help="Execute it (integrated authentication).")
@click.option("--driver", default="ODBC Driver 18 for SQL Server", show_default=True)
@click.option("--encrypt/--no-encrypt", default=True, show_default=True)
def grant_permissions(
    instances: tuple[str, ...],
    login: tuple[str, ...],
    windows: bool,
    service_account: str,
    apply_: bool,
    driver: str,
    encrypt: bool,
) -> None:
    """Print the T-SQL that makes the agent's login sysadmin; --apply runs it."""
    logins = _logins(login, windows, service_account)
    if not logins:
        raise click.UsageError("name the agent's login with --login (or use --windows)")
    click.echo(script(instances, logins, windows=windows))
    if apply_:
        for server in instances:
            _apply(server, statements_for(logins, windows=windows), driver, encrypt)
            click.echo(f"-- applied on {server}", err=True)

"""The printed text of ``sqlharbor-agent grant-permissions``."""

from __future__ import annotations

from click.testing import CliRunner
from sqlharbor_agent.engines.sqlserver.grant import grant_permissions


def run(*args: str) -> str:
    result = CliRunner().invoke(grant_permissions, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_linux_sql_login() -> None:
    assert run("--no-windows", "--login", "sqlharbor") == (
        "-- instance localhost\n"
        ":CONNECT localhost\n"
        "USE [master];\n"
        "ALTER SERVER ROLE [sysadmin] ADD MEMBER [sqlharbor];\n"
        "GO\n"
        "\n"
    )


def test_windows_multi_instance_adds_system_and_the_service_account() -> None:
    out = run(
        "--windows",
        "--instance",
        "VM1\\SQL2019",
        "--instance",
        "VM1\\SQL2022",
        "--login",
        "CONTOSO\\backup]svc",
    )
    for server in ("VM1\\SQL2019", "VM1\\SQL2022"):
        assert f":CONNECT {server}\n" in out
    assert out.count("ALTER SERVER ROLE [sysadmin] ADD MEMBER [NT AUTHORITY\\SYSTEM];") == 2
    assert out.count("ADD MEMBER [NT SERVICE\\sqlharbor-agent];") == 2
    assert "ADD MEMBER [CONTOSO\\backup]]svc];" in out
    assert (
        "IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = "
        "N'NT AUTHORITY\\SYSTEM') CREATE LOGIN [NT AUTHORITY\\SYSTEM] FROM WINDOWS;"
    ) in out


def test_a_login_is_required_off_windows() -> None:
    result = CliRunner().invoke(grant_permissions, ["--no-windows"])
    assert result.exit_code != 0
    assert "--login" in result.output

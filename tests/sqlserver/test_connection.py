"""SQL error mapping, result-set draining and the connection settings' secrecy."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlharbor_agent.engines.sqlserver.connection import (
    execute_drained,
    map_sql_error,
    query,
    sql_error_numbers,
)
from sqlharbor_agent.engines.sqlserver.settings import (
    AuthMode,
    ConnectionSettings,
    SqlServerSettings,
)

from sqlharbor.errors import EngineError, ErrorCode, TemporaryError

from .fakes import FakeOdbcError, FakeServer, sql_error


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (4214, ErrorCode.PARENT_FULL_BACKUP_MISSING),
        (4305, ErrorCode.SQL_LSN_VALIDATION_FAILURE),
        (4326, ErrorCode.SQL_LSN_VALIDATION_FAILURE),
        (3159, ErrorCode.TARGET_EXISTS),
        (1834, ErrorCode.TARGET_EXISTS),
        (9002, ErrorCode.TRANSACTION_LOG_FULL),
        (18456, ErrorCode.OPENING_SQL_CONNECTION),
        (15247, ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP),
        (262, ErrorCode.SQL_NO_SYSADMIN_MEMBERSHIP),
        (4208, ErrorCode.SQL_PO_DOES_NOT_SUPPORT_BACKUP_TYPE),
        (4341, ErrorCode.LOG_BACKUP_CONTAINS_BULK_LOGGED_CHANGES),
    ],
)
def test_sql_errors_map_to_stable_codes(number: int, code: str) -> None:
    error = map_sql_error(sql_error(number, "boom"))
    assert isinstance(error, EngineError)
    assert error.code == code
    assert error.remediation


def test_specific_error_wins_over_the_3013_trailer() -> None:
    exc = FakeOdbcError(
        "42000",
        "[42000] [SQL Server]BACKUP LOG cannot be performed because there is no current "
        "database backup. (4214); [42000] [SQL Server]BACKUP LOG is terminating abnormally. (3013)",
    )
    assert sql_error_numbers(str(exc.args[1])) == [4214, 3013]
    assert map_sql_error(exc).code == ErrorCode.PARENT_FULL_BACKUP_MISSING


def test_connection_sqlstate_is_temporary_and_unknown_errors_are_engine_errors() -> None:
    net = map_sql_error(FakeOdbcError("08001", "[08001] TCP Provider: timeout (0)"))
    assert isinstance(net, TemporaryError)
    assert net.code == ErrorCode.OPENING_SQL_CONNECTION
    other = map_sql_error(sql_error(50000, "custom"))
    assert isinstance(other, EngineError)
    assert other.code == ErrorCode.SQL_SERVER_ERROR
    assert "custom" in str(other)


def test_execute_drained_surfaces_an_error_sent_after_the_first_result() -> None:
    server = FakeServer()
    server.late_errors["BACKUP"] = sql_error(9002, "The transaction log for database is full")
    cursor = server.connect().cursor()
    with pytest.raises(EngineError) as info:
        execute_drained(cursor, "BACKUP LOG [x] TO VIRTUAL_DEVICE = N'v';")
    assert info.value.code == ErrorCode.TRANSACTION_LOG_FULL


def test_query_passes_values_as_parameters() -> None:
    server = FakeServer()
    server.on("FROM t", lambda params: [{"v": params[0]}])
    rows = query(server.connect().cursor(), "SELECT v FROM t WHERE name = ?", "o'brien")
    assert rows == [{"v": "o'brien"}]
    assert server.executed == [("SELECT v FROM t WHERE name = ?", ("o'brien",))]


def test_password_is_not_in_repr_and_only_in_the_connection_string() -> None:
    settings = ConnectionSettings(host="db1", port=1433, user="agent", password="s3cr;t}")
    assert "s3cr" not in repr(settings)
    text = settings.odbc_connection_string()
    assert "PWD={s3cr;t}}};" in text
    assert "SERVER={db1,1433};" in text
    assert "Encrypt=yes;" in text
    assert "TrustServerCertificate=no;" in text


def test_password_file_and_integrated_auth(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-secret\n")
    settings = ConnectionSettings(host="h", instance="SQL2022", user="u", password_file=secret)
    assert "PWD=from-secret;" in settings.odbc_connection_string()
    assert settings.server == "h\\SQL2022"
    integrated = ConnectionSettings(host="h", auth=AuthMode.INTEGRATED, encrypt=False)
    text = integrated.odbc_connection_string()
    assert "Trusted_Connection=yes" in text
    assert "PWD" not in text
    assert "Encrypt=no" in text


def test_settings_from_mapping() -> None:
    settings = SqlServerSettings.from_mapping(
        {
            "connection": {"host": "vm1", "port": 1433, "user": "agent", "password_file": "/p"},
            "geometry": {"max_transfer_size": 2097152, "buffer_count": 4},
            "timeouts": {"configure_s": 30},
            "vdi_library": "/x/libsqlvdi.so",
        }
    )
    assert settings.instance_name == "vm1,1433"
    assert settings.connection.password_file == Path("/p")
    assert settings.geometry.max_transfer_size == 2097152
    assert settings.timeouts.configure_s == 30
    assert settings.vdi_library == "/x/libsqlvdi.so"
    with pytest.raises(Exception, match="needs a user"):
        ConnectionSettings(host="h")

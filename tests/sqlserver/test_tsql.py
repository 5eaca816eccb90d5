"""Golden tests of the T-SQL text: quoting with hostile names, BACKUP and RESTORE variants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlharbor_agent.engines.sqlserver.tsql import (
    FileMove,
    StopClause,
    StreamGeometry,
    backup_statement,
    datetime_literal,
    grant_sysadmin_statement,
    quote_identifier,
    quote_literal,
    restore_statement,
    to_server_local,
)

from sqlharbor.domain.backupset import BackupType
from sqlharbor.errors import EngineError, ErrorCode

GEOMETRY = StreamGeometry(max_transfer_size=1048576, buffer_count=4, block_size=65536)
DEV = ["6f1c2a9e-0000-4000-8000-000000000001"]

HOSTILE = [
    ("plain", "[plain]", "N'plain'"),
    ("with space", "[with space]", "N'with space'"),
    ("a]b", "[a]]b]", "N'a]b'"),
    ("]]", "[]]]]]", "N']]'"),
    ("[x", "[[x]", "N'[x'"),
    ("o'brien", "[o'brien]", "N'o''brien'"),
    ("x'; DROP DATABASE y; --", "[x'; DROP DATABASE y; --]", "N'x''; DROP DATABASE y; --'"),
    ("db]; SHUTDOWN; --", "[db]]; SHUTDOWN; --]", "N'db]; SHUTDOWN; --'"),
    ("Ünïcødé データベース", "[Ünïcødé データベース]", "N'Ünïcødé データベース'"),
    ("emoji 🐘'", "[emoji 🐘']", "N'emoji 🐘'''"),
    ("tab\tnew\nline", "[tab\tnew\nline]", "N'tab\tnew\nline'"),
]


@pytest.mark.parametrize(("name", "ident", "literal"), HOSTILE)
def test_quoting_doubles_the_closing_character(name: str, ident: str, literal: str) -> None:
    assert quote_identifier(name) == ident
    assert quote_literal(name) == literal


@pytest.mark.parametrize("bad", ["", "x" * 129, "nul\x00byte"])
def test_identifiers_that_quotename_refuses_are_refused(bad: str) -> None:
    with pytest.raises(EngineError) as info:
        quote_identifier(bad)
    assert info.value.code == ErrorCode.INVALID_NAME


def test_identifier_of_128_characters_is_accepted() -> None:
    assert quote_identifier("é" * 128) == "[" + "é" * 128 + "]"


def test_full_backup_text() -> None:
    assert backup_statement("Sales", BackupType.FULL, DEV, GEOMETRY) == (
        "BACKUP DATABASE [Sales] TO VIRTUAL_DEVICE = N'6f1c2a9e-0000-4000-8000-000000000001' "
        "WITH MAXTRANSFERSIZE = 1048576, BUFFERCOUNT = 4, BLOCKSIZE = 65536, CHECKSUM;"
    )


def test_copy_only_full_differential_and_log_variants() -> None:
    copy = backup_statement("a]b", BackupType.FULL, DEV, GEOMETRY, copy_only=True)
    assert copy.startswith("BACKUP DATABASE [a]]b] TO ")
    assert "WITH COPY_ONLY, MAXTRANSFERSIZE = 1048576," in copy
    diff = backup_statement("d", BackupType.DIFFERENTIAL, DEV, GEOMETRY)
    assert "WITH DIFFERENTIAL, MAXTRANSFERSIZE" in diff
    log = backup_statement("d", BackupType.LOG, DEV, GEOMETRY)
    assert log.startswith("BACKUP LOG [d] TO VIRTUAL_DEVICE = N'")
    assert "DIFFERENTIAL" not in log
    assert "COPY_ONLY" not in log
    copy_log = backup_statement("d", BackupType.LOG, DEV, GEOMETRY, copy_only=True)
    assert "WITH COPY_ONLY, " in copy_log


def test_copy_only_differential_is_refused() -> None:
    with pytest.raises(EngineError):
        backup_statement("d", BackupType.DIFFERENTIAL, DEV, GEOMETRY, copy_only=True)


def test_striped_backup_lists_every_device_quoted() -> None:
    text = backup_statement("d", BackupType.FULL, ["a", "b'c"], GEOMETRY)
    assert "TO VIRTUAL_DEVICE = N'a', VIRTUAL_DEVICE = N'b''c' WITH" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_transfer_size": 65536 + 1},
        {"max_transfer_size": 8 * 1024 * 1024},
        {"buffer_count": 0},
        {"block_size": 1000},
        {"block_size": 131072},
    ],
)
def test_geometry_limits(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        StreamGeometry(**kwargs)


def test_restore_full_with_replace_and_moves() -> None:
    moves = [FileMove("Sales", "/var/opt/mssql/data/x'y.mdf"), FileMove("Sales_log", "L:\\l.ldf")]
    text = restore_statement(
        "Sales ]copy",
        BackupType.FULL,
        DEV,
        GEOMETRY,
        recovery=False,
        replace=True,
        moves=moves,
    )
    assert text == (
        "RESTORE DATABASE [Sales ]]copy] FROM VIRTUAL_DEVICE = "
        "N'6f1c2a9e-0000-4000-8000-000000000001' WITH NORECOVERY, REPLACE, "
        "MOVE N'Sales' TO N'/var/opt/mssql/data/x''y.mdf', MOVE N'Sales_log' TO N'L:\\l.ldf', "
        "MAXTRANSFERSIZE = 1048576, BUFFERCOUNT = 4, BLOCKSIZE = 65536, CHECKSUM;"
    )


def test_restore_log_with_stopat_and_recovery() -> None:
    stop = StopClause(local_time=datetime(2024, 3, 1, 12, 30, 5, 4000))
    text = restore_statement("d", BackupType.LOG, DEV, GEOMETRY, recovery=True, stop=stop)
    assert text.startswith("RESTORE LOG [d] FROM VIRTUAL_DEVICE = N'")
    assert text.endswith(
        "WITH RECOVERY, MAXTRANSFERSIZE = 1048576, BUFFERCOUNT = 4, "
        "BLOCKSIZE = 65536, CHECKSUM, STOPAT = '2024-03-01T12:30:05.003';"
    )


def test_restore_log_with_stopatmark_lsn() -> None:
    stop = StopClause(lsn=35000000123400001)
    text = restore_statement("d", BackupType.LOG, DEV, GEOMETRY, recovery=False, stop=stop)
    assert text.endswith("STOPATMARK = N'lsn:35000000123400001';")
    assert "NORECOVERY" in text


def test_stop_clause_is_refused_on_a_full() -> None:
    with pytest.raises(ValueError, match="RESTORE LOG"):
        restore_statement(
            "d", BackupType.FULL, DEV, GEOMETRY, recovery=True, stop=StopClause(lsn=1)
        )


@pytest.mark.parametrize(
    ("micro", "expected"),
    [
        (0, ".000"),
        (3332, ".000"),
        (3334, ".003"),
        (6666, ".003"),
        (6667, ".007"),
        (9999, ".007"),
        (10000, ".010"),
        (996667, ".997"),
        (999999, ".997"),
    ],
)
def test_datetime_literal_floors_to_the_datetime_tick(micro: int, expected: str) -> None:
    assert (
        datetime_literal(datetime(2024, 1, 2, 3, 4, 5, micro)) == f"'2024-01-02T03:04:05{expected}'"
    )


def test_to_server_local_applies_the_offset() -> None:
    utc = datetime(2024, 7, 1, 23, 30, tzinfo=UTC)
    assert to_server_local(utc, 120) == datetime(2024, 7, 2, 1, 30)
    assert to_server_local(utc, -300) == datetime(2024, 7, 1, 18, 30)
    other = utc.astimezone(timezone(timedelta(hours=5)))
    assert to_server_local(other, 0) == datetime(2024, 7, 1, 23, 30)
    with pytest.raises(ValueError, match="aware"):
        to_server_local(datetime(2024, 1, 1), 0)


def test_grant_text_quotes_the_login() -> None:
    assert (
        grant_sysadmin_statement("DOM\\svc]x")
        == "ALTER SERVER ROLE [sysadmin] ADD MEMBER [DOM\\svc]]x];"
    )

"""``--log-format json``: one JSON object per line, kopf's format, with the job and the
database as fields of their own; text stays the default."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from sqlharbor_operator import logs


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_json_lines_carry_the_job_and_database_as_fields(root_logger: logging.Logger) -> None:
    logs.configure("json", "info")
    (handler,) = [h for h in root_logger.handlers if type(h).__name__ == "_KopfStreamHandler"]
    record = logging.LogRecord(
        "sqlharbor_operator.dispatch", logging.INFO, __file__, 1, "dispatched %s", ("Log",), None
    )
    for key, value in logs.fields(namespace="ns", job="sim1-log-x", database="sim1-sales").items():
        setattr(record, key, value)
    line = json.loads(handler.format(record))
    assert line["message"] == "dispatched Log"
    assert (line["job"], line["database"], line["namespace"]) == ("sim1-log-x", "sim1-sales", "ns")
    assert line["severity"] == "info"
    assert root_logger.level == logging.INFO


def test_fields_leave_out_what_is_not_known() -> None:
    assert logs.fields(job="j") == {"job": "j"}

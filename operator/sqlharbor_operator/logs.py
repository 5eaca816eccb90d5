"""How the operator logs: text for a terminal (the default), or one JSON object per line
(``--log-format json``, kopf's own JSON formatter, so kopf's lines and ours look alike) with
the fields a log pipeline filters on: ``job``, ``database``, ``namespace``.

``configure`` is called once by ``main``; modules log with ``extra=fields(...)``.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_format: str, level: str) -> None:
    if log_format == "json":
        kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="object")
    else:
        logging.basicConfig(format=TEXT)
    logging.getLogger().setLevel(level.upper())
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("azure").setLevel(logging.WARNING)


def fields(
    *, namespace: str | None = None, job: str | None = None, database: str | None = None
) -> dict[str, Any]:
    """``extra=`` for a log call: only the fields that are known."""
    given = {"namespace": namespace, "job": job, "database": database}
    return {k: v for k, v in given.items() if v is not None}

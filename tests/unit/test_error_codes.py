"""Every stable error code is an ``ErrorCode`` member (sqlharbor/error_codes.py) with a
default remediation, listed in docs/error-codes.md; every exception class lives in
sqlharbor/errors.py; only the boundaries touch the Kubernetes, Azure and pyodbc SDKs.

Regenerate the document's table after adding a code:
``.venv/bin/python tests/unit/test_error_codes.py``.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path

from sqlharbor import errors
from sqlharbor.errors import (
    ChainError,
    ErrorCode,
    PermanentError,
    PlanError,
    SqlHarborError,
    TemporaryError,
    retry_after_seconds,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "error-codes.md"
REGENERATE = ".venv/bin/python tests/unit/test_error_codes.py"
BEGIN = "<!-- BEGIN generated from sqlharbor.errors.ErrorCode -->"
END = "<!-- END generated -->"


def _groups() -> dict[str, list[ErrorCode]]:
    """The members under each ``# -- title --`` comment of ``ErrorCode``, in order."""
    groups: dict[str, list[ErrorCode]] = {}
    title = ""
    for line in inspect.getsource(ErrorCode).splitlines():
        heading = re.match(r"\s+# -- (.+?) -+$", line)
        member = re.match(r"\s+([A-Z][A-Z0-9_]+) = ", line)
        if heading:
            title = heading.group(1)
        elif member and title:
            groups.setdefault(title, []).append(ErrorCode[member.group(1)])
    return groups


def render_table() -> str:
    lines = [BEGIN]
    for title, members in _groups().items():
        lines += ["", f"### {title[0].upper()}{title[1:]}", ""]
        lines += ["| Code | `ErrorCode` | Default remediation |", "|---|---|---|"]
        for code in members:
            fix = code.remediation.replace("|", "\\|")
            lines.append(f"| `{code.value}` | `{code.name}` | {fix} |")
    lines += ["", END]
    return "\n".join(lines)


def _with_table(doc: str) -> str:
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + render_table() + doc[end:]


def test_every_code_has_a_remediation_and_a_distinct_value() -> None:
    assert len(ErrorCode) > 50
    empty = [code.name for code in ErrorCode if not code.remediation.strip()]
    assert not empty, f"codes without a remediation: {empty}"
    # an Enum silently makes a second member with an existing value an alias
    assert len(ErrorCode.__members__) == len(ErrorCode)
    assert all(isinstance(code, str) and str(code) == code.value for code in ErrorCode)


def test_every_code_is_in_a_section_of_the_enum() -> None:
    grouped = [code for members in _groups().values() for code in members]
    assert sorted(grouped) == sorted(ErrorCode)


def test_the_error_code_document_lists_every_code() -> None:
    doc = DOC.read_text()
    missing = [code.value for code in ErrorCode if f"| `{code.value}` |" not in doc]
    assert not missing, f"docs/error-codes.md lacks {missing}: run {REGENERATE}"
    assert doc == _with_table(doc), f"docs/error-codes.md is stale: run {REGENERATE}"


def test_the_remediation_defaults_to_the_code_and_the_raiser_wins() -> None:
    assert PlanError("x").remediation == ErrorCode.RESTORE_POINT_OUTSIDE_WINDOW.remediation
    gap = PlanError("x", code=ErrorCode.RESTORE_POINT_IN_LOG_GAP)
    assert (gap.code, gap.remediation) == (
        ErrorCode.RESTORE_POINT_IN_LOG_GAP,
        ErrorCode.RESTORE_POINT_IN_LOG_GAP.remediation,
    )
    assert PlanError("x", code=ErrorCode.NO_RECOVERY_POINTS, remediation="do y").remediation == (
        "do y"
    )
    assert ChainError.remediation == ErrorCode.SQL_LSN_VALIDATION_FAILURE.remediation
    assert PermanentError("x").code == ErrorCode.INTERNAL_ERROR

    class Tooling(PermanentError):  # dev tooling keeps codes and remediations of its own
        code = "ToolingFailure"
        remediation = "Read the logs."

    assert (Tooling("x").code, Tooling("x").remediation) == ("ToolingFailure", "Read the logs.")


def test_retry_after_is_optional_and_parsed_from_seconds_or_a_date() -> None:
    assert TemporaryError("x").retry_after is None
    assert TemporaryError("x", retry_after=2.5).retry_after == 2.5
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    from datetime import UTC, datetime

    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


# -- one home for the tree -----------------------------------------------------------------
PRODUCT = ("sqlharbor", "operator", "agent")
#: may define subclasses of the tree: the VDI plugin's own errors (the core does not know
#: VDI).  The dev tooling (devtools/, not the product) keeps errors of its own.
OWN_ERRORS = (
    REPO / "sqlharbor" / "errors.py",
    REPO / "agent" / "sqlharbor_agent" / "engines" / "sqlserver" / "vdi" / "loop.py",
)
TREE = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _product_files() -> list[Path]:
    files = [p for top in PRODUCT for p in sorted((REPO / top).rglob("*.py"))]
    return [p for p in files if not any(part.startswith(".") for part in p.parts)]


def test_every_exception_class_lives_in_sqlharbor_errors() -> None:
    stray = []
    for path in _product_files():
        if any(path == own or path.is_relative_to(own) for own in OWN_ERRORS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
            if bases & (TREE | {"Exception", "ValueError", "RuntimeError", "LookupError"}):
                stray.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.name}")
    assert not stray, "define exceptions in sqlharbor/errors.py:\n" + "\n".join(stray)


BOUNDARIES = {
    "kubernetes": (REPO / "sqlharbor" / "kube",),
    "kubernetes_asyncio": (REPO / "sqlharbor" / "kube",),
    "urllib3": (REPO / "sqlharbor" / "kube",),
    "aiohttp": (REPO / "sqlharbor" / "kube",),
    "azure": (
        REPO / "sqlharbor" / "vault" / "store.py",
        REPO / "sqlharbor" / "vault" / "keyvault.py",  # Key Vault
        REPO / "sqlharbor" / "vault" / "keyvault_errors.py",  # translates Key Vault's errors
        REPO / "sqlharbor" / "vault" / "identity.py",  # builds credentials, catches nothing
        REPO / "sqlharbor" / "vault" / "sas.py",  # signs SAS tokens, catches nothing
        REPO / "sqlharbor" / "vault" / "store_sas.py",  # clients; store.py translates
    ),
    "pyodbc": (REPO / "agent/sqlharbor_agent/engines/sqlserver/connection.py",),
}


def test_only_the_boundaries_touch_the_sdks() -> None:
    """Nothing else imports (so nothing else catches) ApiException, Azure or pyodbc errors."""
    stray = []
    for path in _product_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                allowed = BOUNDARIES.get(module.split(".")[0])
                if allowed is not None and not any(
                    path == a or path.is_relative_to(a) for a in allowed
                ):
                    stray.append(f"{path.relative_to(REPO)}:{node.lineno}: {module}")
    assert not stray, "translate SDK errors at the boundary:\n" + "\n".join(stray)


def test_sqlharbor_error_is_the_root() -> None:
    roots = {name for name in TREE if not issubclass(getattr(errors, name), SqlHarborError)}
    assert roots == set()


if __name__ == "__main__":
    DOC.write_text(_with_table(DOC.read_text()))
    sys.exit(0)

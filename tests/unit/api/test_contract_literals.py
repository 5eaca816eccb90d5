"""Nothing outside the contract spells its names: no label or annotation name, job phase or
error code (any ``ErrorCode`` value but the words Kubernetes shares) appears as a string
literal in a Python file outside ``sqlharbor/api/`` (where the types and the contract are
defined), ``sqlharbor/errors.py`` and ``sqlharbor/error_codes.py``.  Import them from
``sqlharbor.api.contract``, ``sqlharbor.api`` (the phase enums) or ``sqlharbor.errors``
(``ErrorCode``).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from sqlharbor.api import API_VERSION, GROUP, JobPhase, RestorePhase
from sqlharbor.errors import ErrorCode

REPO = Path(__file__).resolve().parents[3]
SCANNED = ("sqlharbor", "operator", "agent", "benchmarks", "tests", "devtools")
ALLOWED = (
    REPO / "sqlharbor" / "api",
    REPO / "sqlharbor" / "errors.py",
    REPO / "sqlharbor" / "error_codes.py",
)

PHASES = {p.value for p in JobPhase} | {p.value for p in RestorePhase}
#: Words the Kubernetes API uses too (status reasons, condition statuses): a literal there
#: is Kubernetes' word, not our code.
SHARED_WORDS = {
    ErrorCode.NOT_FOUND,
    ErrorCode.CONFLICT,
    ErrorCode.FORBIDDEN,
    ErrorCode.INVALID,
    ErrorCode.UNKNOWN,
}
#: Every stable error code: spelled once, in sqlharbor/error_codes.py.
CODES = {c.value for c in ErrorCode} - {c.value for c in SHARED_WORDS}
PREFIX = f"{GROUP}/"


def _offending(value: str) -> bool:
    if value in PHASES or value in CODES:
        return True
    return value.startswith(PREFIX) and value != API_VERSION


def stray_literals(path: Path) -> list[str]:
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for token in tokens:
        if token.type == tokenize.STRING:
            try:
                value = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):  # an f-string (before 3.12's tokens)
                value = token.string.lstrip("rbfRBF").strip("'\"")
        elif token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            value = token.string
        else:
            continue
        if isinstance(value, str) and _offending(value):
            found.append(f"{path.relative_to(REPO)}:{token.start[0]}: {value!r}")
    return found


def _python_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            if any(part.startswith(".") for part in path.relative_to(REPO).parts):
                continue
            if path == Path(__file__) or any(path.is_relative_to(a) for a in ALLOWED):
                continue
            files.append(path)
    return files


def test_no_contract_literal_outside_the_contract() -> None:
    files = _python_files()
    assert len(files) > 100, "the scan found the tree"
    stray = [hit for path in files for hit in stray_literals(path)]
    assert not stray, "use sqlharbor.api.contract / the phase enums / ErrorCode:\n" + "\n".join(
        stray
    )


def test_the_scan_sees_each_kind_of_literal(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'a = {"phase": "Running"}\n'
        "b = 'sqlharbor.io/instance'\n"
        'c = f"sqlharbor.io/{a}"\n'
        'd = "AgentLost"\n'
        'e = ("UserErrorSQLLSNValidationFailure", "VaultObjectNotFound", "InvalidAgentConfig")\n'
        f'ok = ("{API_VERSION}", "Healthy", "running", "NotFound", "Conflict", "Forbidden")\n'
    )
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        hits = stray_literals(sample)
    finally:
        REPO = saved
    assert [h.split(":")[1] for h in hits] == ["1", "2", "3", "4", "5", "5", "5"], hits

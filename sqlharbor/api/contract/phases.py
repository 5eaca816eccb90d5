"""The job phase state machines, the CEL rules the API server enforces them with, and how
to read a job's phase (part of ``sqlharbor.api.contract``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlharbor.api.jobs import JobPhase, RestorePhase


@dataclass(frozen=True)
class PhaseMachine:
    """Which phase may follow which; the API server enforces it (``cel_rules``)."""

    kind: str
    moves: Mapping[str, frozenset[str]]  # phase -> phases it may move to (itself excluded)
    finished: frozenset[str]
    claimed: frozenset[str]  # phases in which status.agentSession must be set

    def allows(self, old: str | None, new: str | None) -> bool:
        if old is None or old == new:
            return True
        return new is not None and new in self.moves.get(old, frozenset())

    def cel_rules(self) -> list[dict[str, str]]:
        """``x-kubernetes-validations`` for the status schema (transition rules use
        ``oldSelf``: the first status write is checked only by the non-transition ones)."""
        finished = _cel_list(self.finished)
        pairs = " || ".join(
            f"(oldSelf.phase == '{old}' && self.phase in {_cel_list(new)})"
            for old, new in sorted(self.moves.items())
            if new
        )
        order = " -> ".join(_order(self))
        return [
            {
                "rule": f"!has(oldSelf.phase) || !(oldSelf.phase in {finished}) || self == oldSelf",
                "message": FINISHED_MESSAGE,
            },
            {
                "rule": "!has(oldSelf.phase) || (has(self.phase) && "
                f"(self.phase == oldSelf.phase || {pairs}))",
                "message": f"{FORWARD_MESSAGE}: {order}",
            },
            {
                "rule": "!has(oldSelf.agentSession) || "
                "(has(self.agentSession) && self.agentSession == oldSelf.agentSession)",
                "message": SESSION_MESSAGE,
            },
            {
                "rule": f"!has(self.phase) || !(self.phase in {_cel_list(self.claimed)}) "
                "|| has(self.agentSession)",
                "message": UNCLAIMED_MESSAGE,
            },
        ]


FINISHED_MESSAGE = "a finished job (Succeeded or Failed) never changes: create a new job"
FORWARD_MESSAGE = "status.phase only moves forward"
SESSION_MESSAGE = "status.agentSession never changes once the job is claimed"
UNCLAIMED_MESSAGE = "a Running or Succeeded job names the agent session that claimed it"
#: What the API server says when it refuses a write under this contract.
TRANSITION_MESSAGES = (FINISHED_MESSAGE, FORWARD_MESSAGE, SESSION_MESSAGE, UNCLAIMED_MESSAGE)


def _cel_list(values: frozenset[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def _order(machine: PhaseMachine) -> list[str]:
    seen: list[str] = []
    for old in machine.moves:
        if old not in seen:
            seen.append(old)
    return [*seen, " or ".join(sorted(machine.finished))]


_DONE = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value})

BACKUP_JOB = PhaseMachine(
    kind="BackupJob",
    moves={
        JobPhase.PENDING.value: frozenset({JobPhase.RUNNING.value, JobPhase.FAILED.value}),
        JobPhase.RUNNING.value: _DONE,
    },
    finished=_DONE,
    claimed=frozenset({JobPhase.RUNNING.value, JobPhase.SUCCEEDED.value}),
)
RESTORE_JOB = PhaseMachine(
    kind="RestoreJob",
    moves={
        RestorePhase.PENDING.value: frozenset(
            {RestorePhase.PLANNED.value, RestorePhase.FAILED.value}
        ),
        RestorePhase.PLANNED.value: frozenset(
            {RestorePhase.RUNNING.value, RestorePhase.FAILED.value}
        ),
        RestorePhase.RUNNING.value: _DONE,
    },
    finished=_DONE,
    claimed=frozenset({RestorePhase.RUNNING.value, RestorePhase.SUCCEEDED.value}),
)
MACHINES = {m.kind: m for m in (BACKUP_JOB, RESTORE_JOB)}
#: Phases in which an agent may claim a job of each kind.
CLAIMABLE: Mapping[str, tuple[str | None, ...]] = {
    "BackupJob": (None, JobPhase.PENDING.value),
    "RestoreJob": (RestorePhase.PLANNED.value,),
}


def phase_of(obj: Mapping[str, Any]) -> str | None:
    """``status.phase`` of a job object as the API server returned it."""
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase else None


def session_of(obj: Mapping[str, Any]) -> str | None:
    token = (obj.get("status") or {}).get("agentSession")
    return str(token) if token else None


def is_finished(obj: Mapping[str, Any]) -> bool:
    return phase_of(obj) in _DONE

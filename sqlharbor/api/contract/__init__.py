"""The contract between the operator and the agent: every label, annotation and finalizer
name, the agent session and Lease format, the job phase state machines (which the API server
enforces through CEL rules generated from them), and typed builders for every status body
either side writes.

Imported by the operator, the agent, the CLI, the benchmarks and the tests; nothing else
spells these names (``tests/unit/api/test_contract_literals.py`` fails on a stray literal).

Who writes which status field (one writer per field):

* ``BackupJob``: the agent that claimed the job writes everything, from the claim
  (``Running`` + ``agentSession``, carrying the resourceVersion it read) to ``Succeeded`` or
  ``Failed``.  The operator writes only ``agent_lost``: a non-finished job moved to
  ``Failed`` with reason ``AgentLost`` once the claiming session's Lease expired, carrying
  the resourceVersion it read.  A restarted agent fails the jobs of its own earlier session
  (``agent_restarted``), also against the version it read.  A late write of the lost agent
  is refused by the server (a finished status never changes).
* ``RestoreJob``: the operator plans (``Pending`` while it waits, ``Planned`` with the plan,
  or ``Failed`` when it refuses), each write against the version it decided on; from the
  claim on (``Planned`` → ``Running``) the agent writes everything, except ``agent_lost``.

A write refused because of this contract (409 on a stale resourceVersion, 422 from a
transition rule) is a lost race (``errors.Conflict``), never an error to retry.
"""

from sqlharbor.api.contract.bodies import (
    agent_lost,
    agent_restarted,
    backup_finished,
    claim,
    failed,
    patch,
    restore_finished,
    restore_planned,
    restore_waiting,
)
from sqlharbor.api.contract.names import (
    ANNOTATION_VAULT,
    FINALIZERS,
    LABEL_AGENT,
    LABEL_AUTO_PROTECTED,
    LABEL_BACKUP_TYPE,
    LABEL_INSTANCE,
    LABEL_SCHEDULED,
    LABEL_TARGET_INSTANCE,
    reporting_controller,
    truthy_label,
)
from sqlharbor.api.contract.phases import (
    BACKUP_JOB,
    CLAIMABLE,
    MACHINES,
    RESTORE_JOB,
    TRANSITION_MESSAGES,
    PhaseMachine,
    is_finished,
    phase_of,
    session_of,
)
from sqlharbor.api.contract.sessions import (
    ACCOUNT_PREFIX,
    LEASE_PREFIX,
    LEASE_UNSEEN_GRACE,
    AgentSession,
    LeaseInfo,
    agent_account,
    lease_from_object,
    lease_name,
    lease_object,
    lease_spec,
    session_lost,
    unsupported_agent_version,
)

__all__ = [
    "ACCOUNT_PREFIX",
    "ANNOTATION_VAULT",
    "BACKUP_JOB",
    "CLAIMABLE",
    "FINALIZERS",
    "LABEL_AGENT",
    "LABEL_AUTO_PROTECTED",
    "LABEL_BACKUP_TYPE",
    "LABEL_INSTANCE",
    "LABEL_SCHEDULED",
    "LABEL_TARGET_INSTANCE",
    "LEASE_PREFIX",
    "LEASE_UNSEEN_GRACE",
    "MACHINES",
    "RESTORE_JOB",
    "TRANSITION_MESSAGES",
    "AgentSession",
    "LeaseInfo",
    "PhaseMachine",
    "agent_account",
    "agent_lost",
    "agent_restarted",
    "backup_finished",
    "claim",
    "failed",
    "is_finished",
    "lease_from_object",
    "lease_name",
    "lease_object",
    "lease_spec",
    "patch",
    "phase_of",
    "reporting_controller",
    "restore_finished",
    "restore_planned",
    "restore_waiting",
    "session_lost",
    "session_of",
    "truthy_label",
    "unsupported_agent_version",
]

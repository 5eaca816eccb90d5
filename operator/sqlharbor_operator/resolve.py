"""Resolve a ProtectedDatabase's references (policy, vault, instance, agent, database) from
the in-memory state, or say exactly what is missing and how to fix it.  Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlharbor.api import (
    BackupPolicy,
    BackupVault,
    DiscoveredDatabase,
    ProtectedDatabase,
    SqlInstance,
    VaultPhase,
)
from sqlharbor.api.contract import AgentSession, unsupported_agent_version
from sqlharbor.errors import ErrorCode, InvalidPolicy
from sqlharbor_operator import __version__
from sqlharbor_operator.scheduling import validate_policy
from sqlharbor_operator.state import State


@dataclass(frozen=True)
class Resolved:
    policy: BackupPolicy
    vault: BackupVault
    instance: SqlInstance
    database: DiscoveredDatabase


@dataclass(frozen=True)
class Problem:
    """What blocks protection: ``reason`` becomes the Ready condition's reason (and a
    RestoreJob's error code when a restore cannot wait any longer)."""

    reason: ErrorCode
    message: str


def instance_served(state: State, instance: SqlInstance, now: datetime) -> Problem | None:
    ns, name = instance.metadata.namespace or "", instance.metadata.name
    agent = instance.status.agent if instance.status else None
    assigned = instance.spec.agent
    if assigned is None:
        return Problem(
            ErrorCode.INSTANCE_NOT_SERVED,
            f"SqlInstance {name} has no enrolled agent (spec.agent): kubectl sqlharbor agent "
            f"enroll NAME --instance {name}, then run sqlharbor-agent with agentId NAME on "
            f"host {instance.spec.host}",
        )
    hint = (
        f"start sqlharbor-agent (agentId {assigned}) on host {instance.spec.host} with a "
        f"config naming instance {name} (docs/security.md)"
    )
    if agent is None:
        return Problem(
            ErrorCode.INSTANCE_NOT_SERVED, f"no agent has registered for SqlInstance {name}: {hint}"
        )
    skew = unsupported_agent_version(__version__, agent.version)
    if skew is not None:
        return Problem(ErrorCode.AGENT_VERSION_UNSUPPORTED, f"SqlInstance {name}: {skew}")
    session = AgentSession.parse(agent.session_id) or AgentSession(agent.session_id, "")
    lease = state.leases.get((ns, session.agent_id))
    if lease is None or not lease.held_by(session, now):
        return Problem(
            ErrorCode.AGENT_LOST,
            f"the agent {session.agent_id} serving SqlInstance {name} stopped renewing its "
            f"heartbeat: {hint}",
        )
    return None


def resolve(state: State, pd: ProtectedDatabase, now: datetime) -> Resolved | Problem:
    ns = pd.metadata.namespace or ""
    policy = state.policies.get((ns, pd.spec.policy_ref.name))
    if policy is None:
        return Problem(
            ErrorCode.POLICY_NOT_FOUND,
            f"BackupPolicy {pd.spec.policy_ref.name} does not exist in namespace {ns}",
        )
    try:
        validate_policy(policy.spec)
    except InvalidPolicy as exc:
        return Problem(ErrorCode.INVALID_POLICY, f"BackupPolicy {policy.metadata.name}: {exc}")
    vault_ref = pd.spec.vault_ref or policy.spec.vault_ref
    if vault_ref is None:
        return Problem(
            ErrorCode.VAULT_NOT_SET,
            f"no vault: set spec.vaultRef here or in BackupPolicy {policy.metadata.name}",
        )
    vault = state.vaults.get((ns, vault_ref.name))
    if vault is None:
        return Problem(
            ErrorCode.VAULT_NOT_FOUND,
            f"BackupVault {vault_ref.name} does not exist in namespace {ns}",
        )
    if vault.status is None or vault.status.phase is not VaultPhase.AVAILABLE:
        detail = vault.status.message if vault.status and vault.status.message else "not validated"
        return Problem(
            ErrorCode.VAULT_UNAVAILABLE, f"BackupVault {vault_ref.name} is unavailable: {detail}"
        )
    instance = state.instances.get((ns, pd.spec.instance_ref.name))
    if instance is None:
        return Problem(
            ErrorCode.INSTANCE_NOT_FOUND,
            f"SqlInstance {pd.spec.instance_ref.name} does not exist in namespace {ns}",
        )
    not_served = instance_served(state, instance, now)
    if not_served is not None:
        return not_served
    discovered = instance.status.databases if instance.status else []
    for db in discovered:
        if db.name == pd.spec.database_name:
            return Resolved(policy, vault, instance, db)
    names = ", ".join(sorted(d.name for d in discovered)[:10]) or "none"
    return Problem(
        ErrorCode.SQL_PO_DOES_NOT_EXIST,
        f"database {pd.spec.database_name!r} was not found on SqlInstance "
        f"{instance.metadata.name} (discovered: {names}); fix spec.databaseName or "
        "restore the database",
    )

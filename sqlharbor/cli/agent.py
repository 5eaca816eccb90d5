"""``sqlharbor agent enroll`` / ``revoke``: give one VM's agent its own identity, or take it
away.  Run by an admin (the CLI's kubeconfig needs rights on ServiceAccounts, Roles,
RoleBindings, TokenRequest and SqlInstances).

``enroll NAME --instance I ...`` creates ServiceAccount ``sqlharbor-agent-NAME`` with a Role
of exactly what the agent needs (``sqlharbor.kube.agents.agent_rules``), assigns the
instances to it (``SqlInstance.spec.agent``: the API server's fence policy then lets only
this agent write their status and claim their jobs), and prints a bootstrap kubeconfig
with a short-lived token; the agent renews the token itself.  ``enroll`` is idempotent:
run it again to add instances, pick up their SQL credential Secrets, or get a fresh
bootstrap token (the Role is rebuilt from every instance assigned to NAME; repeat any
``--secret``).  No vault Secret is ever granted: each job brings its own storage rights
and keys, sealed to the agent.
``revoke NAME`` deletes the ServiceAccount: every token it holds stops working at once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import yaml

from sqlharbor.api import SqlInstance
from sqlharbor.api.contract import agent_account
from sqlharbor.errors import Conflict, InvalidInput, NotFound, SqlHarborError
from sqlharbor.kube import KubeClient
from sqlharbor.kube.agents import (
    FENCE_POLICY,
    MIN_TOKEN_SECONDS,
    AgentAccounts,
    fence_installed,
    token_kubeconfig,
    write_private,
)

#: what SqlInstance.spec.agent accepts (sqlharbor.api.instance)
AGENT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,45}[a-z0-9])?")


@click.group()
def agent() -> None:
    """Enrol and revoke VM agents (one identity per VM)."""


@agent.command()
@click.argument("name")
@click.option(
    "--instance",
    "instances",
    multiple=True,
    required=True,
    help="A SqlInstance this agent serves (repeat for several).",
)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "--token-seconds",
    type=click.IntRange(min=MIN_TOKEN_SECONDS),
    default=3600,
    show_default=True,
    help="Lifetime of the bootstrap token: start the agent before it ends.",
)
@click.option("--reassign", is_flag=True, help="Take instances another agent serves away from it.")
@click.option(
    "--secret",
    "extra_secrets",
    multiple=True,
    help="Another Secret the agent may read (its instances' SQL credentials are found).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the kubeconfig here (mode 0600) instead of standard output.",
)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def enroll(
    name: str,
    instances: Sequence[str],
    namespace: str,
    token_seconds: int,
    reassign: bool,
    extra_secrets: Sequence[str],
    output: Path | None,
    kubeconfig: str | None,
) -> None:
    """Enrol agent NAME for the given SqlInstances and print its bootstrap kubeconfig.

    \b
    Example:
      kubectl sqlharbor agent enroll sql-vm-01 --instance sql-vm-01 -n databases \\
          -o sql-vm-01.kubeconfig
      scp sql-vm-01.kubeconfig sql-vm-01:/var/lib/sqlharbor/kubeconfig
    """
    if not AGENT_NAME.fullmatch(name):
        click.echo(
            f"error: agent name {name!r} must be 1-47 lowercase letters, digits and inner "
            "hyphens (it becomes ServiceAccount sqlharbor-agent-NAME)",
            err=True,
        )
        sys.exit(2)
    try:
        client = KubeClient.from_kubeconfig(kubeconfig)
        _require_fence(client)
        resources = [_instance(client, namespace, i, name, reassign) for i in instances]
        served = resources + [  # what it already serves keeps its Secrets
            i
            for i in client.list(SqlInstance, namespace)
            if i.spec.agent == name and i.metadata.name not in instances
        ]
        secrets = _secrets_of(client, namespace, served) | set(extra_secrets)
        accounts = AgentAccounts(client, namespace)
        accounts.ensure(name, secrets)
        for resource in resources:  # against what was read: two enrols cannot both take it
            client.patch_spec(
                "SqlInstance",
                namespace,
                resource.metadata.name,
                {"agent": name},
                resource_version=resource.metadata.resource_version,
            )
        issued = accounts.issue_token(name, token_seconds)
    except Conflict:
        click.echo(
            "error: an instance changed while enrolling (another enrol?): run it again", err=True
        )
        sys.exit(1)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(3 if isinstance(exc, NotFound) else 1)
    configuration = client.api_client.configuration
    ca_data = Path(configuration.ssl_ca_cert).read_bytes() if configuration.ssl_ca_cert else None
    if not configuration.verify_ssl:
        click.echo(
            "warning: your kubeconfig skips TLS verification, so the agent's will too",
            err=True,
        )
    document = token_kubeconfig(
        server=configuration.host,
        ca_data=ca_data,
        verify=bool(configuration.verify_ssl),
        tls_server_name=configuration.tls_server_name,
        namespace=namespace,
        user=agent_account(name),
        token=issued.token,
    )
    text = yaml.safe_dump(document, sort_keys=False)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_private(output, text.encode("utf-8"))
    click.echo(
        f"enrolled agent {name} in namespace {namespace}: ServiceAccount "
        f"{agent_account(name)}; instances {', '.join(instances)}; Secrets "
        f"{', '.join(sorted(secrets)) or 'none'}; bootstrap token valid until "
        f"{issued.expires.isoformat()} (the agent renews it; set agentId: {name})",
        err=True,
    )


@agent.command()
@click.argument("name")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("--kubeconfig", envvar="KUBECONFIG", default=None)
def revoke(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Delete agent NAME's identity: its tokens stop working at its next call.

    Its SqlInstances keep ``spec.agent``: enrol NAME again (a new identity) to let a
    rebuilt VM serve them, or enrol another agent with --reassign.
    """
    try:
        client = KubeClient.from_kubeconfig(kubeconfig)
        found = AgentAccounts(client, namespace).revoke(name)
    except SqlHarborError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    if not found:
        click.echo(f"error: agent {name} is not enrolled in namespace {namespace}", err=True)
        sys.exit(3)
    click.echo(f"revoked agent {name}: ServiceAccount {agent_account(name)} deleted", err=True)


def _require_fence(client: KubeClient) -> None:
    """Refuse to enrol when the API server's fence is missing: RBAC alone would let any
    agent write every instance's and job's status in the namespace."""
    installed = fence_installed(client)
    if installed is False:
        raise InvalidInput(
            f"the agent fence (ValidatingAdmissionPolicy {FENCE_POLICY} and its binding) is "
            "not installed: install it first (kubectl apply -k config/policy as cluster-admin; "
            "config/default includes it)"
        )
    if installed is None:
        click.echo(
            f"warning: cannot check that ValidatingAdmissionPolicy {FENCE_POLICY} is "
            "installed (no permission to read it); without it RBAC alone fences the agent",
            err=True,
        )


def _instance(
    client: KubeClient, namespace: str, instance: str, agent_id: str, reassign: bool
) -> SqlInstance:
    try:
        resource = client.get(SqlInstance, namespace, instance)
    except NotFound:
        known = ", ".join(i.metadata.name for i in client.list(SqlInstance, namespace))
        raise NotFound(
            f"SqlInstance {namespace}/{instance} not found (instances: {known or 'none'})"
        ) from None
    current = resource.spec.agent
    if current not in (None, agent_id) and not reassign:
        raise InvalidInput(
            f"SqlInstance {instance} is served by agent {current}; pass --reassign to give "
            f"it to {agent_id}"
        )
    return resource


def _secrets_of(client: KubeClient, namespace: str, instances: Sequence[SqlInstance]) -> set[str]:
    """The Secrets the agent reads: its instances' SQL credentials, nothing else (each job
    brings its own storage rights and keys, sealed to the agent: ``contract.grants``)."""
    return {
        ref.name for i in instances if (ref := i.spec.connection.credentials_secret_ref) is not None
    }

"""``sqlharbor-operator``: run the operator for one or more namespaces (or cluster-wide)."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import click

from sqlharbor.azure_access import KEY_VAULT_DOMAINS, STORAGE_DOMAINS, AzureSettings
from sqlharbor.errors import InvalidInput
from sqlharbor.vault.identity import WorkloadIdentity
from sqlharbor_operator.leadership import ElectionSettings
from sqlharbor_operator.settings import OperatorSettings

_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@click.command()
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path),
    default=None,
    help="Kubeconfig (default: in-cluster, or $KUBECONFIG).",
)
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace to serve (repeatable); omit for all namespaces.",
)
@click.option(
    "--tick-seconds",
    type=float,
    default=1.0,
    show_default=True,
    help="How often the scheduler looks for due backups.",
)
@click.option(
    "--retention-seconds",
    type=float,
    default=600.0,
    show_default=True,
    help="How often recovery points the policies no longer keep are deleted from the vaults.",
)
@click.option(
    "--grant-seconds",
    type=click.IntRange(300, 7 * 86400),
    default=43200,
    show_default=True,
    envvar="SQLHARBOR_GRANT_SECONDS",
    help="How long a job's storage rights (SAS) last after the job is claimed; a job "
    "running longer fails GrantExpired.",
)
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics here.")
@click.option(
    "--health-port",
    type=int,
    default=None,
    help="Serve kopf's health endpoint at http://0.0.0.0:PORT/healthz (liveness, readiness).",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=True,
    show_default=True,
    help="Run the controller only while holding the leader Lease (run 2 replicas for HA).",
)
@click.option(
    "--leader-election-namespace",
    default=None,
    help="Namespace of the leader Lease (default: $POD_NAMESPACE, the pod's own namespace, "
    "or the one --namespace).",
)
@click.option("--leader-election-name", default="sqlharbor-operator", show_default=True)
@click.option(
    "--lease-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="A standby takes over after the leader has not renewed for this long.",
)
@click.option(
    "--identity",
    default=None,
    help="This replica's name in the Lease (default: $POD_NAME or the host name, plus a "
    "random suffix).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per line (kopf's JSON format) with the job and database as fields.",
)
@click.option(
    "--azure-ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    envvar="SQLHARBOR_AZURE_CA_BUNDLE",
    help="PEM file of CAs to trust for Entra ID and Key Vault instead of the system's (a "
    "TLS-inspecting proxy, a private CA).",
)
@click.option(
    "--azure-authority-host",
    default=None,
    envvar="SQLHARBOR_AZURE_AUTHORITY_HOST",
    help="Entra ID authority for service principals (login.microsoftonline.us, "
    "login.chinacloudapi.cn, ...); workload identity uses $AZURE_AUTHORITY_HOST first. "
    "Default: the public cloud.",
)
@click.option(
    "--azure-disable-instance-discovery",
    is_flag=True,
    default=False,
    envvar="SQLHARBOR_AZURE_DISABLE_INSTANCE_DISCOVERY",
    help="For an authority host Microsoft does not know (Azure Stack Hub).",
)
@click.option(
    "--azure-key-vault-domains",
    default=",".join(KEY_VAULT_DOMAINS),
    show_default=True,
    envvar="SQLHARBOR_AZURE_KEY_VAULT_DOMAINS",
    help="Comma-separated DNS domains of the Key Vaults a BackupVault may name: the operator "
    "sends its identity's tokens only there.",
)
@click.option(
    "--azure-storage-domains",
    default=",".join(STORAGE_DOMAINS),
    show_default=True,
    envvar="SQLHARBOR_AZURE_STORAGE_DOMAINS",
    help="Comma-separated DNS domains of the blob services a BackupVault reached with an "
    "identity may name: the operator sends its identity's tokens only there.",
)
@click.option(
    "--azure-insecure-challenge-resource",
    is_flag=True,
    default=False,
    envvar="SQLHARBOR_AZURE_INSECURE_CHALLENGE_RESOURCE",
    hidden=True,  # only the tests' Key Vault stand-in on 127.0.0.1 needs it
)
@click.option("--log-level", default="INFO", show_default=True)
def main(
    kubeconfig: Path | None,
    namespaces: tuple[str, ...],
    tick_seconds: float,
    retention_seconds: float,
    grant_seconds: int,
    metrics_port: int | None,
    health_port: int | None,
    leader_elect: bool,
    leader_election_namespace: str | None,
    leader_election_name: str,
    lease_seconds: float,
    identity: str | None,
    azure_ca_bundle: str | None,
    azure_authority_host: str | None,
    azure_disable_instance_discovery: bool,
    azure_key_vault_domains: str,
    azure_storage_domains: str,
    azure_insecure_challenge_resource: bool,
    log_format: str,
    log_level: str,
) -> None:
    """Reconcile sqlharbor resources: schedule backups, track recovery points and health."""
    import kopf

    from sqlharbor_operator import handlers, logs, metrics

    election = None
    if leader_elect:
        namespace = leader_election_namespace or _own_namespace(namespaces)
        if namespace is None:
            raise click.UsageError(
                "--leader-election-namespace is needed: neither $POD_NAMESPACE nor a pod "
                "namespace nor a single --namespace says where the leader Lease lives"
            )
        election = ElectionSettings(
            namespace=namespace,
            identity=identity or _identity(),
            name=leader_election_name,
            lease_seconds=lease_seconds,
            renew_seconds=max(1.0, lease_seconds / 5),
        )
    settings = OperatorSettings(
        kubeconfig=kubeconfig or _env_path("KUBECONFIG"),
        namespaces=namespaces,
        tick_seconds=tick_seconds,
        retention_interval=timedelta(seconds=retention_seconds),
        grant_lifetime=timedelta(seconds=grant_seconds),
        metrics_port=metrics_port,
        election=election,
        azure=AzureSettings(
            ca_bundle=azure_ca_bundle,
            authority_host=azure_authority_host,
            disable_instance_discovery=azure_disable_instance_discovery,
            key_vault_domains=_domains(azure_key_vault_domains),
            storage_domains=_domains(azure_storage_domains),
            verify_challenge_resource=not azure_insecure_challenge_resource,
            workload_identity=_workload_identity(),
        ),
    )
    logs.configure(log_format, log_level)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port)
    kopf.run(
        registry=handlers.registry(),
        memo=handlers.memo(settings),
        standalone=True,
        namespaces=list(settings.namespaces),
        clusterwide=not settings.namespaces,
        liveness_endpoint=(
            f"http://0.0.0.0:{health_port}/healthz" if health_port is not None else None
        ),
    )


def _domains(text: str) -> tuple[str, ...]:
    """A comma-separated list of DNS domains, blanks dropped."""
    return tuple(d.strip() for d in text.split(",") if d.strip())


def _workload_identity() -> WorkloadIdentity | None:
    """The pod's workload identity, when the webhook injected one."""
    try:
        return WorkloadIdentity.from_env(os.environ)
    except InvalidInput:
        return None


def _own_namespace(namespaces: tuple[str, ...]) -> str | None:
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return _POD_NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        pass
    return namespaces[0] if len(namespaces) == 1 else None


def _identity() -> str:
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None

"""Agent identities in the API server: one ServiceAccount, Role and RoleBinding per enrolled
agent, short-lived tokens from the TokenRequest API, and the kubeconfig that carries one.

Called by the CLI (``kubectl sqlharbor agent enroll`` / ``revoke``: an admin's client) and
by the agent (``sqlharbor_agent.credentials``: it renews its own token with its own client).
The Role is the whole of what one agent may do in RBAC terms; the API server's
ValidatingAdmissionPolicy (config/policy/agent_fence.yaml) narrows its writes further to
its own instances, jobs and Lease.  A token never reaches a log line or an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from sqlharbor.api import GROUP
from sqlharbor.api.contract import LABEL_AGENT, agent_account, lease_name
from sqlharbor.errors import AccessDenied, Conflict, ErrorCode, InvalidInput, NotFound
from sqlharbor.kube.client import KubeClient

#: The ValidatingAdmissionPolicy (and binding) of config/policy/agent_fence.yaml.
FENCE_POLICY = "sqlharbor-agent-fence"
#: What the API server accepts as the shortest token lifetime.
MIN_TOKEN_SECONDS = 600
_PART_OF = {"app.kubernetes.io/part-of": "sqlharbor", "app.kubernetes.io/name": "sqlharbor-agent"}


def agent_rules(agent_id: str, secrets: Iterable[str]) -> list[dict[str, Any]]:
    """The RBAC rules of one agent: read its namespace's instances and jobs, write job and
    instance status (narrowed by the fence policy), renew its own Lease and token, and read
    the Secrets its instances' SQL connections name (by name).  No vault, no vault Secret:
    each job brings its own storage rights and keys.  It posts no Events."""
    account = agent_account(agent_id)
    rules: list[dict[str, Any]] = [
        {
            "apiGroups": [GROUP],
            "resources": ["sqlinstances", "backupjobs", "restorejobs"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": [GROUP],
            "resources": ["sqlinstances/status", "backupjobs/status", "restorejobs/status"],
            "verbs": ["patch"],
        },
        # create cannot be narrowed by name in RBAC; the fence policy checks the name
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease_name(agent_id)],
            "verbs": ["get", "update", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts/token"],
            "resourceNames": [account],
            "verbs": ["create"],
        },
    ]
    names = sorted(set(secrets))
    if names:
        rules.append(
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]}
        )
    return rules


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires: datetime
    #: when it was asked for: the API server may grant less than the lifetime requested
    issued: datetime = field(default_factory=lambda: datetime.now(UTC))

    def renew_at(self, share: float) -> datetime:
        """When ``share`` of the lifetime it was granted is gone."""
        return self.issued + (self.expires - self.issued) * share

    def __repr__(self) -> str:
        return f"IssuedToken(expires={self.expires.isoformat()})"


class AgentAccounts:
    """ServiceAccount, Role, RoleBinding and tokens of the agents of one namespace."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._rbac = k8s.RbacAuthorizationV1Api(client.api_client)

    def ensure(self, agent_id: str, secrets: Iterable[str]) -> None:
        """Create or update the agent's ServiceAccount, Role and RoleBinding (idempotent)."""
        account = agent_account(agent_id)
        meta = {
            "name": account,
            "namespace": self._namespace,
            "labels": {**_PART_OF, LABEL_AGENT: agent_id},
        }
        self._create_or_keep(
            f"ServiceAccount {account}",
            self._client.core.create_namespaced_service_account,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        )
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": agent_rules(agent_id, secrets),
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self._namespace}],
        }
        self._create_or_replace(
            f"Role {account}",
            self._rbac.create_namespaced_role,
            self._rbac.replace_namespaced_role,
            role,
        )
        self._create_or_replace(
            f"RoleBinding {account}",
            self._rbac.create_namespaced_role_binding,
            self._rbac.replace_namespaced_role_binding,
            binding,
        )

    def revoke(self, agent_id: str) -> bool:
        """Delete the agent's ServiceAccount (every token it was issued stops working at
        once), Role and RoleBinding; False when there was nothing to delete."""
        account = agent_account(agent_id)
        found = False
        for what, delete in (  # its rights first: refused at once, then unauthenticated
            ("RoleBinding", self._rbac.delete_namespaced_role_binding),
            ("Role", self._rbac.delete_namespaced_role),
            ("ServiceAccount", self._client.core.delete_namespaced_service_account),
        ):
            try:
                self._client.call(f"delete {what} {account}", delete, account, self._namespace)
                found = True
            except NotFound:
                continue
        return found

    def issue_token(self, agent_id: str, seconds: int) -> IssuedToken:
        """A token for the agent's ServiceAccount (TokenRequest), valid ``seconds``."""
        return request_token(self._client, self._namespace, agent_account(agent_id), seconds)

    def _create_or_keep(self, what: str, create: Any, body: dict[str, Any]) -> None:
        try:
            self._client.call(f"create {what}", create, self._namespace, body)
        except Conflict:
            return  # exists: a ServiceAccount has nothing to update (its uid must stay)

    def _create_or_replace(
        self, what: str, create: Any, replace: Any, body: dict[str, Any]
    ) -> None:
        try:
            self._client.call(f"create {what}", create, self._namespace, body)
        except Conflict:
            name = body["metadata"]["name"]
            self._client.call(f"update {what}", replace, name, self._namespace, body)


def fence_installed(client: KubeClient) -> bool | None:
    """Whether the agent fence policy and its binding exist (None: not allowed to look)."""
    api = k8s.AdmissionregistrationV1Api(client.api_client)
    try:
        client.call("read the agent fence", api.read_validating_admission_policy, FENCE_POLICY)
        client.call(
            "read the agent fence binding",
            api.read_validating_admission_policy_binding,
            FENCE_POLICY,
        )
    except NotFound:
        return False
    except AccessDenied:
        return None
    return True


def request_token(
    client: KubeClient, namespace: str, service_account: str, seconds: int
) -> IssuedToken:
    """TokenRequest for ``namespace``/``service_account``; the caller needs create on its
    ``serviceaccounts/token`` (an agent has it for its own account only)."""
    if seconds < MIN_TOKEN_SECONDS:
        raise InvalidInput(
            f"a token must live at least {MIN_TOKEN_SECONDS} seconds, not {seconds}",
            code=ErrorCode.INVALID_AGENT_CONFIG,
        )
    issued = datetime.now(UTC)
    body = k8s.AuthenticationV1TokenRequest(
        spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    result = client.call(
        f"TokenRequest for ServiceAccount {namespace}/{service_account}",
        client.core.create_namespaced_service_account_token,
        service_account,
        namespace,
        body,
    )
    expires = result.status.expiration_timestamp
    if expires is None:
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
    return IssuedToken(token=result.status.token, expires=expires, issued=issued)


def token_subject(token: str) -> tuple[str, str] | None:
    """(namespace, ServiceAccount) a ServiceAccount token was issued for, read from its
    claims (not verified: the API server does that); None for any other credential."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    subject = str(payload.get("sub", "")) if isinstance(payload, dict) else ""
    pieces = subject.split(":")
    if len(pieces) != 4 or pieces[:2] != ["system", "serviceaccount"]:
        return None
    return pieces[2], pieces[3]


def token_kubeconfig(
    *,
    server: str,
    ca_data: bytes | None,
    namespace: str,
    user: str,
    token: str,
    verify: bool = True,
    tls_server_name: str | None = None,
) -> dict[str, Any]:
    """A one-context kubeconfig authenticating with ``token``; without ``ca_data`` the
    system's trusted CAs verify the server (TLS is skipped only when ``verify`` is off)."""
    cluster: dict[str, Any] = {"server": server}
    if not verify:
        cluster["insecure-skip-tls-verify"] = True
    elif ca_data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode("ascii")
    if tls_server_name:
        cluster["tls-server-name"] = tls_server_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sqlharbor", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": user,
                "context": {"cluster": "sqlharbor", "user": user, "namespace": namespace},
            }
        ],
        "current-context": user,
    }


def replace_token(path: Path, token: str) -> None:
    """Put ``token`` into the kubeconfig at ``path`` (the current context's user), written
    atomically with mode 0600 so a crash leaves the old file or the new one."""
    document = yaml.safe_load(path.read_text())
    contexts = {c["name"]: c["context"] for c in document.get("contexts", [])}
    user = contexts[document["current-context"]]["user"]
    for entry in document.get("users", []):
        if entry["name"] == user:
            entry["user"] = {"token": token}
    write_private(path, yaml.safe_dump(document, sort_keys=False).encode("utf-8"))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows the folder's ACL protects it
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

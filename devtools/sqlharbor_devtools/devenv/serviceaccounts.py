"""ServiceAccount kubeconfigs: how an agent authenticates to the dev control plane.

Called by :meth:`sqlharbor_devtools.devenv.ControlPlane.create_service_account_kubeconfig`, the
tests and the demo.  Creates the namespace (if absent) and the ServiceAccount explicitly
(there is no controller-manager), asks the TokenRequest API for a bound token and writes a
kubeconfig (0600) with it; RBAC then applies to whoever uses that kubeconfig.  The token is
never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sqlharbor_devtools.devenv.errors import DevEnvError
from sqlharbor_devtools.devenv.kubeconfig import token_credentials, write_kubeconfig


def _cluster(admin_kubeconfig: Path) -> tuple[str, bytes]:
    import base64

    doc: dict[str, Any] = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    return str(cluster["server"]), base64.b64decode(cluster["certificate-authority-data"])


def _create_ignoring_conflict(create: Any, *args: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise DevEnvError(f"creating {args[-1].metadata.name} failed: {exc.reason}") from None


def create_service_account_kubeconfig(
    admin_kubeconfig: Path,
    namespace: str,
    name: str,
    *,
    path: Path,
    expiration_seconds: int = 86400,
) -> Path:
    """Ensure ServiceAccount ``namespace``/``name`` exists; write ``path``; return it."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(admin_kubeconfig)
    )
    try:
        core = client.CoreV1Api(api_client)
        _create_ignoring_conflict(
            core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        _create_ignoring_conflict(
            core.create_namespaced_service_account,
            namespace,
            client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)),
        )
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        answer = core.create_namespaced_service_account_token(name, namespace, request)
        if answer.status is None or not answer.status.token:
            raise DevEnvError(f"the TokenRequest for {namespace}/{name} returned no token")
        token = str(answer.status.token)
    finally:
        api_client.close()
    server, ca_cert = _cluster(admin_kubeconfig)
    return write_kubeconfig(
        path,
        server=server,
        ca_cert=ca_cert,
        user=f"system:serviceaccount:{namespace}:{name}",
        credentials=token_credentials(token),
        namespace=namespace,
    )

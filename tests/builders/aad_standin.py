"""A token endpoint stand-in: Entra ID (AAD v2) over HTTPS and IMDS over HTTP, one issuer.

``TokenService(ca)`` starts two loopback servers that issue opaque bearer tokens to the
identities a test registers, and remembers every token (``verify``), so the Key Vault
stand-in can check a bearer token against what was issued and to whom:

- AAD v2, ``https://127.0.0.1:PORT`` (``authority_url``), for ``ClientSecretCredential``
  and ``WorkloadIdentityCredential`` (MSAL under azure-identity):
  ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (MSAL's tenant discovery, which
  it always does) and ``POST /{tenant}/oauth2/v2.0/token`` (client_credentials, with a
  ``client_secret`` or a ``client_assertion``, the projected service-account token of
  workload identity).  Point azure-identity at it with ``authority=authority_url`` and
  ``disable_instance_discovery=True`` (else MSAL asks login.microsoftonline.com whether
  the host is a known authority), and ``connection_verify=ca.ca_file`` (azure-identity
  refuses an ``http`` authority): ``sqlharbor.vault.identity`` passes these from
  ``authority_host``, ``disable_instance_discovery`` and ``ca_bundle``.
- IMDS, ``http://127.0.0.1:PORT`` (``imds_url``), for ``ManagedIdentityCredential``:
  ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=C]``
  with ``Metadata: true``.  azure-identity (through MSAL's managed identity client) reads
  the environment variable ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` for the IMDS host when
  it asks for a token, so set it to ``imds_url`` (``imds_environment``) and unset
  IDENTITY_ENDPOINT, IDENTITY_HEADER, MSI_ENDPOINT, MSI_SECRET, IMDS_ENDPOINT and the
  workload identity variables, which select other managed identity sources.

Tokens are JWTs with the claims Entra ID puts in an access token (``aud``: the resource,
``iss``: ``https://sts.windows.net/<tenant>/``, ``oid``, ``tid``, ``nbf``, ``exp``), signed
with a key of this service's own (HS256): MSAL and azure-identity do not look inside
access tokens; Azurite's basic OAuth mode (``--oauth basic``) reads the claims (audience,
issuer, lifetime; ``oid`` and ``tid`` for a user delegation key) without checking the
signature, and the Key Vault stand-in calls ``verify``.  Used by tests/integration/keys/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

from tests.builders.standin_http import LocalCa, Request, Response, StandinServer

TOKEN_LIFETIME = 3600
#: the variables that make azure-identity use another managed identity source than IMDS
OTHER_MANAGED_IDENTITY_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
)


@dataclass(frozen=True)
class Issued:
    """A token: to whom (``identity``), for which resource, until when (epoch seconds)."""

    identity: str
    resource: str
    expires_at: float


@dataclass
class TokenService:
    """Issues tokens to registered identities (see the module docstring)."""

    ca: LocalCa
    tenant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: every token request answered: (endpoint, identity or the error code)
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, tuple[str, str]] = {}  # client id -> (secret, identity)
        self._assertions: dict[str, tuple[str, str]] = {}  # client id -> (assertion, identity)
        self._managed: dict[str, str] = {}  # client id or "" (system-assigned) -> identity
        self._issued: dict[str, Issued] = {}
        self._signing_key = secrets.token_bytes(32)
        self._aad = StandinServer(self._serve_aad, tls=self.ca, name="aad")
        self._imds = StandinServer(self._serve_imds, name="imds")
        self.authority_url = self._aad.url
        self.imds_url = self._imds.url

    # -- registration ----------------------------------------------------------------------
    def register_client_secret(self, client_id: str, secret: str, *, identity: str = "") -> str:
        """A service principal; returns its identity name (``app:CLIENT_ID``)."""
        name = identity or f"app:{client_id}"
        with self._lock:
            self._secrets[client_id] = (secret, name)
        return name

    def register_federated(self, client_id: str, assertion: str, *, identity: str = "") -> str:
        """A workload identity: ``assertion`` is what its token file holds."""
        name = identity or f"workload:{client_id}"
        with self._lock:
            self._assertions[client_id] = (assertion, name)
        return name

    def register_managed_identity(self, client_id: str | None = None, *, identity: str = "") -> str:
        """A managed identity of the 'VM': user-assigned by client id, else system-assigned."""
        name = identity or (f"msi:{client_id}" if client_id else "msi:system")
        with self._lock:
            self._managed[client_id or ""] = name
        return name

    def imds_environment(self) -> dict[str, str]:
        """The environment that sends ``ManagedIdentityCredential`` to ``imds_url``."""
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url}

    # -- for the resource servers ----------------------------------------------------------
    def verify(self, token: str) -> Issued | None:
        """What ``token`` was issued as, if this service issued it and it has not expired."""
        with self._lock:
            issued = self._issued.get(token)
        if issued is None or issued.expires_at <= time.time():
            return None
        return issued

    def issued_tokens(self) -> list[str]:
        """Every token issued so far (for tests that check none leaks into a message)."""
        with self._lock:
            return list(self._issued)

    def _issue(self, identity: str, resource: str, endpoint: str) -> tuple[str, Issued]:
        issued = Issued(identity, resource.rstrip("/"), time.time() + TOKEN_LIFETIME)
        token = self._jwt(identity, issued)
        with self._lock:
            self._issued[token] = issued
            self.log.append((endpoint, identity))
        return token, issued

    def _jwt(self, identity: str, issued: Issued) -> str:
        now = int(time.time())
        claims = {
            "aud": issued.resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now - 60,
            "exp": int(issued.expires_at),
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, identity)),
            "tid": self.tenant_id,
            "sub": identity,
            "uti": secrets.token_urlsafe(16),
        }
        header = {"alg": "HS256", "typ": "JWT"}
        body = ".".join(_b64(json.dumps(part).encode()) for part in (header, claims))
        signature = hmac.new(self._signing_key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(signature)}"

    def _refuse(self, endpoint: str, status: int, error: str, description: str) -> Response:
        with self._lock:
            self.log.append((endpoint, error))
        return Response.json(status, {"error": error, "error_description": description})

    # -- AAD v2 ----------------------------------------------------------------------------
    def _serve_aad(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if not parts or parts[0] != self.tenant_id:
            return self._refuse(
                "aad", 400, "invalid_tenant", f"AADSTS90002: Tenant '{parts[0][:40]}' not found."
            )
        base = f"{self.authority_url}/{self.tenant_id}"
        if request.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return Response.json(
                200,
                {
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "private_key_jwt",
                    ],
                    "response_types_supported": ["code", "id_token", "token"],
                    "tenant_region_scope": "WW",
                },
            )
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(request.form())
        return Response.json(404, {"error": "not_found"})

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            return self._refuse("aad", 400, "unsupported_grant_type", "AADSTS70003")
        scope = form.get("scope", "").split(" ")[0]
        if not scope.endswith("/.default"):
            return self._refuse(
                "aad", 400, "invalid_scope", "AADSTS1002012: need RESOURCE/.default"
            )
        client_id = form.get("client_id", "")
        with self._lock:
            by_secret = self._secrets.get(client_id)
            by_assertion = self._assertions.get(client_id)
        if "client_secret" in form:
            expected, presented = by_secret, form["client_secret"]
        elif form.get("client_assertion_type", "").endswith(":jwt-bearer"):
            expected, presented = by_assertion, form.get("client_assertion", "")
        else:
            expected, presented = None, ""
        identity = None
        if expected is not None and secrets.compare_digest(
            expected[0].encode(), presented.encode()
        ):
            identity = expected[1]
        if identity is None:
            return self._refuse(
                "aad", 401, "invalid_client", "AADSTS7000215: Invalid client secret or assertion."
            )
        token, _ = self._issue(identity, scope.removesuffix("/.default"), "aad")
        return Response.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME - 1,
                "ext_expires_in": TOKEN_LIFETIME - 1,
                "access_token": token,
            },
        )

    # -- IMDS ------------------------------------------------------------------------------
    def _serve_imds(self, request: Request) -> Response:
        if request.path != "/metadata/identity/oauth2/token" or request.method != "GET":
            return Response.json(404, {"error": "not_found"})
        if request.headers.get("metadata") != "true":
            return self._refuse(
                "imds", 400, "invalid_request", "Required metadata header not specified"
            )
        resource = request.query.get("resource", "")
        if not resource or "api-version" not in request.query:
            return self._refuse("imds", 400, "invalid_request", "resource and api-version required")
        with self._lock:
            identity = self._managed.get(request.query.get("client_id", ""))
        if identity is None:
            return self._refuse("imds", 400, "invalid_request", "Identity not found")
        token, issued = self._issue(identity, resource, "imds")
        return Response.json(
            200,
            {
                "access_token": token,
                "client_id": request.query.get("client_id", "system"),
                "expires_in": str(TOKEN_LIFETIME - 1),
                "expires_on": str(int(issued.expires_at)),
                "ext_expires_in": str(TOKEN_LIFETIME - 1),
                "not_before": str(int(time.time())),
                "resource": resource,
                "token_type": "Bearer",
            },
        )

    def stop(self) -> None:
        self._aad.stop()
        self._imds.stop()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

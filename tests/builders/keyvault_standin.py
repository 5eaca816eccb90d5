"""A Key Vault keys REST stand-in: HTTPS on 127.0.0.1, real RSA-OAEP-256, bearer tokens.

``KeyVaultStandin(tokens, ca)`` serves, like Key Vault's data plane (api-version 7.x):

- ``GET /keys/{name}`` and ``/keys/{name}/{version}`` (``/keys/{name}/`` too, as the SDK
  asks for the latest): the public JWK (kid, kty RSA, key_ops, n, e) and attributes;
- ``POST /keys/{name}[/{version}]/wrapkey`` and ``.../unwrapkey`` with ``alg``
  RSA-OAEP-256, done with ``cryptography``; a value that does not decrypt is a 400
  BadParameter, as Key Vault answers;
- a request without a bearer token (the SDK's first, bodiless request) or with a token
  the token stand-in did not issue for ``https://vault.azure.net``: 401 with
  ``WWW-Authenticate: Bearer authorization="{authority}/{tenant}",
  resource="https://vault.azure.net"``, as Key Vault does;
- a per-identity permission set (``grant``: get, wrapKey, unwrapKey, sign); a missing one is a
  403 Forbidden (innererror ForbiddenByPolicy) naming it, as an access policy answers;
- ``fail_next(status, times, retry_after)``: the next authenticated requests get a 429
  (Throttled) or 5xx, with ``Retry-After`` when given;
- ``add_version``: keys have versions, the latest being the newest, to prepare rotation.

Pointing the SDK at it (azure-keyvault-keys 4.x over azure-core's requests transport):
``KeyClient(url, credential, connection_verify=str(ca.ca_file),
verify_challenge_resource=False)`` and the same for ``CryptographyClient``
(``KeyVaultKey(..., ca_bundle=..., verify_challenge_resource=False)`` passes them).
``connection_verify`` is azure-core's transport option (a CA bundle path for requests'
``verify``).  The process-wide REQUESTS_CA_BUNDLE variable works as well (azure-core's
requests transport reads the environment by default; tried), SSL_CERT_FILE does not
(requests verifies against certifi's bundle, not OpenSSL's default paths); the tests keep
the CA explicit.
``verify_challenge_resource=False`` is needed because the challenge policy checks that
the request's host ends with ``.`` + the challenge resource's host (vault.azure.net):
127.0.0.1 cannot.  The challenge's ``authorization`` names the token stand-in's tenant,
which the SDK passes to the credential as ``tenant_id`` (a service principal of another
tenant would refuse it).  Used by tests/integration/keys/.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from tests.builders.aad_standin import TokenService
from tests.builders.standin_http import LocalCa, Request, Response, StandinServer

RESOURCE = "https://vault.azure.net"
ALL_PERMISSIONS = frozenset({"get", "wrapKey", "unwrapKey", "sign"})
_OPERATIONS = {"wrapkey": "wrapKey", "unwrapkey": "unwrapKey", "sign": "sign"}
_OAEP_256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(status: int, code: str, message: str, inner: str | None = None) -> Response:
    error: dict[str, object] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response.json(status, {"error": error})


ALL_KEY_OPS = ("encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey")


@dataclass
class KeyVersion:
    version: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    created: int
    enabled: bool = True
    key_ops: tuple[str, ...] = ALL_KEY_OPS
    kty: str = "RSA"  # or RSA-HSM: the same to a client, but for the key type


@dataclass(frozen=True)
class Seen:
    """One request: what was asked, by whom (None: no valid token), and the answer."""

    method: str
    path: str
    identity: str | None
    status: int


class KeyVaultStandin:
    """See the module docstring."""

    def __init__(self, tokens: TokenService, ca: LocalCa) -> None:
        self.tokens = tokens
        self._lock = threading.Lock()
        self._keys: dict[str, list[KeyVersion]] = {}
        self._grants: dict[str, set[str]] = {}
        self._faults: list[tuple[int, str | None]] = []
        self.seen: list[Seen] = []
        self._server = StandinServer(self._serve, tls=ca, name="keyvault")
        self.url = self._server.url

    # -- set-up ----------------------------------------------------------------------------
    def add_version(
        self,
        name: str,
        *,
        bits: int = 3072,
        private_key: rsa.RSAPrivateKey | None = None,
        enabled: bool = True,
        key_ops: tuple[str, ...] = ALL_KEY_OPS,
        kty: str = "RSA",
    ) -> str:
        """A new (now latest) version of key ``name`` (a new RSA key of ``bits`` unless
        ``private_key`` reuses one); returns the version id."""
        key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=bits)
        version = uuid.uuid4().hex
        entry = KeyVersion(version, key, int(time.time()), enabled, key_ops, kty)
        with self._lock:
            self._keys.setdefault(name, []).append(entry)
        return version

    def versions(self, name: str) -> list[str]:
        with self._lock:
            return [v.version for v in self._keys.get(name, [])]

    def key_url(self, name: str, version: str | None = None) -> str:
        return f"{self.url}/keys/{name}" + (f"/{version}" if version else "")

    def private_key(self, name: str, version: str) -> rsa.RSAPrivateKey:
        with self._lock:
            return next(v.private_key for v in self._keys[name] if v.version == version)

    def grant(self, identity: str, *permissions: str) -> None:
        """Give ``identity`` these key permissions (replacing what it had)."""
        unknown = set(permissions) - ALL_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown key permissions {sorted(unknown)}")
        with self._lock:
            self._grants[identity] = set(permissions)

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """The next ``times`` authenticated requests are answered ``status``."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * times)

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def stop(self) -> None:
        self._server.stop()

    # -- serving ---------------------------------------------------------------------------
    def _serve(self, request: Request) -> Response:
        identity, response = self._authenticate(request)
        if response is None:
            response = self._answer(request, identity)
        with self._lock:
            self.seen.append(Seen(request.method, request.path, identity, response.status))
        return response

    def _challenge(self, message: str) -> Response:
        response = _error(401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = (
            f'Bearer authorization="{self.tokens.authority_url}/{self.tokens.tenant_id}", '
            f'resource="{RESOURCE}"'
        )
        return response

    def _authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None, self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        issued = self.tokens.verify(header.removeprefix("Bearer ").strip())
        if issued is None:
            return None, self._challenge("AKV10032: Invalid issuer or unknown token.")
        if issued.resource != RESOURCE:
            return None, self._challenge("AKV10022: Invalid audience.")
        return issued.identity, None

    def _answer(self, request: Request, identity: str | None) -> Response:
        assert identity is not None
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            status, retry_after = fault
            code = "Throttled" if status == 429 else "ServiceUnavailable"
            response = _error(status, code, "Injected by the test.")
            if retry_after is not None:
                response.headers["Retry-After"] = retry_after
            return response
        if "api-version" not in request.query:
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        parts = request.path.split("/")[1:]  # keys, name, [version], [operation]
        if len(parts) < 2 or parts[0] != "keys" or not parts[1]:
            return _error(404, "NotFound", "No such resource.")
        name = parts[1]
        rest = parts[2:]
        operation = rest.pop() if rest and rest[-1] in _OPERATIONS else None
        if len(rest) > 1:
            return _error(404, "NotFound", "No such resource.")
        version = rest[0] if rest else ""
        permission = _OPERATIONS[operation] if operation else "get"
        if request.method != ("POST" if operation else "GET"):
            return _error(405, "MethodNotAllowed", "Method not allowed.")
        with self._lock:
            allowed = permission in self._grants.get(identity, set())
            versions = list(self._keys.get(name, []))
        if not allowed:
            return _error(
                403,
                "Forbidden",
                f"The user, group or application '{identity}' does not have keys {permission} "
                f"permission on key vault 'standin'.",
                inner="ForbiddenByPolicy",
            )
        found = [v for v in versions if v.version == version] if version else versions[-1:]
        if not found:
            return _error(
                404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found."
            )
        key = found[0]
        kid = f"{self.url}/keys/{name}/{key.version}"
        if not key.enabled:
            return _error(
                403,
                "Forbidden",
                f"Operation {permission} is not allowed on a disabled key.",
                inner="KeyDisabled",
            )
        if operation is None:
            return self._bundle(key, kid)
        if permission not in key.key_ops:
            return _error(
                403,
                "Forbidden",
                f"Operation {permission} is not permitted on this key.",
                inner="KeyOperationForbidden",
            )
        return self._crypto(request, key, kid, permission)

    def _bundle(self, key: KeyVersion, kid: str) -> Response:
        numbers = key.private_key.public_key().public_numbers()
        return Response.json(
            200,
            {
                "key": {
                    "kid": kid,
                    "kty": key.kty,
                    "key_ops": list(key.key_ops),
                    "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                    "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
                },
                "attributes": {
                    "enabled": key.enabled,
                    "created": key.created,
                    "updated": key.created,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                    "exportable": False,
                },
            },
        )

    def _crypto(self, request: Request, key: KeyVersion, kid: str, permission: str) -> Response:
        try:
            body = request.json()
            alg, value = body["alg"], _unb64url(body["value"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _error(400, "BadParameter", "Content of 'value' is not base64url.")
        if permission == "sign":  # value is the SHA-256 digest; RS256 is PKCS#1 v1.5
            if alg != "RS256" or len(value) != 32:
                return _error(400, "BadParameter", "Only RS256 over a SHA-256 digest here.")
            signature = key.private_key.sign(
                value, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
            return Response.json(200, {"kid": kid, "value": _b64url(signature)})
        if alg != "RSA-OAEP-256":
            return _error(400, "BadParameter", f"Algorithm {str(alg)[:20]} is not supported here.")
        try:
            if permission == "wrapKey":
                result = key.private_key.public_key().encrypt(value, _OAEP_256)
            else:
                result = key.private_key.decrypt(value, _OAEP_256)
        except ValueError:
            return _error(400, "BadParameter", "Error occurred while decoding OAEP padding.")
        return Response.json(200, {"kid": kid, "value": _b64url(result)})

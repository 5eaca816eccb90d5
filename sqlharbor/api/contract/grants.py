"""A job's grant: the storage rights and keys one claimed job needs, sealed to the agent
session that claimed it (part of ``sqlharbor.api.contract``).

The agent's claim carries its session's public key (``status.agentKey``); the operator
answers with ``status.grant`` (``SealedGrant``), written once, which only that session
can open (``sqlharbor.vault.sealing``: the job's kind, namespace, name, uid and claiming
session are bound in).  Inside:

- ``BackupGrant``: a container SAS allowing create and write only (no read, list or
  delete), and the vault's *public* wrapping key, which the agent wraps each new point's
  data key with.  The agent can neither read nor decrypt any point, its own included.
- ``RestoreGrant``: one read-only SAS per blob of the planned points (manifests and data)
  and the data key of each planned point, unwrapped by the operator.

Both expire (``expires``, also the SAS expiry).  The operator builds them
(``sqlharbor_operator.grants``), the agent opens them (``sqlharbor_agent.grants``).
A grant's secrets never appear in a repr, a log, an Event or an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import zstandard
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sqlharbor.api.contract.sealing import SUITE_NAME, SessionKey, fingerprint, grant_context, seal
from sqlharbor.errors import ErrorCode, IntegrityError

#: the largest grant payload accepted when opening (a restore of thousands of log backups
#: stays far below; a bigger one is refused before it is decompressed further)
MAX_PLAINTEXT = 8 * 1024 * 1024


class _Grant(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    account_url: str
    container: str
    prefix: str
    expires: datetime


class BackupGrant(_Grant):
    kind: Literal["Backup"] = "Backup"
    #: container SAS token, permissions ``cw``
    sas: str = Field(repr=False)
    #: the vault's public wrapping key (a public RSA JWK) and the id and version manifests name
    wrapping_key: dict[str, str]
    key_id: str
    key_version: str


class RestoreGrant(_Grant):
    kind: Literal["Restore"] = "Restore"
    #: blob name -> read-only SAS token of that blob
    blobs: dict[str, str] = Field(repr=False)
    #: recovery point id -> its data key (base64)
    data_keys: dict[str, str] = Field(repr=False)

    def keys(self) -> dict[str, bytes]:
        return {point: base64.b64decode(key) for point, key in self.data_keys.items()}


Grant = Annotated[BackupGrant | RestoreGrant, Field(discriminator="kind")]


class _Envelope(BaseModel):
    grant: Grant


def job_context(kind: str, obj: Mapping[str, Any]) -> bytes:
    """The sealing context of the job ``obj`` (as read) for its claiming session."""
    meta = obj["metadata"]
    session = (obj.get("status") or {}).get("agentSession") or ""
    return grant_context(kind, meta["namespace"], meta["name"], meta["uid"], session)


def sealed_grant(
    grant: BackupGrant | RestoreGrant, *, agent_key: str, context: bytes
) -> dict[str, Any]:
    """The ``status.grant`` body sealing ``grant`` to the session key ``agent_key`` (what the
    claim carried) for ``context`` (``grant_context`` of the job and its claiming session)."""
    plain = _Envelope(grant=grant).model_dump_json(by_alias=True).encode()
    packed = zstandard.ZstdCompressor(level=3).compress(plain)
    sealed = seal(agent_key, packed, context=context)
    return {
        "sealedTo": fingerprint(agent_key),
        "suite": SUITE_NAME,
        "expires": grant.expires.isoformat(),
        "payload": base64.b64encode(sealed).decode("ascii"),
    }


def open_grant(
    kind: str, obj: Mapping[str, Any], key: SessionKey
) -> BackupGrant | RestoreGrant | None:
    """The grant of the job ``obj``, opened with this session's key; None while the operator
    has not written it yet.  ``IntegrityError`` when it does not open here."""
    body = (obj.get("status") or {}).get("grant")
    if not body:
        return None
    name = obj["metadata"]["name"]
    if body.get("sealedTo") != key.fingerprint:
        raise IntegrityError(
            f"{kind} {name}: its grant is sealed to session key {body.get('sealedTo')}, "
            f"not to this session's {key.fingerprint}",
            code=ErrorCode.GRANT_REFUSED,
        )
    try:
        sealed = base64.b64decode(body.get("payload") or "", validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(
            f"{kind} {name}: its grant is not base64", code=ErrorCode.GRANT_REFUSED
        ) from None
    packed = key.open(sealed, context=job_context(kind, obj))
    try:
        plain = zstandard.ZstdDecompressor().decompress(packed, max_output_size=MAX_PLAINTEXT)
        grant: BackupGrant | RestoreGrant = _Envelope.model_validate(json.loads(plain)).grant
    except (zstandard.ZstdError, ValueError, ValidationError):
        raise IntegrityError(
            f"{kind} {name}: its grant opened but is malformed", code=ErrorCode.GRANT_REFUSED
        ) from None
    if grant.kind != ("Backup" if kind == "BackupJob" else "Restore"):
        raise IntegrityError(
            f"{kind} {name}: it carries a {grant.kind} grant", code=ErrorCode.GRANT_REFUSED
        )
    return grant

"""A job's grant opens only in the session that claimed that job, and carries exactly
what was sealed (``contract.grants``, ``contract.sealing``)."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from sqlharbor.api import JobPhase
from sqlharbor.api.contract.grants import (
    BackupGrant,
    RestoreGrant,
    job_context,
    open_grant,
    sealed_grant,
)
from sqlharbor.api.contract.sealing import SessionKey
from sqlharbor.errors import ErrorCode, IntegrityError
from tests.builders.keys import rsa_key

EXPIRES = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)


def _job(kind: str, key: SessionKey, name: str = "nightly", uid: str = "u-1") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "db", "name": name, "uid": uid, "resourceVersion": "7"},
        "status": {
            "phase": JobPhase.RUNNING.value,
            "agentSession": "vm1/s1",
            "agentKey": key.public_text,
        },
    }


def _granted(kind: str, job: dict[str, Any], grant: BackupGrant | RestoreGrant) -> dict[str, Any]:
    body = sealed_grant(grant, agent_key=job["status"]["agentKey"], context=job_context(kind, job))
    done = copy.deepcopy(job)
    done["status"]["grant"] = body
    return done


def _backup_grant() -> BackupGrant:
    public = rsa_key().public()
    return BackupGrant(
        account_url="https://acct.blob.core.windows.net",
        container="backups",
        prefix="prod",
        expires=EXPIRES,
        sas="sv=2025-01-05&sp=cw&sig=SECRETSIG",
        wrapping_key=public.to_jwk(),
        key_id=public.key_id,
        key_version=public.key_version,
    )


def test_the_claiming_session_opens_exactly_what_was_sealed() -> None:
    key = SessionKey()
    job = _granted("BackupJob", _job("BackupJob", key), _backup_grant())
    opened = open_grant("BackupJob", job, key)
    assert opened == _backup_grant()
    restore = RestoreGrant(
        account_url="http://127.0.0.1:10000/devstoreaccount1",
        container="backups",
        prefix="",
        expires=EXPIRES,
        blobs={"a/manifest.json": "sp=r&sig=A"},
        data_keys={"20261203T000000Z-F-00000000": base64.b64encode(b"k" * 32).decode()},
    )
    rjob = _granted("RestoreJob", _job("RestoreJob", key), restore)
    opened_restore = open_grant("RestoreJob", rjob, key)
    assert isinstance(opened_restore, RestoreGrant)
    assert opened_restore.keys() == {"20261203T000000Z-F-00000000": b"k" * 32}
    # nothing secret in the status body or in a repr
    text = repr(job["status"]["grant"]) + repr(opened) + repr(opened_restore)
    for secret in ("SECRETSIG", "sig=A", base64.b64encode(b"k" * 32).decode()):
        assert secret not in text


def test_no_grant_yet_is_none() -> None:
    key = SessionKey()
    assert open_grant("BackupJob", _job("BackupJob", key), key) is None


@pytest.mark.parametrize(
    "change",
    [
        "another session key",
        "another job uid",
        "another job name",
        "another claiming session",
        "a RestoreJob",
        "an edited payload",
    ],
)
def test_a_grant_opens_nowhere_else(change: str) -> None:
    key = SessionKey()
    job = _granted("BackupJob", _job("BackupJob", key), _backup_grant())
    kind, opener = "BackupJob", key
    if change == "another session key":
        opener = SessionKey()
    elif change == "another job uid":
        job["metadata"]["uid"] = "u-2"
    elif change == "another job name":
        job["metadata"]["name"] = "copied"
    elif change == "another claiming session":
        job["status"]["agentSession"] = "vm1/s2"
    elif change == "a RestoreJob":
        kind = "RestoreJob"
    else:
        raw = bytearray(base64.b64decode(job["status"]["grant"]["payload"]))
        raw[-1] ^= 1
        job["status"]["grant"]["payload"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(IntegrityError) as refused:
        open_grant(kind, job, opener)
    assert refused.value.code is ErrorCode.GRANT_REFUSED


def test_the_status_body_names_the_expiry_and_the_session_key() -> None:
    key = SessionKey()
    body = sealed_grant(_backup_grant(), agent_key=key.public_text, context=b"x")
    assert body["expires"] == EXPIRES.isoformat()
    assert body["sealedTo"] == key.fingerprint != SessionKey().fingerprint

"""A claimed job's grant, awaited and opened, and the vault it gives this agent.

After a claim the operator answers with ``status.grant`` (``contract.grants``), sealed to
this session's key.  ``await_grant`` watches the job until it is there (or the operator
failed the job, or ``timeout`` passed) and opens it.  ``vault_of`` turns it into the only
``Vault`` a job runs with:

- a backup: storage through the job's create+write container SAS, keys through the
  vault's public key only (``PublicWrapper``), no catalog writes (the operator indexes);
- a restore: storage through one read SAS per planned blob, keys limited to the planned
  points' data keys (``GrantedKeys``).

Called by the job loop.  The agent holds no Secret, account key or key-encryption key.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlharbor.api import contract
from sqlharbor.api.contract.grants import BackupGrant, RestoreGrant, open_grant
from sqlharbor.errors import GrantRefused
from sqlharbor.kube import KubeClient
from sqlharbor.vault import Layout, Vault, WriterSettings
from sqlharbor.vault.keyring import GrantedKeys, PublicWrapper
from sqlharbor.vault.store_sas import BlobSasStore, ContainerSasStore
from sqlharbor.vault.wrapping import WrappingKey
from sqlharbor_agent.session import Session

Grant = BackupGrant | RestoreGrant


def await_grant(
    client: KubeClient,
    kind: str,
    obj: dict[str, Any],
    session: Session,
    *,
    timeout: float,
    stop: threading.Event,
) -> tuple[dict[str, Any], Grant] | None:
    """The job as granted and its opened grant; None when the job ended meanwhile (the
    operator refused it, or failed it AgentLost).  ``GrantRefused`` after ``timeout``."""
    meta = obj["metadata"]
    deadline = time.monotonic() + timeout
    current = obj
    while not stop.is_set():
        if contract.is_finished(current):
            return None
        grant = open_grant(kind, current, session.key)
        if grant is not None:
            return current, grant
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for event in client.watch(
            kind,
            meta["namespace"],
            resource_version=current["metadata"]["resourceVersion"],
            field_selector=f"metadata.name={meta['name']}",
            timeout_seconds=max(1, int(min(left, 30))),
        ):
            if event.type in ("ADDED", "MODIFIED"):
                current = event.object
                break
        else:  # the watch ended without news: read the job again (it may have moved on)
            current = client.get_raw(kind, meta["namespace"], meta["name"])
    if stop.is_set():
        return None  # shutting down: the next session fails the job as left behind
    raise GrantRefused(
        f"{kind} {meta['name']}: the operator did not grant its storage rights within "
        f"{timeout:.0f}s (is the operator running and the vault Available?)"
    )


def vault_of(grant: Grant, writer: WriterSettings) -> Vault:
    """The vault a job may use: exactly what its grant allows."""
    layout = Layout(grant.prefix)
    if isinstance(grant, BackupGrant):
        key = WrappingKey.from_jwk(
            grant.wrapping_key, key_id=grant.key_id, key_version=grant.key_version
        )
        store = ContainerSasStore.open(grant.account_url, grant.container, grant.sas)
        return Vault(store, layout, PublicWrapper(key), writer_settings=writer, indexes=False)
    blobs = BlobSasStore.open(grant.account_url, grant.container, grant.blobs)
    return Vault(blobs, layout, GrantedKeys(grant.keys()), indexes=False)

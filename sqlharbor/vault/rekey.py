"""``rekey``: re-wrap the data keys of a vault's recovery points with its current key, so a
previous key can be removed from the vault.  Manifests only: no data blob is read or
written.

For each point of each database the catalog lists whose key is not the current one: its
manifest is read and authenticated with the keyring (a tampered point is reported and
left alone), its data key unwrapped, wrapped again with the current key and the manifest
sealed again (the tag covers the wrapped key), then written over the old manifest only
if that still exists (a point retention deleted meanwhile is not brought back), and the
catalog gets the point's new key.  Resumable: points already under the current key are
skipped, so a run stopped anywhere is finished by running it again.  Version-1 manifests
come out as authenticated version-2 manifests.

Called by ``kubectl sqlharbor vault rekey`` (the CLI holds the vault's keys and storage
credential, like the operator).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlharbor.errors import BlobNotFound, SqlHarborError
from sqlharbor.vault.keyring import Keyring
from sqlharbor.vault.manifest_auth import seal, verify
from sqlharbor.vault.vault import Vault

log = logging.getLogger(__name__)

#: (points done, points to do, seconds so far)
Progress = Callable[[int, int, float], None]


@dataclass
class RekeyReport:
    points: int = 0  # every point the catalog lists
    rekeyed: int = 0
    current: int = 0  # already under the current key
    gone: int = 0  # deleted while the run went on
    failed: list[tuple[str, str]] = field(default_factory=list)  # (point, why)


def rekey(vault: Vault, keyring: Keyring, *, progress: Progress | None = None) -> RekeyReport:
    report = RekeyReport()
    todo: list[tuple[str, str, str]] = []  # (instance, database guid, point id)
    for entry in vault.catalog.databases():
        for point in vault.catalog.list_points(entry.instance, entry.database_guid):
            report.points += 1
            if keyring.is_current(point):
                report.current += 1
            else:
                todo.append((entry.instance, entry.database_guid, point.id))
    began = time.monotonic()
    for done, (instance, guid, point_id) in enumerate(todo, start=1):
        try:
            if _rekey_one(vault, keyring, instance, guid, point_id):
                report.rekeyed += 1
            else:
                report.current += 1
        except BlobNotFound:
            report.gone += 1
        except SqlHarborError as exc:
            report.failed.append((point_id, f"{exc.code}: {exc.message}"))
            log.warning("recovery point %s not rekeyed: %s", point_id, exc)
        if progress is not None:
            progress(done, len(todo), time.monotonic() - began)
    return report


def _rekey_one(vault: Vault, keyring: Keyring, instance: str, guid: str, point_id: str) -> bool:
    """True when rewritten; False when the manifest was already under the current key."""
    manifest = vault.manifest(instance, guid, point_id)
    data_key = keyring.data_key(manifest)
    verify(manifest, data_key)
    if keyring.is_current(manifest.recovery_point()):
        vault.catalog.add_points(instance, [manifest.recovery_point()])  # the catalog lagged
        return False
    wrapped = keyring.wrap_data_key(data_key)
    encryption = manifest.encryption.model_copy(update={"data_key": wrapped})
    rewrapped = manifest.model_copy(update={"encryption": encryption, "authentication": None})
    rewrapped.mark_authenticated()
    sealed = seal(rewrapped, data_key)
    name = vault.layout.manifest_blob(instance, guid, point_id)
    vault.store.replace(name, sealed.to_json())
    vault.catalog.add_points(instance, [sealed.recovery_point()])
    return True

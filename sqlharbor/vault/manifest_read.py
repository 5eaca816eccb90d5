"""Reading a manifest blob: any version this sqlharbor knows, checked against where it was
read, always as the version-2 ``Manifest``.

Every reader of manifests (``Vault.manifest`` for restores, the catalog's rebuild and
deletion, retention through the catalog, the CLI) goes through ``read_manifest``:

* version 2 is validated, then its ``identity`` must match the location it was read
  from (point, database, scope, path), its chunks must use the version-2 associated
  data, and its point id must name its backup type; anything else was edited, moved or
  copied and is refused before a byte of data is read;
* version 1 is validated as it was written and upgraded in memory (``manifest_v1``);
* a newer version is refused: it was written by a newer sqlharbor.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from sqlharbor.errors import ErrorCode, IntegrityError
from sqlharbor.vault.codec import AssociatedData
from sqlharbor.vault.layout import PointLocation, RecoveryPointId
from sqlharbor.vault.manifest import FORMAT_VERSION, Manifest, ScopeKind, invalid
from sqlharbor.vault.manifest_v1 import ManifestV1


def read_manifest(body: bytes, location: PointLocation) -> Manifest:
    """The manifest stored at ``location``, or ``IntegrityError``."""
    name = location.manifest_blob
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError(f"{name} is not a valid sqlharbor manifest: not JSON") from None
    version = document.get("format_version") if isinstance(document, dict) else None
    if type(version) is int and version > FORMAT_VERSION:
        raise IntegrityError(
            f"{name} has manifest format version {version}: the recovery point was written "
            f"by a newer sqlharbor (this one reads versions 1 to {FORMAT_VERSION})",
            code=ErrorCode.VAULT_FORMAT_TOO_NEW,
        )
    if type(version) is int and version == 1:
        try:
            return ManifestV1.model_validate_json(body).upgrade(location)
        except ValidationError as exc:
            raise invalid(exc, name) from None
    manifest = Manifest.parse(body, name=name)
    verify_identity(manifest, location)
    return manifest


def verify_identity(manifest: Manifest, location: PointLocation) -> None:
    """Refuse a version-2 manifest that is not the one ``location`` must hold."""
    ident = manifest.identity
    scope = ident.scope
    found = (ident.recovery_point_id, ident.database_id, scope.kind, scope.name)
    wanted = (
        location.recovery_point_id,
        location.database_guid,
        ScopeKind.INSTANCE,
        location.instance,
    )
    if found != wanted or ident.manifest_path != location.manifest_path:
        raise IntegrityError(
            f"{location.manifest_blob} was moved or copied: the manifest is recovery point "
            f"{ident.recovery_point_id} of database {ident.database_id} in "
            f"{scope.kind.value} {scope.name}, stored at {ident.manifest_path}"
        )
    problem = None
    if manifest.encryption.associated_data is not AssociatedData.V2:
        problem = f"a version-2 manifest must name {AssociatedData.V2.value} chunks"
    elif RecoveryPointId.parse(ident.recovery_point_id).backup_type is not (
        manifest.backup.backup_type
    ):
        problem = f"the point id does not name a {manifest.backup.backup_type.value} backup"
    elif manifest.backup.database_guid != ident.database_id:
        problem = "an instance's database is stored under its own GUID"
    if problem is not None:
        raise IntegrityError(f"{location.manifest_blob} was edited: {problem}")

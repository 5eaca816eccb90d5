"""``endorse``: bring a vault's existing catalog under endorsement (``vault.endorsement``),
then require it, so that from then on only lines the operator endorsed count.

A vault the operator opened for the first time already requires it.  A vault whose
catalog predates endorsement is read as before (lines without an endorsement count)
until this runs: for each point its catalog lists, the manifest is read from where the
point belongs, checked against the line (same backup facts), and the point added again
with an endorsed line that records the manifest's tag (appended: the later line wins);
then the vault's marker is written.  No key is unwrapped: endorsing takes the vault's
current key's signature once.  Trust on first use: a line an agent forged *before* this
runs is endorsed with the rest if its manifest is where it says — run it right after the
upgrade.  Resumable (a second run endorses again; nothing is lost).

Called by ``kubectl sqlharbor vault endorse`` (the admin's CLI holds the vault's keys).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlharbor.domain.backupset import RecoveryPoint
from sqlharbor.errors import BlobNotFound, IntegrityError, SqlHarborError
from sqlharbor.vault.rekey import Progress
from sqlharbor.vault.vault import Vault

log = logging.getLogger(__name__)


@dataclass
class EndorseReport:
    points: int = 0  # every point the catalog lists
    endorsed: int = 0
    gone: int = 0  # manifest deleted meanwhile
    refused: list[tuple[str, str]] = field(default_factory=list)  # (point, why)
    required: bool = False  # the marker was written


def endorse(vault: Vault, *, progress: Progress | None = None) -> EndorseReport:
    """Endorse every listed point whose manifest matches its line; require endorsement
    when none was refused (a refused point is left out and reported)."""
    report = EndorseReport()
    catalog = vault.catalog
    catalog.endorsement.read_all()  # past a marker an agent may have written first
    todo = [
        (entry.instance, entry.database_guid, point)
        for entry in catalog.databases()
        for point in catalog.list_points(entry.instance, entry.database_guid)
    ]
    report.points = len(todo)
    began = time.monotonic()
    for done, (instance, guid, point) in enumerate(todo, start=1):
        try:
            manifest = vault.manifest(instance, guid, point.id)
            found = manifest.recovery_point()
            if _facts(found) != _facts(point):
                raise IntegrityError(
                    f"recovery point {point.id}: its catalog line and its manifest disagree "
                    "(review it: a line an agent wrote?)"
                )
            catalog.add_points(instance, [found])
            report.endorsed += 1
        except BlobNotFound:
            report.gone += 1
        except SqlHarborError as exc:
            report.refused.append((point.id, f"{exc.code}: {exc.message}"))
            log.warning("recovery point %s not endorsed: %s", point.id, exc)
        if progress is not None:
            progress(done, len(todo), time.monotonic() - began)
    if not report.refused:
        catalog.endorsement.require()
        report.required = True
    return report


def _facts(point: RecoveryPoint) -> tuple[object, ...]:
    """What a line must agree on with its manifest (a line from an older sqlharbor lacks
    facts added since; the endorsed line is the manifest's, with all of them)."""
    r = point.record
    return (r.database_guid, r.backup_type, r.first_lsn, r.last_lsn, r.finish)

"""Importing a shipment manifest at the customer: check everything, then write once.

:func:`import_manifest_file` reads the file, checks it completely
(:func:`trayline.outbox.manifest.check_manifest` against the store's trusted
keys, then against what the store already knows), and only then writes the
units in one transaction (:func:`trayline.store.keys.import_units`). A refusal
is a :class:`~trayline.outbox.manifest.ManifestRefused` with one line and
nothing written. The same manifest imported again is reported as such and
changes nothing; a *different* file claiming an imported manifest's id is
refused. Imported units are ``ready`` with a device ID, which is exactly what
``trayline provision run --from-line`` picks up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trayline.outbox.manifest import CheckedManifest, ManifestRefused, check_manifest
from trayline.store.db import Store
from trayline.store.keys import (
    ImportConflict,
    ImportedView,
    find_imported,
    import_conflicts,
    import_units,
    trusted_keys,
)

__all__ = ["ImportOutcome", "import_manifest_file"]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    manifest: CheckedManifest
    imported: bool
    """False: this manifest was imported before (on ``previous.imported_at``); nothing changed."""
    previous: ImportedView | None = None


def import_manifest_file(store: Store, path: Path) -> ImportOutcome:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestRefused(f"cannot read {path}: {exc.strerror}") from None
    checked = check_manifest(data, trusted_keys(store))
    previous = find_imported(store, checked.manifest_id)
    if previous is not None:
        if previous.body_sha256 != checked.body_sha256:
            raise ManifestRefused(
                f"manifest id {checked.manifest_id} was imported on "
                f"{previous.imported_at:%Y-%m-%d %H:%M} UTC with other content: refusing this one"
            )
        return ImportOutcome(checked, False, previous)
    units = list(checked.units)
    problems = import_conflicts(store, units)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestRefused(f"{problems[0]}{more}")
    view = ImportedView(
        manifest_id=checked.manifest_id,
        body_sha256=checked.body_sha256,
        key_id=checked.key_id,
        site=checked.site,
        batch=checked.batch,
        count=len(units),
        file_name=path.name[:255],
        imported_at=datetime.now(UTC),
    )
    try:
        imported = import_units(store, manifest=view, units=units)
    except ImportConflict as exc:
        raise ManifestRefused(str(exc)) from None
    if not imported:
        return ImportOutcome(checked, False, find_imported(store, checked.manifest_id))
    return ImportOutcome(checked, True)

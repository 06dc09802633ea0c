"""``trayline import``: bring a CM's signed shipment manifest into the customer's store.

Everything is checked before anything is written (signature against a
trusted key, the file byte for byte, the units against this store); a refusal
is one line and exit 2. The same manifest twice is a no-op, said so, exit 0.
"""

from __future__ import annotations

from pathlib import Path

import typer

from trayline.cli.console import fail, out
from trayline.cli.options import EXIT_STORE, DbOption, open_db
from trayline.outbox.importing import import_manifest_file
from trayline.outbox.manifest import ManifestRefused
from trayline.store.db import StoreError

app = typer.Typer(
    help="Import what a contract manufacturer shipped.\n\n"
    "Example: trayline import manifest manifest-carton-0042.json",
    no_args_is_help=True,
)


@app.command("manifest")
def manifest_command(
    file: Path = typer.Argument(..., help="The manifest file from trayline export manifest."),
    db: str | None = DbOption,
) -> None:
    """Check a signed manifest and record its units as ready to provision.

    Refused (exit 2, nothing written): a changed byte, a truncated file, a key
    this store does not trust, a unit this store knows with another device ID.
    Then: trayline provision run --from-line.

    Example: trayline import manifest manifest-carton-0042.json
    """
    with open_db(db) as store:
        try:
            outcome = import_manifest_file(store, file)
        except ManifestRefused as exc:
            fail(f"{file}: refused: {exc}; nothing imported")
        except StoreError as exc:
            fail(f"{file}: {exc}; nothing imported", EXIT_STORE)
    m = outcome.manifest
    if not outcome.imported:
        when = f" on {outcome.previous.imported_at:%Y-%m-%d %H:%M} UTC" if outcome.previous else ""
        out.print(f"{file}: manifest {m.manifest_id} was imported already{when}; nothing changed")
        return
    batch = f" batch {m.batch}" if m.batch else ""
    out.print(
        f"{file}: imported {len(m.units)} ready unit(s){batch} from {m.site} "
        f"(key {m.key_id}, manifest {m.manifest_id}); next: trayline provision run --from-line"
    )

"""``trayline keys``: the site keys that sign shipment manifests, and the keys a customer trusts.

At the CM: ``keys create`` once per site; the private key stays on the line's
machine (0600), the ``.pub`` file goes to the customer. At the customer:
``keys trust`` records that public key after its id was checked with the CM by
another channel (phone, a signed e-mail), so a file that arrives together with
a manifest never vouches for itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from rich.table import Table

from trayline.cli.console import fail, out
from trayline.cli.options import DbOption, open_db
from trayline.outbox.signing import (
    KeyFileError,
    create_key_pair,
    key_id,
    load_public_key,
    public_hex,
)
from trayline.store.keys import list_trusted, trust_key

app = typer.Typer(
    help="Site keys for signed shipment manifests (CM) and the keys a customer trusts.\n\n"
    "Example: trayline keys create --name cm-shenzhen --dir keys/",
    no_args_is_help=True,
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        fail(f"--name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


@app.command("create")
def create_command(
    name: str = typer.Option(..., "--name", help="The site's name (also the key files' name)."),
    folder: Path = typer.Option(Path(), "--dir", help="Folder for NAME.key and NAME.pub."),
) -> None:
    """Make an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub (for the customer).

    Example: trayline keys create --name cm-shenzhen --dir keys/
    """
    try:
        private, public, kid = create_key_pair(_check_name(name), folder)
    except KeyFileError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{folder}: cannot write the key files ({exc.strerror})")
    out.print(f"private key {private} (mode 0600: keep it on this machine, never send it)")
    out.print(f"public key  {public} (send it to the customer)")
    out.print(f"key id      {kid} (read it to the customer so they can check the file)")


@app.command("trust")
def trust_command(
    file: Path = typer.Argument(..., help="The CM's public key file (NAME.pub)."),
    name: str | None = typer.Option(None, "--name", help="Who it belongs to (default: file name)."),
    db: str | None = DbOption,
) -> None:
    """Trust a CM's public key: manifests it signs can be imported into this store.

    Check the key id it prints with the CM before importing anything.

    Example: trayline keys trust cm-shenzhen.pub --name "CM Shenzhen"
    """
    try:
        public = load_public_key(file)
    except KeyFileError as exc:
        fail(str(exc))
    label = _check_name(name) if name else _check_name(file.stem)
    kid = key_id(public)
    with open_db(db) as store:
        added = trust_key(store, key_id=kid, name=label, public_key=public_hex(public))
    if added:
        out.print(f"trusted key {kid} ({label}): manifests it signs can now be imported")
    else:
        out.print(f"key {kid} is trusted already; nothing changed")


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    db: str | None = DbOption,
) -> None:
    """List the keys this store trusts.

    Example: trayline keys list
    """
    with open_db(db) as store:
        keys = list_trusted(store)
    if as_json:
        rows = [
            {"key_id": k.key_id, "name": k.name, "added_at": k.added_at.isoformat()} for k in keys
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table("key id", "name", "trusted since", box=None)
    for k in keys:
        table.add_row(k.key_id, k.name, f"{k.added_at:%Y-%m-%d %H:%M}")
    out.print(table)
    out.print(f"{len(keys)} trusted key(s)")

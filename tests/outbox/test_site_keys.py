"""``trayline keys``: key files, their modes, and the store's trusted keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.outbox.signing import KeyFileError, load_private_key, load_public_key, verify

cli = CliRunner()


def test_create_sign_verify_and_refuse_overwrite(tmp_path: Path) -> None:
    result = cli.invoke(app, ["keys", "create", "--name", "cm-a", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    key = load_private_key(tmp_path / "cm-a.key")
    assert key.key_id in result.output and len(key.key_id) == 16
    assert stat.S_IMODE((tmp_path / "cm-a.key").stat().st_mode) == 0o600
    public = load_public_key(tmp_path / "cm-a.pub").public_bytes_raw().hex()
    assert verify(public, key.sign(b"carton"), b"carton")
    assert not verify(public, key.sign(b"carton"), b"carton!")
    again = cli.invoke(app, ["keys", "create", "--name", "cm-a", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "exists already" in again.output
    bad = cli.invoke(app, ["keys", "create", "--name", "../x", "--dir", str(tmp_path)])
    assert bad.exit_code == 2


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_private_key_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    assert cli.invoke(app, ["keys", "create", "--name", "s", "--dir", str(tmp_path)]).exit_code == 0
    path = tmp_path / "s.key"
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"{path}: private key has mode {mode:04o}"):
        load_private_key(path)


def test_trust_list_and_bad_files(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'customer.db'}"
    cli.invoke(app, ["keys", "create", "--name", "cm-b", "--dir", str(tmp_path)])
    pub = tmp_path / "cm-b.pub"
    first = cli.invoke(app, ["keys", "trust", str(pub), "--db", db])
    assert first.exit_code == 0 and "trusted key" in first.output
    second = cli.invoke(app, ["keys", "trust", str(pub), "--db", db])
    assert second.exit_code == 0 and "trusted already" in second.output
    listed = json.loads(cli.invoke(app, ["keys", "list", "--json", "--db", db]).output)
    assert [k["name"] for k in listed] == ["cm-b"]
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    refused = cli.invoke(app, ["keys", "trust", str(junk), "--db", db])
    assert refused.exit_code == 2 and "not a PEM public key" in refused.output
    private = cli.invoke(app, ["keys", "trust", str(tmp_path / "cm-b.key"), "--db", db])
    assert private.exit_code == 2  # a private key is not what one trusts

"""``trayline firmware`` end to end: inspect --json against the reference, refusals, hex."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app

from .modulekit import boron_set, write_all

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"
EXPECTED: dict[str, dict[str, object]] = json.loads((FIXTURES / "expected.json").read_text())
runner = CliRunner()


def test_inspect_json_agrees_with_reference_on_every_file() -> None:
    """The acceptance check: every field of expected.json, for every file, in argument order.

    Deliberate differences, both on files the reference rejects: the error text is
    trayline's own ("the file is empty"; "suffix extension at offset 0x3db9 has length 0
    …" for RC2_bootloader.bin) — the verdict (an ``error`` field) is the same.
    """
    names = sorted(EXPECTED)
    result = runner.invoke(
        app, ["firmware", "inspect", "--json", *(str(FIXTURES / n) for n in names)]
    )
    assert result.exit_code == 1  # two files are not readable modules
    rows = json.loads(result.stdout)
    assert [Path(r["file"]).name for r in rows] == names
    for name, row in zip(names, rows, strict=True):
        expected = EXPECTED[name]
        assert row["file"] == str(FIXTURES / name)
        if "error" in expected:
            assert row["error"] and set(row) == {"file", "error"}
            continue
        for field, value in expected.items():
            assert row[field] == value, f"{name}: {field}"


def test_inspect_table_and_exit_code() -> None:
    ok = runner.invoke(app, ["firmware", "inspect", str(FIXTURES / "tracker-tinker@5.3.1.bin")])
    assert ok.exit_code == 0 and "tracker" in ok.stdout and "Particle modules" in ok.stdout
    bad = runner.invoke(app, ["firmware", "inspect", str(FIXTURES / "emptybin.bin")])
    assert bad.exit_code == 1
    assert "emptybin.bin: the file is empty" in bad.stderr
    assert "Traceback" not in bad.output


def test_inspect_truncated_file_is_clear(tmp_path: Path) -> None:
    data = (FIXTURES / "080_system-part1-xenon.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:-10])
    result = runner.invoke(app, ["firmware", "inspect", "--json", str(cut)])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["error"].startswith("truncated: the module prefix at offset 0x200")


def _db(tmp_path: Path) -> list[str]:
    return ["--db", f"sqlite:///{tmp_path / 'line.db'}"]


def test_bundle_create_show_hex_and_plan(tmp_path: Path) -> None:
    files = [str(p) for p in write_all(tmp_path / "in", boron_set())]
    created = runner.invoke(
        app,
        [
            "firmware",
            "bundle",
            "create",
            "--sku",
            "BRN404X",
            "--name",
            "prod",
            *_db(tmp_path),
            *files,
        ],
    )
    assert created.exit_code == 0, created.output
    assert (tmp_path / "trayline-bundles" / "sha256").is_dir()
    shown = runner.invoke(app, ["firmware", "bundle", "show", "prod", "--json", *_db(tmp_path)])
    info = json.loads(shown.stdout)
    assert info["device_os"] == "4.0.1" and len(info["modules"]) == 4
    listed = runner.invoke(app, ["firmware", "bundle", "list", "--json", *_db(tmp_path)])
    assert [b["name"] for b in json.loads(listed.stdout)] == ["prod"]
    hex_out = tmp_path / "prod.hex"
    made = runner.invoke(app, ["firmware", "hex", "prod", "-o", str(hex_out), *_db(tmp_path)])
    assert made.exit_code == 0, made.output
    assert hex_out.read_text().endswith(":00000001FF\n")
    plan_out = tmp_path / "plan.json"
    runner.invoke(
        app,
        ["firmware", "hex", "prod", "-o", str(plan_out), "--format", "bin-plan", *_db(tmp_path)],
    )
    plan = json.loads(plan_out.read_text())
    assert plan[0]["file"] == "bootloader.bin"
    assert all(Path(p["path"]).is_file() for p in plan)
    verified = runner.invoke(app, ["firmware", "bundle", "verify", "prod", *_db(tmp_path)])
    assert verified.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "--sku",
                "BRN404",
                str(FIXTURES / "tracker-tinker@5.3.1.bin"),
                "--baseline-device-os",
                "5.8.0",
            ],
            "built for platform 26 (tracker)",
        ),
        (
            ["--sku", "T404", str(FIXTURES / "tracker-tinker@5.3.1.bin")],
            "needs system part 1 >= 5301",
        ),
        (["--sku", "BRN404X", str(FIXTURES / "080_user-part-xenon.bin")], "platform 14"),
    ],
)
def test_bundle_refusals_exit_1_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app, ["firmware", "bundle", "create", "--name", "x", *_db(tmp_path), *args]
    )
    assert result.exit_code == 1
    assert message in result.stderr
    assert "not created" in result.stderr
    assert "Traceback" not in result.output


def test_changed_file_refused_by_hex_and_verify(tmp_path: Path) -> None:
    files = [str(p) for p in write_all(tmp_path / "in", boron_set())]
    runner.invoke(
        app,
        ["firmware", "bundle", "create", "--sku", "BRN404X", "--name", "p", *_db(tmp_path), *files],
    )
    blobs = [p for p in (tmp_path / "trayline-bundles").rglob("*") if p.is_file()]
    assert blobs
    blobs[0].chmod(0o644)
    blobs[0].write_bytes(blobs[0].read_bytes() + b"\0")
    made = runner.invoke(
        app, ["firmware", "hex", "p", "-o", str(tmp_path / "o.hex"), *_db(tmp_path)]
    )
    assert made.exit_code == 1 and "changed on disk" in made.stderr
    assert not (tmp_path / "o.hex").exists()
    verified = runner.invoke(app, ["firmware", "bundle", "verify", "p", *_db(tmp_path)])
    assert verified.exit_code == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    unknown_sku = runner.invoke(
        app,
        ["firmware", "bundle", "create", "--sku", "NOPE", "--name", "x", "f.bin", *_db(tmp_path)],
    )
    assert unknown_sku.exit_code == 2 and "unknown SKU" in unknown_sku.stderr
    missing = runner.invoke(app, ["firmware", "hex", "nope", "-o", "x.hex", *_db(tmp_path)])
    assert missing.exit_code == 2 and "no bundle named 'nope'" in missing.stderr


def test_diff_command(tmp_path: Path) -> None:
    mods = boron_set()
    files = [str(p) for p in write_all(tmp_path / "in", mods)]
    runner.invoke(
        app,
        ["firmware", "bundle", "create", "--sku", "BRN404X", "--name", "p", *_db(tmp_path), *files],
    )
    shown = json.loads(
        runner.invoke(app, ["firmware", "bundle", "show", "p", "--json", *_db(tmp_path)]).stdout
    )
    reported = [
        {
            "module_function": m["function"],
            "module_index": m["index"],
            "module_version": m["version"],
            "sha256": m["module_sha256"],
        }
        for m in shown["modules"]
        if m["function"] != 5
    ]
    device = tmp_path / "device.json"
    device.write_text(json.dumps(reported))
    result = runner.invoke(
        app, ["firmware", "diff", "p", "--device", str(device), "--json", *_db(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert [r["file_name"] for r in json.loads(result.stdout)] == ["user.bin"]

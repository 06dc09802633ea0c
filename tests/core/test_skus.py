"""The SKU catalog covers every SKU in the guide and answers the line's questions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trayline.cli.app import app
from trayline.core.skus import CATALOG, SimKind, UnknownSku, get_sku, sku_for_serial
from trayline.core.versions import SemVer

GUIDE_SKUS = [
    "B404",
    "B402",
    "B524",
    "B523",
    "BRN404",
    "BRN402",
    "BRN314",
    "BRN310",
    "ONE404",
    "ONE402",
    "ONE524",
    "ONE523",
    "T404",
    "T402",
    "T524",
    "T523",
    "E404",
    "E402",
    "E314",
    "E313",
    "E310",
    "ELC404",
    "ELC314",
    "E270",
    "E260",
    "E350",
]


def test_every_guide_sku_and_x_variants_present() -> None:
    for name in [*GUIDE_SKUS, "B404X", "BRN404X", "E404X"]:
        assert name in CATALOG


def test_facts_the_line_acts_on() -> None:
    assert get_sku("BRN404").platform_id == 13
    assert get_sku("B524").platform_id == 25
    assert get_sku("E404X").platform_id == 15
    assert get_sku("ONE404").ncp_update_applies and not get_sku("ONE404").swd
    assert get_sku("E260").sim is SimKind.SEPARATE_4FF
    assert get_sku("BRN404").sim is SimKind.EMBEDDED
    assert get_sku("B404").lte_cat_m1 and not get_sku("B524").lte_cat_m1
    assert not get_sku("E404").setup_done_applies and get_sku("B404").setup_done_applies
    for x in ("B404X", "BRN404X", "E404X"):
        assert get_sku(x).min_device_os >= SemVer.parse("4.0.1")


def test_lookup_forgives_suffixes_and_case() -> None:
    assert get_sku("brn404-tray50").name == "BRN404"
    assert get_sku("B404MTY").name == "B404"
    with pytest.raises(UnknownSku, match="known SKUs"):
        get_sku("BRN999")


def test_serial_prefix_lookup() -> None:
    assert {s.name for s in sku_for_serial("P031ABCDEFGHIJK")} == {"ONE404", "T404"}


def test_cli_json_and_explain() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["skus", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) == len(CATALOG)
    one = runner.invoke(app, ["skus", "ONE404"])
    assert one.exit_code == 0 and "USB" in one.stdout
    bad = runner.invoke(app, ["skus", "NOPE"])
    assert bad.exit_code == 2

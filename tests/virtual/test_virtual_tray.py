"""Virtual trays: deterministic, valid IDs, files trayline reads, a strict devices.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from traykit import MakeTray

from trayline.core.ids import Iccid, Imei, parse_sticker
from trayline.core.skus import get_sku
from trayline.inputs import Expect, read_inputs
from trayline.virtual.device import DeviceMode, Faults
from trayline.virtual.records import TrayFileError
from trayline.virtual.tray import Tray


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_same_tray_byte_for_byte(make_tray: MakeTray) -> None:
    first = make_tray("BRN404", count=4, seed=42, name="a")
    second = make_tray("BRN404", count=4, seed=42, name="b")
    third = make_tray("BRN404", count=4, seed=43, name="c")
    assert _tree(first.folder) == _tree(second.folder)
    assert first.device_ids() != third.device_ids()


def test_tray_files_and_identities(make_tray: MakeTray) -> None:
    tray = make_tray("B524", count=5, seed=3)
    records = tray.records()
    assert len(records) == 5 and len(set(tray.device_ids())) == 5
    for record in records:
        ident = record.identity
        assert ident.device_id.startswith("e00fce68")
        assert ident.serial_number[:4] in get_sku("B524").serial_prefixes
        Imei.parse(ident.imei)
        Iccid.parse(ident.iccid)
        assert tray.flash_path(ident.device_id).stat().st_size == 0x100000
    stickers = (tray.folder / "stickers.txt").read_text().splitlines()
    scanned = [parse_sticker(line) for line in stickers]
    assert [s.serial for s in scanned] == [r.identity.serial_number for r in records]
    assert all(s.mobile_secret for s in scanned)


def test_gen2_stickers_carry_only_the_serial(make_tray: MakeTray) -> None:
    tray = make_tray("E404", count=2)
    assert all(" " not in line for line in (tray.folder / "stickers.txt").read_text().splitlines())


def test_tray_csv_is_read_by_trayline_inputs_with_every_column(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=6, seed=9)
    result = read_inputs(tray.folder / "tray.csv", expect=Expect.DEVICES)
    assert result.ok, result.problems
    assert [(d.device_id, d.serial, d.iccid) for d in result.devices] == [
        (r.device_id, r.identity.serial_number, r.identity.iccid) for r in tray.records()
    ]
    sims = read_inputs(tray.folder / "tray.csv", expect=Expect.ICCIDS)
    assert sims.ok and len(sims.devices) == 6


def test_fresh_tray_state_is_what_the_docs_promise(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device = tray.load(tray.device_ids()[0])
    assert device.mode is DeviceMode.LISTENING  # Gen 3, Device OS 2.3.1, setup not done
    assert str(device.device_os()) == "2.3.1"
    assert device.read_memory(0x10001014, 4) == (0x000F4000).to_bytes(4, "little")
    blank = make_tray("BRN404", count=1, name="blank", blank=True)
    assert blank.load(blank.device_ids()[0]).modules() == []
    forced = make_tray("E404", count=1, name="forced", mode=DeviceMode.LISTENING)
    assert forced.load(forced.device_ids()[0]).mode is DeviceMode.LISTENING


def test_tracker_tray_has_an_ncp_version(make_tray: MakeTray) -> None:
    tray = make_tray("ONE404", count=1, device_os="4.0.1")
    assert tray.load(tray.device_ids()[0]).state.ncp_version == 7


def test_a_tray_is_never_overwritten(make_tray: MakeTray) -> None:
    make_tray("BRN404", count=1, name="same")
    with pytest.raises(TrayFileError, match="already exists"):
        make_tray("BRN404", count=1, name="same")


def test_unknown_device_os_is_refused_with_the_known_list(make_tray: MakeTray) -> None:
    with pytest.raises(ValueError, match="known releases"):
        make_tray("BRN404", count=1, device_os="9.9.9")


def _edit(tray: Tray, index: int, **changes: object) -> None:
    data = json.loads(tray.devices_json.read_text())
    for key, value in changes.items():
        target = data[index]
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    tray.devices_json.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("faults.protectd", True, "faults.protectd: unknown fault"),
        ("faults.protected", "yes", "faults.protected: expected true or false"),
        ("faults.swd_connect_failures", -1, "faults.swd_connect_failures: expected a count"),
        ("faults.slow_console", "slow", "faults.slow_console: expected seconds"),
        ("readings.vbat", {"mean": 3.9}, 'readings.vbat: expected "mean" and "sd"'),
        ("readings.vbat", {"mean": 3.9, "sd": -1}, '"sd" must be >= 0'),
        ("readings.vbat", [1, 2], "readings.vbat: expected a number"),
        ("imei", "356938035643800", "imei:"),
        ("iccid", "1234", "iccid:"),
        ("serial_number", "E404AAAAAAAAAAA", "serial_number: a BRN404 serial starts with P028"),
        ("device_id", "0123456789abcdef01234567", "device_id: device ID"),
        ("platform_id", 10, "platform_id: BRN404 is platform 13"),
        ("sku", "NOPE", "sku: unknown SKU"),
        ("faults", [], "faults: expected an object"),
    ],
)
def test_devices_json_mistakes_are_one_line_naming_file_index_and_field(
    make_tray: MakeTray, key: str, value: object, message: str
) -> None:
    tray = make_tray("BRN404", count=3)
    _edit(tray, 2, **{key: value})
    with pytest.raises(TrayFileError) as caught:
        tray.records()
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{tray.devices_json}: device 2")
    assert message in text


def test_devices_json_not_a_list_or_not_json(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    tray.devices_json.write_text("{}")
    with pytest.raises(TrayFileError, match="expected a JSON list"):
        tray.records()
    tray.devices_json.write_text("[{")
    with pytest.raises(TrayFileError, match="not valid JSON"):
        tray.records()


def test_duplicate_devices_are_refused(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=2)
    data = json.loads(tray.devices_json.read_text())
    tray.devices_json.write_text(json.dumps([data[0], data[0]]))
    with pytest.raises(TrayFileError, match=r"device 1 .*same device as device 0"):
        tray.records()


def test_edits_by_other_tools_take_effect_at_the_next_load(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=2)
    device_id = tray.device_ids()[1]
    _edit(tray, 1, **{"faults.protected": True, "readings.vbat": 3.9, "extra_key": "kept"})
    device = tray.load(device_id)
    assert device.faults.protected and device.readings == {"vbat": 3.9}
    tray.update_record(device_id, faults=Faults())
    assert json.loads(tray.devices_json.read_text())[1]["extra_key"] == "kept"


def test_a_mass_erase_in_a_session_clears_protected_in_devices_json(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(protected=True))
    with tray.session(device_id) as device:
        device.mass_erase()
    assert tray.record(device_id).faults.protected is False
    assert tray.load(device_id).modules() == []


_WRITER = """
import sys
from trayline.virtual.tray import Tray
folder, device_id, address, fill, rounds = sys.argv[1:]
tray = Tray(folder)
address, fill = int(address, 16), int(fill)
for _ in range(int(rounds)):
    with tray.session(device_id) as device:
        device.erase(address, address + 0x1000)
        device.write(address, bytes([fill]) * 0x1000)
        device.state.boots += 1
"""


def test_two_processes_writing_one_device_never_lose_or_tear_a_write(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1, blank=True)
    device_id = tray.device_ids()[0]
    rounds = 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tray.folder), device_id, address, fill, str(rounds)]
        )
        for address, fill in (("0x60000", "17"), ("0x70000", "34"))
    ]
    assert [p.wait(120) for p in procs] == [0, 0]
    device = tray.load(device_id)
    assert device.flash.read(0x60000, 0x1000) == bytes([17]) * 0x1000
    assert device.flash.read(0x70000, 0x1000) == bytes([34]) * 0x1000
    assert device.state.boots == 2 * rounds  # every session's state change survived

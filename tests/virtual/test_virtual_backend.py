"""The ``virtual`` programmer backend end to end, through the registry like the station uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from traykit import MakeTray

from trayline.core.modules import ModuleFunction as F
from trayline.core.modules import parse_module
from trayline.core.versions import SemVer
from trayline.programmers.base import (
    Capability,
    DeviceNotAnswering,
    ProbeNotFound,
    Programmer,
    ProtectedDevice,
    SlotPolicy,
    SupportsSetupDone,
    TargetNotHalted,
    VerifyFailed,
)
from trayline.programmers.registry import BadBackendOption, get_backend, open_programmer
from trayline.programmers.virtual import VirtualProgrammer, list_probes
from trayline.virtual.device import Faults
from trayline.virtual.factory import user_part
from trayline.virtual.timing import LINKS, TimingModel
from trayline.virtual.tray import Tray

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"


def _open(tray: Tray, device_id: str, platform_id: int = 13, **kw: object) -> Programmer:
    options = {"tray": str(tray.folder), "time_scale": "0"}
    options.update({k: str(v) for k, v in kw.pop("options", {}).items()})  # type: ignore[attr-defined]
    return open_programmer(
        "virtual",
        device_id,
        slot="slot 4",
        platform_id=platform_id,
        options=options,
        **kw,  # type: ignore[arg-type]
    )


def test_registry_knows_the_virtual_backend() -> None:
    backend = get_backend("virtual")
    assert Capability.VERIFY in backend.capabilities and "tray" in backend.options
    assert backend.list_probes() == []


def test_list_probes_of_a_tray(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=3)
    probes = list_probes(tray.folder)
    assert [p.probe_id for p in probes] == tray.device_ids()
    assert all(p.backend == "virtual" and "BRN404" in p.description for p in probes)


def test_device_id_and_modules_read_over_swd(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=2)
    device_id = tray.device_ids()[1]
    with _open(tray, device_id) as prog:
        assert prog.read_device_id() == device_id
        modules = prog.read_modules()
    assert [(m.function, m.index, m.version, m.valid) for m in modules] == [
        (F.RADIO_STACK, 0, 202, True),
        (F.SYSTEM_PART, 1, 2302, True),
        (F.USER_PART, 1, 6, True),
        (F.BOOTLOADER, 0, 1006, True),
    ]


def test_electron_device_id_from_the_stm32_uid(make_tray: MakeTray) -> None:
    tray = make_tray("E404", count=1)
    device_id = tray.device_ids()[0]
    with _open(tray, device_id, platform_id=10) as prog:
        assert prog.read_device_id() == device_id
        assert [m.index for m in prog.read_modules() if m.function == F.SYSTEM_PART] == [1, 2, 3]


def test_write_a_real_module_then_read_it_back_as_a_module(make_tray: MakeTray) -> None:
    tray = make_tray("T404", count=1, device_os="5.3.1")
    device_id = tray.device_ids()[0]
    tinker = (FIXTURES / "tracker-user-part-extensions.bin").read_bytes()
    with _open(tray, device_id, platform_id=26) as prog:
        result = prog.write_module(0xB4000, tinker)
        assert result.verified and result.bytes_written == len(tinker)
        assert "simulated" in result.detail
        assert prog.verify(0xB4000, tinker)
        user = next(m for m in prog.read_modules() if m.function == F.USER_PART)
        assert user.sha256 == parse_module(tinker).sha256 and user.valid
        prog.reset()
    assert tray.load(device_id).user_part() is not None


def test_verify_catches_a_flipped_bit_and_the_unit_is_not_flashed(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(flip_bit_on_write=True))
    new_user = user_part(13, SemVer.parse("2.3.1"), test_firmware=True)
    with _open(tray, device_id) as prog:
        with pytest.raises(VerifyFailed, match="slot 4: read-back differs"):
            prog.write_module(0xD4000, new_user)
        assert not prog.verify(0xD4000, new_user)
        user = next(m for m in prog.read_modules() if m.function == F.USER_PART)
        assert not user.valid
    assert not tray.load(device_id).runs_test_firmware()


def test_protected_device_is_refused_naming_the_slot_and_nothing_is_erased(
    make_tray: MakeTray,
) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(protected=True))
    before = tray.flash_path(device_id).read_bytes()
    with pytest.raises(ProtectedDevice, match=r"^slot 4: .*APPROTECT.*nothing was erased"):
        _open(tray, device_id)
    assert tray.flash_path(device_id).read_bytes() == before
    assert tray.record(device_id).faults.protected is True


def test_protected_device_is_mass_erased_only_when_the_slot_allows(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(protected=True))
    with _open(tray, device_id, policy=SlotPolicy(allow_unlock=True)) as prog:
        assert prog.read_device_id() == device_id
        assert prog.read_modules() == []
    assert tray.record(device_id).faults.protected is False


def test_connect_failures_are_retried_by_the_caller(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(swd_connect_failures=2))
    failures = 0
    for _ in range(5):
        try:
            prog = _open(tray, device_id)
        except TargetNotHalted as exc:
            assert "slot 4" in str(exc)
            failures += 1
            continue
        with prog:
            assert prog.read_device_id() == device_id
        break
    assert failures == 2


def test_never_answers_and_unknown_probes(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    tray.update_record(device_id, faults=Faults(never_answers=True))
    with pytest.raises(DeviceNotAnswering, match="slot 4"):
        _open(tray, device_id)
    with pytest.raises(ProbeNotFound, match="no virtual device"):
        _open(tray, "e00fce680000000000000000")
    with pytest.raises(TargetNotHalted, match="platform 10"):
        _open(tray, device_id, platform_id=10)


def test_bad_options_are_configuration_errors(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    with pytest.raises(BadBackendOption, match="link"):
        _open(tray, device_id, options={"link": "carrier-pigeon"})
    with pytest.raises(BadBackendOption, match="time_scale"):
        _open(tray, device_id, options={"time_scale": "-1"})
    with pytest.raises(BadBackendOption, match="tray=DIR"):
        open_programmer("virtual", device_id, slot="s", platform_id=13)


def test_setup_done_through_the_backend(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    with _open(tray, device_id) as prog:
        assert isinstance(prog, SupportsSetupDone)
        assert prog.get_setup_done() is False
        assert prog.set_setup_done(True) is True
        assert prog.get_setup_done() is True


def test_simulated_time_follows_the_timing_model(make_tray: MakeTray) -> None:
    tray = make_tray("BRN404", count=1)
    device_id = tray.device_ids()[0]
    data = user_part(13, SemVer.parse("2.3.1"), test_firmware=True)
    with _open(tray, device_id, options={"link": "jlink"}) as prog:
        assert isinstance(prog, VirtualProgrammer)
        connected = prog.simulated_seconds
        prog.write_module(0xD4000, data, verify=False)
        spent = prog.simulated_seconds - connected
    model = TimingModel.for_link("nRF52840", "jlink")
    pages = -(-len(data) // 0x1000)
    assert connected == pytest.approx(LINKS["jlink"].connect_s)
    assert spent == pytest.approx(pages * 0.085 + len(data) / LINKS["jlink"].write_bytes_per_s)
    floor = model.floor_seconds([([0x1000] * pages, len(data))])
    assert floor == pytest.approx(connected + spent + LINKS["jlink"].reset_s)

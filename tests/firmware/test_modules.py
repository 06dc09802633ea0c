"""Module inspection against Particle's own parser, plus mutation and edge cases."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from trayline.core.modules import ModuleError, ModuleFunction, find_prefix, parse_module
from trayline.core.versions import SemVer

from .modulekit import build_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "particle-binaries"
EXPECTED: dict[str, dict[str, object]] = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_agrees_with_binary_version_reader(name: str) -> None:
    """Every field binary-version-reader 3.1.3 reports, for every fixture file.

    Where the reference throws (empty file; RC2_bootloader.bin, whose suffix size
    field points at a zero-length extension) trayline raises ModuleError too: the
    messages differ, the verdict does not.
    """
    expected = EXPECTED[name]
    data = (FIXTURES / name).read_bytes()
    if "error" in expected:
        with pytest.raises(ModuleError):
            parse_module(data)
        return
    got = parse_module(data).to_dict()
    for field, value in expected.items():
        assert got[field] == value, f"{name}: {field}"


def test_readable_names_and_device_os() -> None:
    system = parse_module((FIXTURES / "tracker-system-part1@3.1.0-alpha.2.bin").read_bytes())
    assert system.platform_name == "tracker"
    assert system.function_name == "system part"
    assert system.device_os == SemVer.parse("3.1.0-alpha.2")
    tinker = parse_module((FIXTURES / "tracker-tinker@5.3.1.bin").read_bytes()).to_dict()
    assert tinker["requires_device_os"] == "5.3.1"
    assert tinker["module_function_name"] == "user part"


def test_unknown_codes_are_reported_not_errors() -> None:
    module = parse_module((FIXTURES / "unknown.bin").read_bytes())
    assert module.platform_name is None
    assert module.function_name is None
    shown = module.to_dict()
    assert shown["platform_name"] == "unknown"
    assert shown["module_function_name"] == "unknown"
    assert "unknown 0x80" in shown["flag_names"]


def test_sha_is_informational_for_ncp() -> None:
    ncp = parse_module((FIXTURES / "argon-ncp-firmware-0.0.5-ota.bin").read_bytes())
    assert ncp.function == ModuleFunction.NCP_FIRMWARE
    assert ncp.crc_ok and not ncp.sha256_ok
    assert not ncp.sha256_authoritative
    assert ncp.integrity_ok


def test_asset_dependencies_in_suffix_extensions() -> None:
    module = parse_module((FIXTURES / "tracker-user-part-extensions.bin").read_bytes())
    assets = [e.to_dict() for e in module.extensions if e.type == 0x12]
    assert len(assets) == 3
    assert all(a["hash_type"] == 0 and len(str(a["hash"])) == 64 for a in assets)
    assert module.extensions[-1].type == 0  # END


def test_drop_module_info_strips_prefix() -> None:
    data = (FIXTURES / "argon-softdevice-6.1.1.bin").read_bytes()
    module = parse_module(data)
    assert module.drop_module_info
    assert module.flash_image(data) == data[24:]


@pytest.mark.parametrize(
    "name", ["043_user-part.bin", "080_user-part-xenon.bin", "tracker-tinker@5.3.1.bin"]
)
def test_every_single_byte_flip_is_caught(name: str) -> None:
    """Flip each byte in turn: the CRC fails, or the parser refuses cleanly. Never passes."""
    data = bytearray((FIXTURES / name).read_bytes())
    for pos in range(len(data)):
        data[pos] ^= 0x5A
        with contextlib.suppress(ModuleError):
            assert not parse_module(bytes(data)).crc_ok, f"flip at {pos:#x} not detected"
        data[pos] ^= 0x5A


def test_body_flip_in_a_large_module() -> None:
    data = bytearray((FIXTURES / "tracker-system-part1@3.1.0-alpha.2.bin").read_bytes())
    for pos in (0x1000, len(data) // 2, len(data) - 100):
        data[pos] ^= 0x01
        module = parse_module(bytes(data))
        assert not module.crc_ok and not module.sha256_ok
        data[pos] ^= 0x01


@pytest.mark.parametrize("cut", [1, 4, 44, 1000])
def test_truncated_module_is_a_clear_error(cut: int) -> None:
    data = (FIXTURES / "tracker-system-part1@3.1.0-alpha.2.bin").read_bytes()
    with pytest.raises(ModuleError, match="truncated") as info:
        parse_module(data[:-cut])
    assert str(len(data) - cut) in str(info.value)


def test_empty_short_and_non_module() -> None:
    with pytest.raises(ModuleError, match="empty"):
        parse_module(b"")
    with pytest.raises(ModuleError, match="too short"):
        parse_module(b"\x01" * 20)
    with pytest.raises(ModuleError, match="not a Particle firmware module"):
        parse_module(b"This is a README, not firmware.\n" * 200)
    with pytest.raises(ModuleError, match="not a Particle firmware module"):
        parse_module(bytes(70000))


def test_prefix_after_vector_table_is_found() -> None:
    data = build_module(
        platform=13, function=4, index=1, version=4005, start=0x30000, prefix_offset=0x200
    )
    assert find_prefix(data) == (0x200, 7)
    assert parse_module(data).integrity_ok

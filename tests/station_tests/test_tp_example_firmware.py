"""The example test firmware in examples/testfw compiles against the stub of the Particle API.

``g++ -std=c++17 -fsyntax-only`` catches what a firmware engineer would hit first
(typos, wrong API use, missing includes) without Device OS's toolchain. Both the
Gen 3 branch (setup-done flag in the DCT) and the Electron branch (no such field)
are checked. The real build uses Particle's tools (docs/test-firmware.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trayline.station.testchannel import PROTOCOL_VERSION, TESTFW_BANNER

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "testfw"
SOURCE = EXAMPLE / "src" / "testfw.cpp"


def _gxx() -> str:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: the example firmware's syntax check did not run")
    return gxx


@pytest.mark.parametrize("platform", ["gen3", "electron"])
def test_example_firmware_compiles_against_the_stub(platform: str) -> None:
    args = [_gxx(), "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror"]
    if platform == "electron":
        args.append("-DPARTICLE_STUB_ELECTRON")
    args += ["-I", str(EXAMPLE / "stub"), str(SOURCE)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_a_broken_call_is_caught_by_the_check(tmp_path: Path) -> None:
    """The check can fail: an API the stub does not declare is an error."""
    broken = tmp_path / "broken.cpp"
    broken.write_text(SOURCE.read_text() + "\nvoid extra() { Cellular.teleport(); }\n")
    args = [_gxx(), "-std=c++17", "-fsyntax-only", "-I", str(EXAMPLE / "stub"), str(broken)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "teleport" in done.stderr


def test_firmware_carries_the_banner_and_protocol_version() -> None:
    text = SOURCE.read_text()
    assert f'BANNER[] = "{TESTFW_BANNER}"' in text
    assert f"PROTOCOL_VERSION = {PROTOCOL_VERSION};" in text
    # every command of the protocol is handled
    for cmd in ("hello", "measure", "run", "setup_done", "reset"):
        assert f'cmd == "{cmd}"' in text
    # the guide's setup-done lines, as the guide writes them
    assert (
        "dct_read_app_data_copy(DCT_SETUP_DONE_OFFSET, &val, DCT_SETUP_DONE_SIZE) && val != 1"
        in text
    )
    assert "dct_write_app_data(&val, DCT_SETUP_DONE_OFFSET, DCT_SETUP_DONE_SIZE);" in text


def test_protocol_examples_in_the_firmware_header_are_json() -> None:
    header = SOURCE.read_text().split("*/", 1)[0]
    objects = re.findall(r"\{\"[^\n]*?\}(?=\s|$)", header)
    assert len(objects) >= 6
    for obj in objects:
        if "..." in obj:
            continue
        json.loads(obj)

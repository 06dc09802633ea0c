"""DAPLink drag-and-drop against a temp directory that a fake "drive" thread unmounts/remounts."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import pytest
from intelhex import IntelHex

from trayline.programmers.base import (
    Capability,
    ProbeNotFound,
    ProgrammerError,
    ProtectedDevice,
    SeveralProbes,
    TargetNotHalted,
    ToolFailed,
    ToolTimeout,
    VerifyFailed,
)
from trayline.programmers.daplink_drive import DaplinkProgrammer, find_drives, open_daplink
from trayline.programmers.registry import BadBackendOption, OpenRequest

from .fakes import TRANSCRIPTS

DAPLINK = TRANSCRIPTS / "daplink"
UID = "0240000032044e4500257009997b00386781000097969900"


class FakeDrive(threading.Thread):
    """Waits for a .HEX on the drive, then 'unmounts' (empties), 'programs', and remounts."""

    def __init__(self, mount: Path, *, fail: str | None = None, remount: bool = True) -> None:
        super().__init__(daemon=True)
        self.mount, self.fail, self.remount = mount, fail, remount
        self.received: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            hexes = list(self.mount.glob("*.HEX")) if self.mount.exists() else []
            if hexes and hexes[0].read_bytes().endswith(b":00000001FF\n"):  # fully copied
                self.received.append(hexes[0].read_bytes())
                # The drive disconnects at once (a rename, not a file-by-file delete).
                gone = self.mount.with_name(self.mount.name + ".gone")
                self.mount.rename(gone)
                shutil.rmtree(gone)
                time.sleep(0.05)
                if not self.remount:
                    return
                # The drive comes back whole (DETAILS.TXT and FAIL.TXT at once), as a remount does.
                staging = mount_drive(
                    self.mount.with_name(self.mount.name + ".new"), fail=self.fail
                )
                staging.rename(self.mount)
                return
            time.sleep(0.005)


def mount_drive(mount: Path, *, fail: str | None = None, uid: str = UID) -> Path:
    mount.mkdir(parents=True, exist_ok=True)
    details = (DAPLINK / "DETAILS.TXT").read_text().replace(UID, uid)
    (mount / "DETAILS.TXT").write_text(details)
    if fail:
        shutil.copy(DAPLINK / f"FAIL-{fail}.TXT", mount / "FAIL.TXT")
    return mount


def _prog(mount: Path, *, timeout: float = 5.0) -> DaplinkProgrammer:
    request = OpenRequest(
        probe_id=UID,
        slot="slot 9",
        platform_id=13,
        options={"mount": str(mount), "timeout": str(timeout)},
    )
    prog = open_daplink(request)
    prog.poll = 0.01
    return prog


def test_capabilities_are_write_only(tmp_path: Path) -> None:
    prog = _prog(mount_drive(tmp_path / "DAPLINK"))
    assert prog.capabilities == frozenset({Capability.WRITE_MODULE})
    for call in (prog.read_device_id, lambda: prog.read_memory(0, 4), prog.read_modules):
        with pytest.raises(ProgrammerError, match="slot 9: the DAPLink drive cannot"):
            call()


def test_drop_programs_and_returns_after_remount(tmp_path: Path) -> None:
    mount = mount_drive(tmp_path / "DAPLINK")
    drive = FakeDrive(mount)
    drive.start()
    prog = _prog(mount)
    results = prog.write_modules([(0xB4000, b"\x01" * 100), (0xF4000, b"\x02" * 40)])
    drive.join(2)
    assert [(r.address, r.bytes_written, r.verified) for r in results] == [
        (0xB4000, 100, False),
        (0xF4000, 40, False),
    ]
    (dropped,) = drive.received
    ih = IntelHex(io.StringIO(dropped.decode()))
    assert ih.tobinstr(start=0xB4000, size=100) == b"\x01" * 100
    assert ih.tobinstr(start=0xF4000, size=40) == b"\x02" * 40
    assert prog.probe.port == str(mount)


@pytest.mark.parametrize(
    ("fail", "error", "words"),
    [
        ("reset-halt", TargetNotHalted, "FAILED to reset/halt the target MCU"),
        ("protected", ProtectedDevice, "protected"),
        ("verify", VerifyFailed, "verification failed"),
        ("decode", ToolFailed, "cannot be decoded"),
    ],
)
def test_fail_txt_is_mapped(tmp_path: Path, fail: str, error: type[Exception], words: str) -> None:
    mount = mount_drive(tmp_path / "DAPLINK")
    drive = FakeDrive(mount, fail=fail)
    drive.start()
    with pytest.raises(error) as caught:
        _prog(mount).write_module(0xB4000, b"\x00" * 64)
    drive.join(2)
    assert str(caught.value).startswith("slot 9: DAPLink FAIL.TXT: ")
    assert words in str(caught.value)


def test_drive_that_never_comes_back_times_out(tmp_path: Path) -> None:
    mount = mount_drive(tmp_path / "DAPLINK")
    drive = FakeDrive(mount, remount=False)
    drive.start()
    with pytest.raises(ToolTimeout, match=r"slot 9: the DAPLINK drive .* did not disconnect"):
        _prog(mount, timeout=0.5).write_module(0xB4000, b"\x00" * 64)


def test_no_drive_at_the_mount(tmp_path: Path) -> None:
    with pytest.raises(ProbeNotFound, match="slot 9: no DAPLINK drive mounted at"):
        _prog(tmp_path / "nothing")


def test_write_outside_flash_refused_before_copy(tmp_path: Path) -> None:
    mount = mount_drive(tmp_path / "DAPLINK")
    with pytest.raises(ProgrammerError, match="refusing to drop"):
        _prog(mount).write_module(0x0, b"\x00" * 64)
    assert not list(mount.glob("*.HEX"))


def test_electron_refused(tmp_path: Path) -> None:
    mount = mount_drive(tmp_path / "DAPLINK")
    with pytest.raises(BadBackendOption, match="Gen 3"):
        open_daplink(
            OpenRequest(probe_id="", slot="slot 9", platform_id=10, options={"mount": str(mount)})
        )


def _mounts(tmp_path: Path, uids: list[str]) -> Path:
    lines = []
    for i, uid in enumerate(uids):
        mount = mount_drive(tmp_path / f"media/DAPLINK{i or ''}", uid=uid)
        lines.append(f"/dev/sd{'bcd'[i]} {mount} vfat rw,nosuid,nodev 0 0")
    lines.append("proc /proc proc rw 0 0")
    mounts = tmp_path / "mounts"
    mounts.write_text("\n".join(lines) + "\n")
    return mounts


def test_find_drives_from_proc_mounts(tmp_path: Path) -> None:
    mounts = _mounts(tmp_path, [UID, "0240000032044e45ffffffff"])
    assert [d.unique_id for d in find_drives(mounts)] == [UID, "0240000032044e45ffffffff"]
    prog = open_daplink(
        OpenRequest(probe_id=UID, slot="slot 9", platform_id=13), mounts_file=mounts
    )
    assert prog.mount == tmp_path / "media/DAPLINK"
    with pytest.raises(SeveralProbes, match="slot 9: 2 DAPLINK drives mounted"):
        open_daplink(OpenRequest(probe_id="", slot="slot 9", platform_id=13), mounts_file=mounts)
    with pytest.raises(ProbeNotFound, match="no DAPLINK drive with Unique ID abc"):
        open_daplink(OpenRequest(probe_id="abc", slot="slot 9", platform_id=13), mounts_file=mounts)

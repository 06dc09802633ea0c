"""How long things take on a real line, as data, so virtual throughput figures mean something.

A virtual device that flashes in zero time makes every benchmark a benchmark
of Python. So each operation on a virtual device costs *simulated* time taken
from two tables:

* :data:`CHIPS` — what the silicon needs whatever drives it: page/sector erase
  time (nRF52840: 85 ms per 4 KB page, spec §10.4; STM32F205: sector erase
  times from ST's datasheet, typical at x32 parallelism — **UNCONFIRMED** in
  the spec, marked so in the table).
* :data:`LINKS` — what each way of reaching the chip adds: connect time, how
  fast bytes cross the wire for writes and reads, reset and mode-change time.
  Figures from spec §5.2 and §10.4; each row names its source.

The cost of writing ``n`` bytes over a link is
``pages × chip.erase_s_per_unit + n / link.write_bytes_per_s`` — erase comes
from the chip, transfer from the link. :meth:`TimingModel.floor_seconds` gives
the same sum for a list of module sizes, so a benchmark can compare what a
flash really cost against the model's floor.

The :class:`SimClock` turns simulated seconds into real sleeping, multiplied
by a global **time scale**: 1.0 = real time, 0.01 = a hundred times faster,
0 = instant (what tests use). The scale comes from the constructor or from
``TRAYLINE_VIRTUAL_TIME_SCALE`` (read by :mod:`trayline.settings`, see
:func:`time_scale_from_env`). Simulated seconds are counted whatever
the scale, so "this flash cost 14.2 s of device time" is reported even when
it ran in a millisecond.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from trayline.settings import virtual_time_scale

__all__ = [
    "CHIPS",
    "DEFAULT_LINK",
    "LINKS",
    "TIME_SCALE_ENV",
    "ChipTiming",
    "LinkTiming",
    "SimClock",
    "TimingModel",
    "time_scale_from_env",
]

TIME_SCALE_ENV = "TRAYLINE_VIRTUAL_TIME_SCALE"


@dataclass(frozen=True, slots=True)
class ChipTiming:
    """Erase cost of one MCU's internal flash."""

    mcu: str
    erase_s_per_unit: dict[int, float]
    """Erase unit size in bytes → seconds to erase one unit."""
    mass_erase_s: float
    source: str

    def erase_seconds(self, unit_sizes: list[int]) -> float:
        return sum(self.erase_s_per_unit.get(size, 0.0) for size in unit_sizes)


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """One way of reaching a device: a probe and the tool that drives it."""

    name: str
    connect_s: float
    write_bytes_per_s: float
    read_bytes_per_s: float
    reset_s: float
    mode_change_s: float
    source: str


CHIPS: dict[str, ChipTiming] = {
    "nRF52840": ChipTiming(
        "nRF52840",
        {0x1000: 0.085},
        0.173,
        "nRF52840 PS via spec §10.4: 85 ms per 4 KB page; ERASEALL 173 ms",
    ),
    "STM32F205RG": ChipTiming(
        "STM32F205RG",
        {0x4000: 0.25, 0x10000: 0.55, 0x20000: 1.0},
        8.0,
        "STM32F20x datasheet typical sector erase at x32 (16/64/128 KB: 0.25/0.55/1 s), "
        "UNCONFIRMED in the spec",
    ),
}

# Write rates are the link's transfer rate once erase is accounted for by the chip row:
# OpenOCD + CMSIS-DAP measured 13.4 KiB/s *including* erase (spec §5.2: 36 864 B in 2.69 s);
# with 85 ms per 4 KB page erased that leaves 4096 / (0.298 - 0.085) ≈ 19 200 B/s on the wire.
LINKS: dict[str, LinkTiming] = {
    link.name: link
    for link in (
        LinkTiming(
            "jlink",
            0.3,
            400_000,
            1_000_000,
            0.1,
            0.0,
            "§10.4: J-Link is the fastest (about 4 s for a full Gen 3 image with mass erase)",
        ),
        LinkTiming(
            "nrfjprog",
            0.5,
            250_000,
            1_000_000,
            0.2,
            0.0,
            "§5.3/§10.4: about 7 s for a full restore (J-Link underneath, tool start-up)",
        ),
        LinkTiming(
            "openocd-cmsis-dap",
            1.0,
            19_200,
            117_760,
            0.5,
            0.0,
            "§5.2: CMSIS-DAP at 1 MHz wrote 36 864 B in 2.69 s (13.4 KiB/s with erase); "
            "verify about 115 KiB/s",
        ),
        LinkTiming(
            "pyocd-cmsis-dap",
            0.8,
            45_700,
            91_400,
            0.3,
            0.0,
            "§10.4: pyOCD with CMSIS-DAP 45.7 KB/s on a 1 MB nRF52840; verify doubles it",
        ),
        LinkTiming(
            "pyocd-jlink",
            0.8,
            1_850,
            3_700,
            0.3,
            0.0,
            "§10.4: pyOCD driving a J-Link, 1.85 kB/s (pyOCD #943)",
        ),
        LinkTiming(
            "daplink-drive",
            2.0,
            15_000,
            0.0,
            2.0,
            0.0,
            "§10.4: drag-and-drop about 1 minute for a full Gen 3 image (no read-back)",
        ),
        LinkTiming(
            "usb-dfu",
            0.2,
            31_000,
            31_000,
            5.0,
            5.0,
            "§10.4: USB DFU >= 31 KB/s (flash-bound estimate) and >= 5 s per mode change/reset",
        ),
        LinkTiming(
            "stlink",
            1.0,
            30_000,
            120_000,
            0.5,
            0.0,
            "ST-LINK/V2 on the STM32F205: UNCONFIRMED estimate, no measured figure in the spec",
        ),
    )
}

DEFAULT_LINK = "openocd-cmsis-dap"
"""The guide's default Gen 3 strategy: the Particle Debugger with OpenOCD."""


@dataclass(frozen=True, slots=True)
class TimingModel:
    """A chip row and a link row: the cost of each operation on one device over one link."""

    chip: ChipTiming
    link: LinkTiming

    @classmethod
    def for_link(cls, mcu: str, link: str = DEFAULT_LINK) -> TimingModel:
        if link not in LINKS:
            known = ", ".join(sorted(LINKS))
            raise ValueError(f"unknown link {link!r}; known links: {known}")
        return cls(CHIPS[mcu], LINKS[link])

    def erase_seconds(self, unit_sizes: list[int]) -> float:
        return self.chip.erase_seconds(unit_sizes)

    def write_seconds(self, length: int) -> float:
        return length / self.link.write_bytes_per_s

    def read_seconds(self, length: int) -> float:
        rate = self.link.read_bytes_per_s
        return length / rate if rate > 0 else 0.0

    def floor_seconds(self, writes: list[tuple[list[int], int]]) -> float:
        """Connect, then for each write its erase units and bytes, then one reset.

        ``writes`` holds ``(erase unit sizes, bytes written)`` per module: the
        least simulated time a flash of those modules can cost on this link.
        """
        total = self.link.connect_s + self.link.reset_s
        for units, length in writes:
            total += self.erase_seconds(units) + self.write_seconds(length)
        return total


def time_scale_from_env(default: float = 1.0) -> float:
    """``TRAYLINE_VIRTUAL_TIME_SCALE`` (through :mod:`trayline.settings`), or ``default``.

    Raises ``ValueError`` naming the variable for a value that is not a number >= 0.
    """
    scale = virtual_time_scale()
    return default if scale is None else scale


class SimClock:
    """Counts simulated device time and sleeps ``seconds × scale`` of real time for it."""

    def __init__(self, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError("time scale must be >= 0")
        self.scale = scale
        self._lock = threading.Lock()
        self.simulated = 0.0

    def spend(self, seconds: float) -> None:
        with self._lock:
            self.simulated += seconds
        if self.scale > 0 and seconds > 0:
            time.sleep(seconds * self.scale)

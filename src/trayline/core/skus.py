"""The SKU catalog: what a manufacturing engineer needs to know about each part number.

A SKU decides almost every branch of the line: which product it may be imported
into (platform), whether its SIM is embedded or a separate 4FF card that must be
imported on its own, whether SWD can reach it or the station must flash over
USB, whether it can connect at a contract manufacturer in China (LTE Cat M1
cannot), whether the Gen 3 "setup done" DCT flag has to be set, whether the
Tracker's ESP32 NCP needs an update, and the lowest Device OS it runs.

This module is data plus two look-ups. Sources: shared/spec/particle-cloud-api.md
§11 (platform ids from ``@particle/device-constants``, modems/SIMs/prefixes from
the docs' ``carriers.json``), shared/seed/manufacturing-cellular.md, and the
datasheets for minimum Device OS. Where a minimum Device OS is not documented
for a SKU, the value is the first Device OS release that supported the SKU's
platform and modem; engineers can override it per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trayline.core.versions import SemVer

__all__ = ["CATALOG", "Family", "SimKind", "Sku", "UnknownSku", "get_sku", "sku_for_serial"]


class Family(StrEnum):
    """The product family; it decides form factor and SWD access."""

    B_SOM = "B Series SoM"
    BORON = "Boron"
    TRACKER_ONE = "Tracker One"
    TRACKER_SOM = "Tracker SoM"
    E_SERIES = "E Series"
    ELECTRON = "Electron"


class SimKind(StrEnum):
    """Embedded MFF2 SIMs are activated by device import; 4FF cards must be imported."""

    EMBEDDED = "embedded MFF2"
    SEPARATE_4FF = "separate 4FF nano SIM"


@dataclass(frozen=True, slots=True)
class Platform:
    """A Device OS platform: the id every module binary and product is tagged with."""

    id: int
    name: str
    mcu: str
    generation: int


ELECTRON = Platform(10, "electron", "STM32F205RG", 2)
BORON = Platform(13, "boron", "nRF52840", 3)
ESOMX = Platform(15, "esomx", "nRF52840", 3)
BSOM = Platform(23, "bsom", "nRF52840", 3)
B5SOM = Platform(25, "b5som", "nRF52840", 3)
TRACKER = Platform(26, "tracker", "nRF52840 + ESP32 NCP", 3)

PLATFORMS: dict[int, Platform] = {p.id: p for p in (ELECTRON, BORON, ESOMX, BSOM, B5SOM, TRACKER)}


@dataclass(frozen=True, slots=True)
class Sku:
    """One orderable cellular part number and the facts the line acts on."""

    name: str
    family: Family
    platform: Platform
    modem: str
    radio: str
    sim: SimKind
    sim_type: int
    serial_prefixes: tuple[str, ...]
    swd: bool
    swd_note: str
    min_device_os: SemVer

    @property
    def generation(self) -> int:
        return self.platform.generation

    @property
    def platform_id(self) -> int:
        return self.platform.id

    @property
    def lte_cat_m1(self) -> bool:
        """Cat M1 devices cannot connect at a CM in China: test them in manual mode."""
        return "Cat M1" in self.radio

    @property
    def setup_done_applies(self) -> bool:
        """Gen 3 on Device OS < 4.0 boots into listening mode unless the DCT flag is set."""
        return self.generation == 3

    @property
    def ncp_update_applies(self) -> bool:
        """Tracker on Device OS >= 3.0.0 needs ESP32 NCP 0.0.7, flashed over USB serial."""
        return self.platform is TRACKER

    @property
    def separate_sim(self) -> bool:
        return self.sim is SimKind.SEPARATE_4FF

    def to_dict(self) -> dict[str, object]:
        return {
            "sku": self.name,
            "family": str(self.family),
            "generation": self.generation,
            "platform_id": self.platform.id,
            "platform": self.platform.name,
            "mcu": self.platform.mcu,
            "modem": self.modem,
            "radio": self.radio,
            "sim": str(self.sim),
            "sim_type": self.sim_type,
            "serial_prefixes": list(self.serial_prefixes),
            "swd": self.swd,
            "swd_note": self.swd_note,
            "lte_cat_m1": self.lte_cat_m1,
            "setup_done_applies": self.setup_done_applies,
            "ncp_update_applies": self.ncp_update_applies,
            "min_device_os": str(self.min_device_os),
        }


class UnknownSku(KeyError):
    """The SKU name is not in the catalog."""

    def __str__(self) -> str:
        return str(self.args[0])


_CAT_M1 = "LTE Cat M1"
_CAT1 = "LTE Cat 1 / 3G / 2G"
_2G3G = "2G/3G"

_SWD_BORON = "10-pin SWD connector on the board"
_SWD_BSOM = "no connector on the SoM: SoM pads via pogo pins, or a connector on your base board"
_SWD_TSOM = "no connector on the SoM: SoM pads, or a connector on your base board"
_SWD_ONE = "connector unpopulated; opening the case voids IP67 and warranty: flash over USB"
_SWD_GEN2 = "SWD on pins D7 (SWDIO) and D6 (SWCLK), optional RESET"
_SWD_ESOMX = "SWD pads (details unconfirmed)"


def _v(text: str) -> SemVer:
    return SemVer.parse(text)


def _sku(
    name: str,
    family: Family,
    platform: Platform,
    modem: str,
    radio: str,
    sim_type: int,
    prefixes: tuple[str, ...],
    min_os: str,
    *,
    sim: SimKind = SimKind.EMBEDDED,
) -> Sku:
    swd_by_family = {
        Family.BORON: (True, _SWD_BORON),
        Family.B_SOM: (True, _SWD_BSOM),
        Family.TRACKER_SOM: (True, _SWD_TSOM),
        Family.TRACKER_ONE: (False, _SWD_ONE),
        Family.E_SERIES: (True, _SWD_ESOMX if platform is ESOMX else _SWD_GEN2),
        Family.ELECTRON: (True, _SWD_GEN2),
    }
    swd, note = swd_by_family[family]
    return Sku(name, family, platform, modem, radio, sim, sim_type, prefixes, swd, note, _v(min_os))


_R410 = "u-blox SARA-R410M"
_R510 = "u-blox SARA-R510S"
_U201 = "u-blox SARA-U201"
_BG96 = "Quectel BG96-MC"
_EG91E = "Quectel EG91-E"
_EG91EX = "Quectel EG91-EX"
_4FF = SimKind.SEPARATE_4FF

# Minimum Device OS: the X SKUs (SARA-R510S) need 4.0.1 or later; the others use
# the first release that supported their platform and modem.
CATALOG: dict[str, Sku] = {
    s.name: s
    for s in (
        _sku("B402", Family.B_SOM, BSOM, _R410, _CAT_M1, 3, ("P006", "P007"), "1.1.0"),
        _sku("B404", Family.B_SOM, BSOM, _R410, _CAT_M1, 4, ("P033",), "2.0.0"),
        _sku("B404X", Family.B_SOM, BSOM, _R510, _CAT_M1, 4, ("P042",), "4.0.1"),
        _sku("B523", Family.B_SOM, B5SOM, _EG91E, _CAT1, 2, ("P019", "P020"), "1.5.0"),
        _sku("B524", Family.B_SOM, B5SOM, _EG91E, _CAT1, 4, ("P034",), "2.0.0"),
        _sku(
            "BRN402",
            Family.BORON,
            BORON,
            _R410,
            _CAT_M1,
            3,
            ("B40H", "B40K", "B40T", "P012"),
            "0.9.0",
        ),
        _sku("BRN404", Family.BORON, BORON, _R410, _CAT_M1, 4, ("P028",), "2.0.0"),
        _sku("BRN404X", Family.BORON, BORON, _R510, _CAT_M1, 4, ("P044",), "4.0.1"),
        _sku("BRN310", Family.BORON, BORON, _U201, _2G3G, 2, ("B31K", "B31T"), "0.9.0"),
        _sku("BRN314", Family.BORON, BORON, _U201, _2G3G, 4, ("P027",), "2.0.0"),
        _sku("ONE402", Family.TRACKER_ONE, TRACKER, _BG96, _CAT_M1, 3, ("P024",), "1.5.4-rc.1"),
        _sku("ONE404", Family.TRACKER_ONE, TRACKER, _BG96, _CAT_M1, 4, ("P031",), "2.0.0"),
        _sku("ONE523", Family.TRACKER_ONE, TRACKER, _EG91EX, _CAT1, 2, ("P025",), "1.5.4-rc.1"),
        _sku("ONE524", Family.TRACKER_ONE, TRACKER, _EG91EX, _CAT1, 4, ("P032",), "2.0.0"),
        _sku("T402", Family.TRACKER_SOM, TRACKER, _BG96, _CAT_M1, 3, ("P024",), "1.5.4-rc.1"),
        _sku("T404", Family.TRACKER_SOM, TRACKER, _BG96, _CAT_M1, 4, ("P031",), "2.0.0"),
        _sku("T523", Family.TRACKER_SOM, TRACKER, _EG91EX, _CAT1, 2, ("P025",), "1.5.4-rc.1"),
        _sku("T524", Family.TRACKER_SOM, TRACKER, _EG91EX, _CAT1, 4, ("P032",), "2.0.0"),
        _sku(
            "E402", Family.E_SERIES, ELECTRON, _R410, _CAT_M1, 3, ("E40K", "E40M", "E40T"), "1.2.1"
        ),
        _sku("E404", Family.E_SERIES, ELECTRON, _R410, _CAT_M1, 4, ("P030",), "2.0.0"),
        _sku("E404X", Family.E_SERIES, ESOMX, _R510, _CAT_M1, 4, ("P052",), "4.0.1"),
        _sku("E310", Family.E_SERIES, ELECTRON, _U201, _2G3G, 1, ("E31K", "E31M", "E31T"), "0.6.0"),
        _sku("E313", Family.E_SERIES, ELECTRON, _U201, _2G3G, 2, ("P005",), "0.6.0"),
        _sku("E314", Family.E_SERIES, ELECTRON, _U201, _2G3G, 4, ("P029",), "2.0.0"),
        _sku("ELC402", Family.ELECTRON, ELECTRON, _R410, _CAT_M1, 3, ("E4DK", "E4DT"), "1.2.1"),
        _sku("ELC404", Family.ELECTRON, ELECTRON, _R410, _CAT_M1, 4, ("P036",), "2.0.0"),
        _sku("ELC314", Family.ELECTRON, ELECTRON, _U201, _2G3G, 4, ("P035",), "2.0.0", sim=_4FF),
        _sku(
            "E260",
            Family.ELECTRON,
            ELECTRON,
            "u-blox SARA-U260",
            _2G3G,
            1,
            ("E26K", "E26T"),
            "0.4.8",
            sim=_4FF,
        ),
        _sku(
            "E270",
            Family.ELECTRON,
            ELECTRON,
            "u-blox SARA-U270",
            _2G3G,
            1,
            ("E27K", "E27T"),
            "0.4.8",
            sim=_4FF,
        ),
        _sku(
            "E350",
            Family.ELECTRON,
            ELECTRON,
            "u-blox SARA-G350",
            "2G",
            1,
            ("E35K", "E35T"),
            "0.4.8",
            sim=_4FF,
        ),
    )
}


def get_sku(name: str) -> Sku:
    """Look a SKU up by name, forgiving case and tray/kit suffixes (``BRN404-TRAY50``)."""
    key = name.strip().upper()
    if key in CATALOG:
        return CATALOG[key]
    for sep in ("-", " "):
        base = key.split(sep, 1)[0]
        if base in CATALOG:
            return CATALOG[base]
    for suffix in ("MEA", "MTY", "MKIT", "KIT", "TRAY50", "MOD1", "EA", "TY"):
        if key.endswith(suffix) and key[: -len(suffix)] in CATALOG:
            return CATALOG[key[: -len(suffix)]]
    known = ", ".join(sorted(CATALOG))
    raise UnknownSku(f"unknown SKU {name!r}; known SKUs: {known}")


def sku_for_serial(serial: str) -> tuple[Sku, ...]:
    """Every SKU whose serial prefix matches (Tracker One and SoM share prefixes)."""
    prefix = serial[:4].upper()
    return tuple(s for s in CATALOG.values() if prefix in s.serial_prefixes)

"""What each programming tool calls a Particle platform's chip, and where its device ID lives.

The same Boron is ``target/nrf52.cfg`` to OpenOCD, ``NRF52840_XXAA`` to
JLinkExe, ``nrf52840`` to pyOCD and ``-f NRF52`` to nrfjprog; an Electron is
``stm32f2x`` / ``STM32F205RG`` / a CMSIS-pack target. Those names, and the
device-ID rule (spec §2.4: nRF52840 ``"e00fce68"`` + the 8 bytes of
FICR.DEVICEID at 0x10000060; STM32 the 12-byte UID at 0x1FFF7A10), are data,
kept here so every backend reads one table (the pyOCD habit: a chip is data).
"""

from __future__ import annotations

from dataclasses import dataclass

from trayline.core.ids import DeviceId
from trayline.core.platforms import NRF52840_PLATFORM_IDS, platform_name

__all__ = ["NRF52840", "STM32F205", "Mcu", "UnsupportedPlatform", "device_id_from_bytes", "mcu_for"]


class UnsupportedPlatform(ValueError):
    """No SWD facts for this platform (P2/M-SoM are RTL872x; trayline has no map for them)."""


@dataclass(frozen=True, slots=True)
class Mcu:
    """One MCU family as the tools name it."""

    family: str
    openocd_target: str
    jlink_device: str
    pyocd_target: str
    id_address: int
    id_length: int
    id_prefix: str
    connect_under_reset: bool
    """Gen 2 Device OS disables SWD: connect with SRST asserted (spec §5.2, §10.2)."""
    flash_base: int
    flash_size: int


NRF52840 = Mcu(
    family="nrf52",
    openocd_target="target/nrf52.cfg",
    jlink_device="NRF52840_XXAA",
    pyocd_target="nrf52840",
    id_address=0x10000060,
    id_length=8,
    id_prefix="e00fce68",
    connect_under_reset=False,
    flash_base=0x00000000,
    flash_size=0x00100000,
)

STM32F205 = Mcu(
    family="stm32f2",
    openocd_target="target/stm32f2x.cfg",
    jlink_device="STM32F205RG",  # UNCONFIRMED for every J-Link version (spec §5.4)
    pyocd_target="stm32f205rgyx",  # UNCONFIRMED: the name the Keil STM32F2 pack gives (§5.5, §9.1)
    id_address=0x1FFF7A10,
    id_length=12,
    id_prefix="",
    connect_under_reset=True,
    flash_base=0x08000000,
    flash_size=0x00100000,
)


def mcu_for(platform_id: int) -> Mcu:
    """The MCU of a Gen 2 Electron (10) or a Gen 3 nRF52840 platform."""
    if platform_id in NRF52840_PLATFORM_IDS:
        return NRF52840
    if platform_id == 10:
        return STM32F205
    name = platform_name(platform_id) or "unknown"
    raise UnsupportedPlatform(
        f"platform {platform_id} ({name}) cannot be programmed over SWD by trayline: "
        "only the Electron/E Series (10) and nRF52840 platforms (12, 13, 15, 23, 25, 26) are mapped"
    )


def device_id_from_bytes(mcu: Mcu, raw: bytes) -> DeviceId:
    """The Particle device ID from the ID register bytes read over SWD (spec §2.4)."""
    if len(raw) != mcu.id_length:
        raise ValueError(f"expected {mcu.id_length} ID bytes, got {len(raw)}")
    if raw == b"\xff" * len(raw) or raw == b"\x00" * len(raw):
        raise ValueError(f"ID register reads all {raw[:1].hex()}: not a readable chip")
    return DeviceId.parse(mcu.id_prefix + raw.hex())

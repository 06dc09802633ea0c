"""Which backend and probe a command means, and opening it.

``--backend openocd --probe 0D28… -o interface=stlink`` and ``--virtual DIR
--probe e00fce68…`` are the same question asked two ways; :class:`BackendChoice`
holds the answer, checked once, and :func:`reach` opens it through the
programmer registry. A virtual tray is just the ``virtual`` backend with the
tray's directory as its option, so nothing downstream can tell the difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trayline.core.skus import UnknownSku, get_sku
from trayline.programmers.base import Programmer, SlotPolicy
from trayline.programmers.registry import open_programmer

__all__ = ["VIRTUAL_TRAY_OPTION", "BackendChoice", "platform_for", "reach"]

VIRTUAL_TRAY_OPTION = "tray"
"""The ``virtual`` backend's option naming the tray directory."""


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """A backend, a probe (``""`` = the only one attached) and the backend's options."""

    backend: str
    probe: str = ""
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_cli(
        cls,
        backend: str | None,
        probe: str | None,
        virtual: Path | None,
        options: Sequence[str] = (),
    ) -> BackendChoice:
        """Check what a command line said; ``ValueError`` names the bad part."""
        parsed: dict[str, str] = {}
        for item in options:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--option must be KEY=VALUE, not {item!r}")
            parsed[key.strip()] = value.strip()
        if virtual is not None:
            if backend not in (None, "virtual", "usb"):
                raise ValueError(f"--virtual reaches virtual devices; --backend {backend} cannot")
            if not virtual.is_dir():
                raise ValueError(f"{virtual}: no such virtual tray directory")
            parsed.setdefault(VIRTUAL_TRAY_OPTION, str(virtual.resolve()))
            backend = backend or "virtual"
        if backend is None:
            raise ValueError("say which programmer: --backend NAME (or --virtual DIR)")
        return cls(backend, (probe or "").strip(), parsed)

    @property
    def tray(self) -> Path | None:
        """The virtual tray this choice reaches, if any."""
        folder = self.options.get(VIRTUAL_TRAY_OPTION)
        return Path(folder) if self.backend == "virtual" and folder else None

    def probe_label(self) -> str:
        """How messages name this probe when no slot name is given."""
        return f"{self.backend} probe {self.probe}" if self.probe else f"{self.backend} probe"


def reach(
    choice: BackendChoice,
    *,
    slot: str,
    platform_id: int,
    policy: SlotPolicy | None = None,
) -> Programmer:
    """Open the chosen probe for ``slot``; use the result as a context manager."""
    return open_programmer(
        choice.backend,
        choice.probe,
        slot=slot,
        platform_id=platform_id,
        policy=policy,
        options=choice.options,
    )


def platform_for(choice: BackendChoice, sku: str | None) -> int:
    """The platform to open the probe for: from ``--sku``, or a virtual device's own record.

    SWD backends must know the target (nRF52840 or STM32F205) before they
    connect; a person says it with the SKU. A virtual device knows its SKU.
    ``ValueError`` when neither says.
    """
    if sku is not None:
        try:
            return get_sku(sku).platform_id
        except UnknownSku as exc:
            raise ValueError(str(exc.args[0]) if exc.args else f"unknown SKU {sku!r}") from None
    tray = choice.tray
    if tray is not None and choice.probe:
        from trayline.virtual.tray import Tray

        try:
            return Tray(tray).record(choice.probe).identity.platform_id
        except (KeyError, LookupError, OSError) as exc:
            raise ValueError(f"{tray}: no virtual device {choice.probe} ({exc})") from None
    raise ValueError("say which hardware: --sku SKU (e.g. --sku BRN404X)")

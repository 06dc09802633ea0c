"""What is attached: Particle's serial ports and every backend's probes, in one list.

``trayline device list`` is the first command at a new bench, and its job is to
answer "why does trayline not see my probe?" as well as "which probes are
there". So a backend whose tool is not installed is listed with that reason,
and a backend that fails to scan is listed with its error, instead of the whole
listing failing on the first one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trayline.console.ports import find_ports
from trayline.programmers.base import ProgrammerError, ToolMissing
from trayline.programmers.registry import backend_names, get_backend

__all__ = ["Found", "discover"]


@dataclass(frozen=True, slots=True)
class Found:
    backend: str
    probe_id: str
    description: str
    port: str | None = None
    available: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "probe": self.probe_id or None,
            "port": self.port,
            "description": self.description,
            "available": self.available,
        }


def _virtual(tray: Path) -> list[Found]:
    from trayline.virtual.tray import Tray

    opened = Tray(tray)
    ports = opened.ports()
    return [
        Found(
            "virtual",
            r.device_id,
            f"{r.identity.sku} {r.identity.serial_number}",
            port=ports.get(r.device_id),
        )
        for r in opened.records()
    ]


def discover(*, virtual: Path | None = None, backends: Sequence[str] | None = None) -> list[Found]:
    """Every probe each backend sees, plus a line for each backend that cannot look."""
    if virtual is not None:
        return _virtual(virtual)
    found: list[Found] = [
        Found("serial", p.device_id or "", p.description, port=p.path) for p in find_ports()
    ]
    for name in backends or [n for n in backend_names() if n != "virtual"]:
        try:
            probes = get_backend(name).list_probes()
        except ToolMissing as exc:
            found.append(Found(name, "", f"not available: {exc}", available=False))
            continue
        except (ProgrammerError, OSError, ValueError) as exc:
            found.append(Found(name, "", f"cannot list probes: {exc}", available=False))
            continue
        if not probes:
            found.append(Found(name, "", "no probe attached"))
        found.extend(Found(name, p.probe_id, p.description, port=p.port) for p in probes)
    return found

"""What every backend's ``open`` does with its :class:`OpenRequest` before the tool-specific part.

Two rules hold for every backend, whatever sits behind it:

* **Never "the first probe".** OpenOCD, nrfjprog, JLinkExe, pyOCD and
  STM32CubeProgrammer all pick the first probe they find when none is named;
  on a station with eight slots that flashes the wrong unit. So when the
  request names no probe, the backend lists what is attached and
  :func:`only_probe` accepts exactly one: none is :class:`ProbeNotFound`,
  several is :class:`SeveralProbes` listing them, both naming the slot.
* **The slot travels with the programmer.** Every programmer is built with the
  request's slot (for messages), platform (for the MCU facts) and policy (for
  unlocking); :func:`slot_args` hands those three over in one piece so no
  backend can forget one, and :class:`OnSlot` keeps them (with the probe) on
  the programmer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict, Unpack

from trayline.programmers.base import ProbeInfo, ProbeNotFound, SeveralProbes, SlotPolicy
from trayline.programmers.registry import OpenRequest

__all__ = ["SEVERAL", "OnSlot", "SlotArgs", "only_probe", "slot_args"]

SEVERAL = "{count} {what}s attached ({ids}); name one with --probe"
"""The usual "several probes" sentence; ``{count}``, ``{what}`` and ``{ids}`` are filled in."""


def only_probe(
    found: Sequence[str],
    *,
    slot: str,
    what: str,
    none: str,
    several: str = SEVERAL,
) -> str:
    """The single probe in ``found`` (serials, unique IDs, device IDs).

    ``none`` is the whole message when nothing is attached (it says how the
    backend looked); ``several`` is a template for the message listing them.
    """
    if not found:
        raise ProbeNotFound(none, slot=slot)
    if len(found) > 1:
        ids = ", ".join(probe or "(no serial)" for probe in found)
        raise SeveralProbes(several.format(count=len(found), what=what, ids=ids), slot=slot)
    return found[0]


class SlotArgs(TypedDict):
    """The keyword arguments every programmer class takes from the request."""

    slot: str
    platform_id: int
    policy: SlotPolicy


def slot_args(request: OpenRequest) -> SlotArgs:
    """``slot``, ``platform_id`` and ``policy`` of ``request``, for ``Programmer(…, **here)``."""
    return SlotArgs(slot=request.slot, platform_id=request.platform_id, policy=request.policy)


class OnSlot:
    """A programmer's probe and the slot it serves: what every backend keeps from its request."""

    def __init__(self, probe: ProbeInfo, **slot: Unpack[SlotArgs]) -> None:
        self.probe = probe
        self.slot = slot["slot"]
        self.platform_id = slot["platform_id"]
        self.policy = slot["policy"]

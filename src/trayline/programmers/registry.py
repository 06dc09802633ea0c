"""Backend name → how to list probes and open a programmer; the one door the station uses.

The station, the CLI and the flashing service never import a backend module:
they name a backend (``openocd``, ``nrfjprog``, ``virtual`` …) and a probe, and
this registry opens it. That keeps heavy or optional imports (pyOCD, pyusb) out
of every command that does not use them, and lets a test or a site plug in a
backend of its own.

Contract (for every backend module, including ``virtual`` and ``usb``):

* The module defines ``BACKENDS: tuple[Backend, ...]`` at module level. Each
  :class:`Backend` has a unique ``name`` (lowercase, ``-`` between words), an
  ``open`` callable taking an :class:`OpenRequest` and returning a connected
  :class:`~trayline.programmers.base.Programmer`, and a ``list_probes`` callable
  returning :class:`~trayline.programmers.base.ProbeInfo` for every probe or
  port it can see *without opening it* (``[]`` when none, never an exception
  for "no probe"; :class:`~trayline.programmers.base.ToolMissing` when the
  tool it needs is not installed).
* Built-in backends are listed in ``_BUILTIN`` (name → module path) and are
  imported on first use only. A backend outside this package is added with
  :func:`register_backend` (tests, site plug-ins); registering a name twice is
  an error unless ``replace=True``.
* ``open`` must fail with a :class:`~trayline.programmers.base.ProgrammerError`
  subclass whose message names ``request.slot`` (or the probe when no slot),
  and must honour ``request.policy`` (never unlock unless ``allow_unlock``).
* ``request.options`` carries backend-specific settings as strings (tool path,
  interface, speed, mount point, tray directory); a backend documents the keys
  it reads in its own docstring and rejects unknown keys with
  :class:`BadBackendOption` (a configuration error: exit code 2).

Errors here are configuration errors, not device errors: an unknown backend
name or a bad option is the operator's input, so they are ``ValueError``\\ s
the CLI reports with exit code 2.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from trayline.programmers.base import (
    Capability,
    ProbeInfo,
    Programmer,
    ProgrammerError,
    SlotPolicy,
)

__all__ = [
    "Backend",
    "BadBackendOption",
    "OpenRequest",
    "UnknownBackend",
    "backend_names",
    "get_backend",
    "list_all_probes",
    "list_probes",
    "open_programmer",
    "register_backend",
]


class UnknownBackend(ValueError):
    """The backend name is not registered; the message lists the names that are."""


class BadBackendOption(ValueError):
    """A backend option is unknown or has a bad value (configuration: exit code 2)."""


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """Everything a backend needs to open one probe for one slot."""

    probe_id: str
    """Probe serial, port, mount point or virtual device ID; ``""`` = the only probe attached."""
    slot: str
    """How messages name the place (``slot 3``); every error carries it."""
    platform_id: int
    """The platform expected on this slot (picks the OpenOCD target, the J-Link device …)."""
    policy: SlotPolicy = field(default_factory=SlotPolicy)
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, key: str, default: str) -> str:
        return self.options.get(key, default)

    def number(self, key: str, default: float) -> float:
        """A positive numeric option (speed, timeout); :class:`BadBackendOption` otherwise."""
        text = self.options.get(key)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise BadBackendOption(f"{self.slot}: option {key}={text!r} is not a number") from None
        if not value > 0:
            raise BadBackendOption(f"{self.slot}: option {key}={text!r} must be positive")
        return value

    def check_options(self, known: frozenset[str], backend: str) -> None:
        """Refuse option keys the backend does not read: a typo must not pass silently."""
        unknown = sorted(set(self.options) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise BadBackendOption(
                f"{self.slot}: backend {backend!r} has no option {', '.join(unknown)} "
                f"(it reads: {allowed})"
            )


@dataclass(frozen=True, slots=True)
class Backend:
    """One way of reaching devices, as the registry knows it."""

    name: str
    open: Callable[[OpenRequest], Programmer]
    list_probes: Callable[[], list[ProbeInfo]]
    capabilities: frozenset[Capability]
    """What an opened programmer can do (also on :attr:`Programmer.capabilities`)."""
    description: str = ""
    options: frozenset[str] = frozenset()
    """The ``OpenRequest.options`` keys it reads."""


_BUILTIN: dict[str, str] = {
    "openocd": "trayline.programmers.openocd",
    "nrfjprog": "trayline.programmers.nrfjprog",
    "jlink": "trayline.programmers.jlink",
    "pyocd": "trayline.programmers.pyocd_probe",
    "particle-usb": "trayline.programmers.particle_cli",
    "daplink-drive": "trayline.programmers.daplink_drive",
    "stm32-programmer": "trayline.programmers.stm32_programmer",
    "virtual": "trayline.programmers.virtual",
    "usb": "trayline.programmers.usb",
    "dfu-util": "trayline.programmers.dfu_util",
}

_registered: dict[str, Backend] = {}
_lock = threading.Lock()


def register_backend(backend: Backend, *, replace: bool = False) -> None:
    """Add a backend; a second one under the same name is refused unless ``replace``."""
    with _lock:
        if backend.name in _registered and not replace:
            raise ValueError(f"a backend named {backend.name!r} is already registered")
        _registered[backend.name] = backend


def backend_names() -> list[str]:
    """Every name :func:`get_backend` accepts (built-in or registered), sorted."""
    return sorted(set(_BUILTIN) | set(_registered))


def _load_builtin(name: str) -> None:
    module = importlib.import_module(_BUILTIN[name])
    found: tuple[Backend, ...] = getattr(module, "BACKENDS", ())
    with _lock:
        for backend in found:
            _registered.setdefault(backend.name, backend)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; :class:`UnknownBackend` lists the valid names."""
    with _lock:
        backend = _registered.get(name)
    if backend is not None:
        return backend
    if name not in _BUILTIN:
        raise UnknownBackend(
            f"unknown programmer backend {name!r}; choose one of: {', '.join(backend_names())}"
        )
    try:
        _load_builtin(name)
    except ModuleNotFoundError as exc:
        raise UnknownBackend(
            f"programmer backend {name!r} is not available in this installation ({exc})"
        ) from exc
    with _lock:
        backend = _registered.get(name)
    if backend is None:
        raise UnknownBackend(f"module {_BUILTIN[name]} does not define backend {name!r}")
    return backend


def open_programmer(
    backend: str,
    probe_id: str,
    *,
    slot: str,
    platform_id: int,
    policy: SlotPolicy | None = None,
    options: Mapping[str, str] | None = None,
) -> Programmer:
    """Open ``probe_id`` through ``backend`` for ``slot``; use the result as a context manager.

    Example::

        with open_programmer("openocd", "0d28...", slot="slot 1", platform_id=23) as prog:
            device_id = prog.read_device_id()
    """
    request = OpenRequest(
        probe_id=probe_id,
        slot=slot,
        platform_id=platform_id,
        policy=policy or SlotPolicy(),
        options=dict(options or {}),
    )
    found = get_backend(backend)
    request.check_options(found.options, found.name)
    return found.open(request)


def list_probes(backend: str) -> list[ProbeInfo]:
    """The probes ``backend`` can see now (``[]`` when none are attached)."""
    return get_backend(backend).list_probes()


def list_all_probes(
    names: Sequence[str] | None = None,
) -> tuple[list[ProbeInfo], dict[str, str]]:
    """Probes of every backend (or of ``names``), and why a backend could not look.

    For ``trayline device list``: a backend whose tool is not installed, or
    whose module cannot load, is reported in the second value (backend name →
    one line) instead of stopping the listing.
    """
    probes: list[ProbeInfo] = []
    problems: dict[str, str] = {}
    for name in names if names is not None else backend_names():
        try:
            probes.extend(get_backend(name).list_probes())
        except (ProgrammerError, UnknownBackend, OSError) as exc:
            problems[name] = str(exc)
    return probes, problems

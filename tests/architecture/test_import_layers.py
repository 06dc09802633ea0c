"""Imports point down the layers: ARCHITECTURE.md's table, encoded once, checked on each module.

The layer table lives here and nowhere else in code. Every module under
src/trayline is classified by the longest package prefix in :data:`LAYERS`; a
package missing from the table fails the test, so a new package has to be
placed before it can land. An import is allowed when :func:`allowed` says so or
when it is listed in :data:`EXCEPTIONS` with its reason.
"""

from __future__ import annotations

import subprocess
import sys
from enum import IntEnum

import pytest
from source_tree import ROOT, Module, imports, modules


class Layer(IntEnum):
    DOMAIN = 0
    """Pure: standard library only, no I/O (settings reads only the environment, trayline.toml)."""
    ADAPTER = 1
    """Talk to one outside thing each: the store, the cloud, probes, USB, serial, files."""
    DOUBLE = 2
    """Test doubles that ship as features: the local cloud and virtual devices."""
    SERVICE = 3
    """Loops and policies, using domain + adapters (+ doubles, which stand in for hardware)."""
    INTERFACE = 4
    """Parse, call a service, render."""


LAYERS: dict[str, Layer] = {
    "trayline": Layer.DOMAIN,  # the package's __init__: the version string
    "trayline.core": Layer.DOMAIN,
    "trayline.settings": Layer.DOMAIN,
    "trayline.durable": Layer.ADAPTER,  # the one crash-safe file write (standard library only)
    "trayline.store": Layer.ADAPTER,
    "trayline.particle": Layer.ADAPTER,
    "trayline.programmers": Layer.ADAPTER,
    "trayline.usb": Layer.ADAPTER,
    "trayline.console": Layer.ADAPTER,
    "trayline.inputs": Layer.ADAPTER,
    "trayline.particle.emulator": Layer.DOUBLE,
    "trayline.virtual": Layer.DOUBLE,
    "trayline.provisioning": Layer.SERVICE,
    "trayline.station": Layer.SERVICE,
    "trayline.firmware": Layer.SERVICE,
    "trayline.reports": Layer.SERVICE,
    "trayline.outbox": Layer.SERVICE,
    "trayline.devices": Layer.SERVICE,  # reach/identify/list devices over programmers + console
    "trayline.cli": Layer.INTERFACE,
    "trayline.web": Layer.INTERFACE,
    "trayline.__main__": Layer.INTERFACE,
}

EXCEPTIONS: dict[tuple[str, str], str] = {
    # (importing module or package prefix, imported package prefix): why it is right
    (
        "trayline.programmers.usb",
        "trayline.usb",
    ): "the USB programmer backend is built on the USB adapter's control requests and DfuSe "
    "(ARCHITECTURE layout: programmers/usb, usb/)",
    (
        "trayline.programmers.dfu_util",
        "trayline.usb",
    ): "the dfu-util backend needs the USB adapter's VID/PID table to pick a device",
    (
        "trayline.programmers.virtual",
        "trayline.virtual",
    ): "the virtual programmer backend exists to drive simulated devices",
    (
        "trayline.usb.virtual",
        "trayline.virtual",
    ): "the virtual pyusb backend presents simulated devices on the USB wire protocol",
    (
        "trayline.particle.emulator",
        "trayline.durable",
    ): "the local cloud's --state file is written crash-safely by the one atomic write, "
    "which is standard library only and imports nothing of trayline",
    (
        "trayline.virtual",
        "trayline.durable",
    ): "a virtual tray's device files are written crash-safely by the same atomic write",
}

# Third-party imports a layer must not make, whatever the table says.
FORBIDDEN_LIBRARIES: dict[Layer, frozenset[str]] = {
    Layer.SERVICE: frozenset({"typer", "rich", "fastapi", "starlette", "jinja2", "click"}),
}
HTTP_LIBRARIES = frozenset(
    {"httpx", "httpx2", "requests", "aiohttp", "urllib3", "http", "starlette"}
)


def layer_of(name: str) -> tuple[str, Layer] | None:
    """The longest table prefix that covers ``name``, with its layer."""
    best: tuple[str, Layer] | None = None
    for prefix, layer in LAYERS.items():
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, layer)
    return best


def allowed(src: tuple[str, Layer], dst: tuple[str, Layer]) -> bool:
    """The rule of the table for an import between two different packages."""
    (src_pkg, src_layer), (dst_pkg, dst_layer) = src, dst
    if src_pkg == dst_pkg or dst_layer is Layer.DOMAIN:
        return True
    if src_layer is Layer.DOMAIN:
        return False  # the domain knows nothing but the standard library (and itself)
    if src_layer is Layer.DOUBLE:
        return False  # an emulator that imports the client (or a service) proves nothing
    if src_layer is Layer.ADAPTER:
        return False  # adapters do not know each other, nor anything above them
    if src_layer is Layer.SERVICE:
        return dst_layer in (Layer.ADAPTER, Layer.DOUBLE, Layer.SERVICE)
    return True  # the interface may use everything below it


def _excepted(module: str, target: str) -> bool:
    return any(
        (module == src or module.startswith(src + "."))
        and (target == dst or target.startswith(dst + "."))
        for src, dst in EXCEPTIONS
    )


def _is_stdlib(top: str) -> bool:
    return top in sys.stdlib_module_names or top == "__future__"


ALL = list(modules())


def test_every_package_has_a_layer() -> None:
    unplaced = sorted({m.name for m in ALL if layer_of(m.name) is None})
    assert not unplaced, f"place these in LAYERS (tests/architecture): {unplaced}"


@pytest.mark.parametrize("module", ALL, ids=lambda m: m.name)
def test_imports_point_down(module: Module) -> None:
    src = layer_of(module.name)
    assert src is not None
    wrong = []
    for imp in imports(module):
        top = imp.target.split(".")[0]
        if top == "trayline":
            dst = layer_of(imp.target)
            if dst is None or allowed(src, dst) or _excepted(module.name, imp.target):
                continue
            wrong.append(
                f"{module.where}:{imp.line}: {src[1].name.lower()} {src[0]} imports "
                f"{dst[1].name.lower()} {imp.target}"
            )
        elif src[1] is Layer.DOMAIN and not _is_stdlib(top):
            wrong.append(f"{module.where}:{imp.line}: the domain imports the library {top}")
        elif top in FORBIDDEN_LIBRARIES.get(src[1], frozenset()):
            wrong.append(f"{module.where}:{imp.line}: a {src[1].name.lower()} imports {top}")
        elif src[0] == "trayline.store" and top in HTTP_LIBRARIES:
            wrong.append(f"{module.where}:{imp.line}: the store imports the HTTP library {top}")
    assert not wrong, "\n".join(wrong)


def test_every_exception_is_still_needed() -> None:
    """An exception nobody uses any more is removed, so the list stays the truth."""
    used = set()
    for module in ALL:
        src = layer_of(module.name)
        assert src is not None
        for imp in imports(module):
            dst = layer_of(imp.target) if imp.target.startswith("trayline") else None
            if dst is None or allowed(src, dst):
                continue
            for key in EXCEPTIONS:
                if (module.name == key[0] or module.name.startswith(key[0] + ".")) and (
                    imp.target == key[1] or imp.target.startswith(key[1] + ".")
                ):
                    used.add(key)
    assert set(EXCEPTIONS) == used, f"unused exceptions: {sorted(set(EXCEPTIONS) - used)}"


def test_the_rules_catch_what_they_should() -> None:
    """The checker itself: a few imports the design forbids are refused."""
    store, client = layer_of("trayline.store.audit"), layer_of("trayline.particle.client")
    emulator, core = layer_of("trayline.particle.emulator.app"), layer_of("trayline.core.ids")
    engine, cli = layer_of("trayline.provisioning.engine"), layer_of("trayline.cli.app")
    assert store and client and emulator and core and engine and cli
    assert emulator[1] is Layer.DOUBLE and client[1] is Layer.ADAPTER
    assert not allowed(store, client), "adapters must not import each other"
    assert not allowed(emulator, client), "the local cloud must not import the client"
    assert not allowed(core, store) and not allowed(engine, cli) and not allowed(store, engine)
    assert allowed(engine, store) and allowed(cli, engine) and allowed(emulator, core)


def test_importing_the_store_loads_no_http_library() -> None:
    """ARCHITECTURE.md: the store imports no HTTP library, not even through another module."""
    code = (
        "import pkgutil, importlib, sys, trayline.store\n"
        "for info in pkgutil.walk_packages(trayline.store.__path__, 'trayline.store.'):\n"
        "    if '.migrations.' not in info.name + '.':\n"
        "        importlib.import_module(info.name)\n"
        "import trayline.store\n"
        "loaded = sorted(m for m in ('httpx', 'httpx2', 'requests', 'aiohttp', 'urllib3') "
        "if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]

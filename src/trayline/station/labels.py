"""Product labels: ZPL with a Data Matrix of the serial and device ID, to a printer or a file.

The optional last step of a unit prints its label. :func:`render_zpl` is pure
(same unit, same bytes — the tests compare them exactly); :func:`send_label`
writes them to the target of ``[label] printer``:

* ``tcp://HOST:PORT`` — a Zebra-style printer's raw port (9100 when no port is
  given): connect, send, close; a timeout or a refusal is a :class:`LabelError`
  naming ``HOST:PORT``;
* ``file:///path/labels.zpl`` or a plain path — appended to the file (a print
  spooler, or a rehearsal without a printer; ZPL files hold many labels).

The Data Matrix (``^BX``, ECC 200) encodes ``SERIAL;DEVICEID`` — one scan
gives both, and the semicolon keeps it apart from a device sticker (serial,
space, mobile secret). Text is sent with ``^FH`` so ``^``, ``~`` and ``_`` in a
product name cannot break the label's commands, and ``^CI28`` (UTF-8).

``[label]`` in trayline.toml (parsed by :func:`parse_label_config`, errors name
the key path)::

    [label]
    printer = "tcp://192.168.10.40:9100"   # or "file:///srv/labels/line-a.zpl", or a path
    title = "Acme Tracker"                   # first text line (default: none)
    module_size = 6                          # Data Matrix dot size, in printer dots
    copies = 1
    timeout_s = 5
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEFAULT_PORT = 9100
_LABEL_KEYS = {"printer", "title", "module_size", "copies", "timeout_s"}


class LabelError(Exception):
    """The label could not be printed or the label config is wrong (message says where)."""


@dataclass(frozen=True, slots=True)
class LabelConfig:
    printer: str
    title: str = ""
    module_size: int = 6
    copies: int = 1
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class LabelData:
    serial: str
    device_id: str
    sku: str = ""


def _field_text(text: str) -> str:
    """Field data safe inside ``^FH_^FD...^FS``: ZPL's command characters hex-escaped."""
    out = []
    for ch in text:
        if ch in "^~_" or ord(ch) < 0x20:
            out.append(f"_{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


def label_payload(data: LabelData) -> str:
    """What the Data Matrix encodes: ``SERIAL;DEVICEID``."""
    return f"{data.serial};{data.device_id}"


def render_zpl(data: LabelData, config: LabelConfig) -> bytes:
    """The label as ZPL II bytes (UTF-8); pure, so a test can compare it exactly."""
    lines = [
        "^XA",
        "^CI28",
        f"^FO20,20^BXN,{config.module_size},200^FH_^FD{_field_text(label_payload(data))}^FS",
    ]
    y = 20
    texts = [(config.title, 30)] if config.title else []
    texts += [(f"SN {data.serial}", 26), (f"ID {data.device_id}", 22)]
    if data.sku:
        texts.append((f"SKU {data.sku}", 22))
    for text, height in texts:
        lines.append(f"^FO200,{y}^A0N,{height},{height}^FH_^FD{_field_text(text)}^FS")
        y += height + 10
    if config.copies > 1:
        lines.append(f"^PQ{config.copies}")
    lines.append("^XZ")
    return ("\n".join(lines) + "\n").encode()


def send_label(zpl: bytes, printer: str, *, timeout_s: float = 5.0) -> str:
    """Send ``zpl`` to ``printer``; where it went (``tcp://host:port`` or the file path)."""
    kind, where = parse_printer(printer)
    if kind == "tcp":
        host, _, port = where.rpartition(":")
        _send_tcp(zpl, host.strip("[]"), int(port), timeout_s)
        return f"tcp://{where}"
    _append_file(zpl, Path(where))
    return where


def parse_printer(printer: str) -> tuple[str, str]:
    """``("tcp", "host:port")`` or ``("file", "/path")``; LabelError for anything else."""
    text = printer.strip()
    if not text:
        raise LabelError("label printer: empty (give tcp://HOST:9100 or a file path)")
    if "://" not in text:
        return "file", text
    parts = urlsplit(text)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise LabelError(f"label printer {text}: a file URL has no host (file:///path)")
        return "file", unquote(parts.path)
    if parts.scheme != "tcp":
        raise LabelError(f"label printer {text}: use tcp://HOST:PORT or file:///path")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise LabelError(f"label printer {text}: the port is not a number 1-65535") from None
    if not parts.hostname or parts.path not in ("", "/"):
        raise LabelError(f"label printer {text}: expected tcp://HOST:PORT")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return "tcp", f"{host}:{port}"


def _send_tcp(zpl: bytes, host: str, port: int, timeout_s: float) -> None:
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(zpl)
            sock.shutdown(socket.SHUT_WR)
    except TimeoutError:
        raise LabelError(f"label printer {where}: no connection within {timeout_s:g} s") from None
    except ConnectionRefusedError:
        raise LabelError(f"label printer {where}: connection refused (is it on?)") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LabelError(f"label printer {where}: {reason}") from None


def _append_file(zpl: bytes, path: Path) -> None:
    try:
        with path.open("ab") as handle:
            handle.write(zpl)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise LabelError(f"label file {path}: {exc.strerror or exc}") from None


def print_label(data: LabelData, config: LabelConfig) -> str:
    """Render and send one unit's label; where it went. LabelError names the target."""
    return send_label(render_zpl(data, config), config.printer, timeout_s=config.timeout_s)


def parse_label_config(data: object, path: str = "label") -> LabelConfig:
    """``[label]`` from tomllib's dict; LabelError whose message starts with the key path."""
    if not isinstance(data, Mapping):
        raise LabelError(f"{path}: expected a table")
    for key in data:
        if key not in _LABEL_KEYS:
            where = f"{path}.{key}" if key.isidentifier() else f"{path}.{json.dumps(key)}"
            raise LabelError(f"{where}: unknown key (known: {', '.join(sorted(_LABEL_KEYS))})")
    printer = data.get("printer")
    if not isinstance(printer, str) or not printer.strip():
        raise LabelError(f"{path}.printer: missing (tcp://HOST:9100 or a file path)")
    try:
        parse_printer(printer)
    except LabelError as exc:
        raise LabelError(f"{path}.printer: {exc}") from None
    title = data.get("title", "")
    if not isinstance(title, str):
        raise LabelError(f"{path}.title: expected a string")
    module = _int(data, "module_size", path, 6, 1, 12)
    copies = _int(data, "copies", path, 1, 1, 99)
    timeout = data.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise LabelError(f"{path}.timeout_s: expected a number of seconds above 0")
    return LabelConfig(printer.strip(), title, module, copies, float(timeout))


def _int(data: Mapping[str, object], key: str, path: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LabelError(f"{path}.{key}: expected a whole number {low}..{high}, got {value!r}")
    return value

"""The ``--state FILE`` of the local cloud: one JSON document, written atomically, read warily.

Saving writes a temporary file in the same folder, fsyncs it and renames it over
the old one (:func:`trayline.durable.write_atomically`), so a killed server leaves
either the old or the new file, never half of one. The file holds tokens, so it
is created 0600.

Loading checks every record against its dataclass before it is used: the right
JSON type for every field, text that is valid Unicode (no lone surrogates), a
known product for group and membership links. A bad record (a hand edit, or a
file written by an older emulator that stored a lone surrogate) is skipped and
named in :attr:`EmulatorState.load_problems` instead of being loaded: one bad
device must not make every later listing answer 500.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, TypeVar

from trayline.durable import write_atomically
from trayline.particle.emulator.config import EmulatorConfig
from trayline.particle.emulator.errors import CloudError
from trayline.particle.emulator.records import Device, Group, Product, Sim, Token, plain
from trayline.particle.emulator.state import EmulatorState

__all__ = [
    "STATE_FORMAT",
    "STATE_VERSION",
    "load_state",
    "save_state",
    "to_file_data",
    "write_file_data",
]

STATE_FORMAT = "trayline-cloud-state"
STATE_VERSION = 1
R = TypeVar("R")


def to_file_data(state: EmulatorState) -> dict[str, Any]:
    data = {"format": STATE_FORMAT, "version": STATE_VERSION, **state.snapshot()}
    data["tokens"] = [plain(t) for t in state.tokens.values()]
    return data


def save_state(state: EmulatorState, path: Path) -> None:
    """Write atomically: temp file in the same folder, fsync, rename over ``path``."""
    write_file_data(path, to_file_data(state))


def write_file_data(path: Path, data: dict[str, Any]) -> None:
    """Encode and write what :func:`to_file_data` took (safe to run in a worker thread:
    ``data`` is a copy, the state is not touched)."""
    payload = json.dumps(data, indent=1, ensure_ascii=False)
    write_atomically(path, payload.encode("utf-8"))


def load_state(
    path: Path, seed: int | None = None, config: EmulatorConfig | None = None
) -> EmulatorState:
    """Read a file written by :func:`save_state` (``ValueError`` if it is not one).

    Records that fail their checks are left out and listed in ``load_problems``.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a trayline cloud state file")
    state = EmulatorState(seed, config)
    problems = state.load_problems
    for where, product in _records(data, "products", Product, problems):
        try:
            state.add_product(**plain(product))
        except CloudError as exc:
            problems.append(f"{where}: {exc.body.get('error')}")
    for where, device in _records(data, "devices", Device, problems):
        _load_device(state, where, device, problems)
    for _where, group in _records(data, "groups", Group, problems):
        if group.product_id in state.products:
            state.groups[group.product_id][group.name] = group
            state.group_members.setdefault((group.product_id, group.name), {})
    for _where, sim in _records(data, "sims", Sim, problems):
        state.sims[sim.iccid] = sim
    for _where, token in _records(data, "tokens", Token, problems):
        state.tokens[token.token] = token
    state.version = 0
    return state


def _load_device(state: EmulatorState, where: str, device: Device, problems: list[str]) -> None:
    clash = (
        device.id in state.devices
        or device.serial_number in state.by_serial
        or device.iccid in state.by_iccid
        or device.imei in state.by_imei
    )
    if clash:
        problems.append(f"{where}: an earlier device has the same ID, serial, ICCID or IMEI")
        return
    if device.product_id is not None and device.product_id not in state.products:
        problems.append(f"{where}: product {device.product_id} does not exist; loaded in none")
        device.product_id = None
        device.groups = []
    state.index(device)
    if device.product_id is not None:
        state.product_devices[device.product_id][device.id] = None
        for name in device.groups:
            state.group_members.setdefault((device.product_id, name), {})[device.id] = None


def _records(
    data: dict[str, Any], key: str, cls: type[R], problems: list[str]
) -> list[tuple[str, R]]:
    """The valid records of one list in the file, each with its ``key[index]`` name."""
    raw_list = data.get(key, [])
    if not isinstance(raw_list, list):
        problems.append(f"{key}: not a list; ignored")
        return []
    good: list[tuple[str, R]] = []
    for index, raw in enumerate(raw_list):
        where = f"{key}[{index}]"
        problem = _check_record(cls, raw)
        if problem:
            problems.append(f"{where}: {problem}; skipped")
            continue
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        good.append((where, cls(**{k: v for k, v in raw.items() if k in known})))
    return good


def _check_record(cls: type[Any], raw: object) -> str | None:
    """Why ``raw`` cannot become a ``cls``, or ``None`` if it can."""
    if not isinstance(raw, dict):
        return "not an object"
    hints = typing.get_type_hints(cls)
    for spec in fields(cls):
        if spec.name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                return f"{spec.name} is missing"
            continue
        if not _fits(raw[spec.name], hints[spec.name]):
            return f"{spec.name} is not a valid {_type_name(hints[spec.name])}"
    return None


def _fits(value: object, hint: Any) -> bool:
    """Whether a JSON value has the type a record field declares (bool is not an int)."""
    if isinstance(hint, types.UnionType):
        return any(_fits(value, part) for part in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str) and _valid_text(value)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    return False


def _valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        return False
    return True


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")

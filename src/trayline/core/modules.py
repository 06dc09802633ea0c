"""Particle firmware module binaries: find the prefix, read prefix and suffix, check integrity.

Every piece of Particle firmware — bootloader, SoftDevice, system parts, the
user's application, the Tracker's ESP32 NCP image — is a *module*: the raw
binary the linker produced, with a 24-byte prefix (``module_info_t``) that says
where it goes in flash, what it is, which version it is and what it needs, and
a suffix at the end (product id/version, SHA-256, suffix size) followed by a
big-endian CRC-32 of everything before it. A line that flashes thousands of
units decides everything from these few bytes, so this module reads them
exactly as Particle's own parser (``binary-version-reader``) does and adds the
checks the line needs:

* the prefix is not always at offset 0 (vector tables come first on some
  MCUs); :func:`find_prefix` tries the known offsets, then scores every
  4-byte offset below 8 KiB like the reference parser does;
* the CRC-32 is the integrity check for every module; the SHA-256 is checked
  too, but only as information for radio-stack and NCP modules, whose SHA
  field is not computed by the usual rule (spec §1.5);
* unknown platform and function codes are reported as unknown, not errors;
  empty, truncated and non-module files raise :class:`ModuleError` with a
  message a person can act on.

Pure: :func:`parse_module` takes ``bytes`` and never touches a file.
Facts: shared/spec/device-side.md §1.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from trayline.core.platforms import MODULE_PLATFORM_IDS, platform_name
from trayline.core.versions import SemVer, device_os_for_system_module, device_os_line

__all__ = [
    "MIN_SUFFIX_SIZE",
    "PREFIX_SIZE",
    "Dependency",
    "Extension",
    "ExtensionType",
    "Module",
    "ModuleError",
    "ModuleFlag",
    "ModuleFunction",
    "find_prefix",
    "function_name",
    "parse_module",
]

PREFIX_SIZE = 24
"""``sizeof(module_info_t)``."""

MIN_SUFFIX_SIZE = 36
"""``sizeof(module_info_suffix_t)``: reserved, SHA-256 and the size field."""

_PRODUCT_SUFFIX_SIZE = MIN_SUFFIX_SIZE + 4
_MAX_PREFIX_OFFSET = 8 * 1024
_PREFERRED_OFFSETS = (0, 0x200, 0x184, 0xC0, 0x10C)
_PREFIX = struct.Struct("<IIBBHHBBBBHBBH")
_U16 = struct.Struct("<H")
_SUFFIX_TAIL = struct.Struct("<HHH32sH")  # product id, product version, reserved, sha, size


class ModuleFunction(IntEnum):
    """``module_function`` codes (device-os ``MOD_FUNC_*``)."""

    NONE = 0
    RESOURCE = 1
    BOOTLOADER = 2
    MONO_FIRMWARE = 3
    SYSTEM_PART = 4
    USER_PART = 5
    SETTINGS = 6
    NCP_FIRMWARE = 7
    RADIO_STACK = 8
    ASSET = 9


_FUNCTION_NAMES = {
    ModuleFunction.NONE: "none",
    ModuleFunction.RESOURCE: "resource",
    ModuleFunction.BOOTLOADER: "bootloader",
    ModuleFunction.MONO_FIRMWARE: "monolithic firmware",
    ModuleFunction.SYSTEM_PART: "system part",
    ModuleFunction.USER_PART: "user part",
    ModuleFunction.SETTINGS: "settings",
    ModuleFunction.NCP_FIRMWARE: "NCP firmware",
    ModuleFunction.RADIO_STACK: "radio stack",
    ModuleFunction.ASSET: "asset",
}
_KNOWN_FUNCTIONS = frozenset(int(f) for f in ModuleFunction)


def function_name(code: int) -> str | None:
    """``"system part"`` for 4; ``None`` for a code Device OS does not define."""
    return _FUNCTION_NAMES.get(ModuleFunction(code)) if code in _KNOWN_FUNCTIONS else None


class ModuleFlag(IntFlag):
    """``module_info_flags_t``."""

    DROP_MODULE_INFO = 0x01
    COMPRESSED = 0x02
    COMBINED = 0x04
    ENCRYPTED = 0x08
    PREFIX_EXTENSIONS = 0x10


_ALL_FLAGS = 0x1F


class ExtensionType(IntEnum):
    """TLV extension types that may follow the prefix or precede the suffix."""

    END = 0x0000
    PRODUCT_DATA = 0x0001
    DYNAMIC_LOCATION = 0x0002
    DEPENDENCY = 0x0003
    HASH = 0x0010
    NAME = 0x0011
    ASSET_DEPENDENCY = 0x0012
    SECURITY_MODE = 0x0013
    ASSET_TYPE = 0x0014


_INVALID_EXTENSION = 0xFFFF
_KNOWN_EXTENSIONS = frozenset(int(t) for t in ExtensionType)


class ModuleError(ValueError):
    """The bytes are not a readable module: empty, truncated, or not a Particle module."""


@dataclass(frozen=True, slots=True)
class Dependency:
    """A module this one needs installed, at ``version`` or later; function 0 means none."""

    function: int
    index: int
    version: int

    @property
    def is_none(self) -> bool:
        return self.function == ModuleFunction.NONE

    @property
    def key(self) -> tuple[int, int]:
        return (self.function, self.index)

    def to_dict(self) -> dict[str, int]:
        return {
            "module_function": self.function,
            "module_index": self.index,
            "module_version": self.version,
        }

    def describe(self) -> str:
        if self.is_none:
            return "none"
        name = function_name(self.function) or f"unknown function {self.function}"
        text = f"{name} {self.index} >= {self.version}"
        if self.function == ModuleFunction.SYSTEM_PART:
            known = device_os_for_system_module(self.version)
            text += f" (Device OS {known or device_os_line(self.version)})"
        return text


@dataclass(frozen=True, slots=True)
class Extension:
    """One TLV extension: ``type``, where it starts in the file, its length and raw bytes."""

    type: int
    offset: int
    length: int
    data: bytes

    @property
    def type_name(self) -> str:
        if self.type in _KNOWN_EXTENSIONS:
            return ExtensionType(self.type).name.lower()
        return "unknown"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "type_name": self.type_name,
            "offset": self.offset,
            "length": self.length,
        }
        body = self.data[4:]
        if self.type == ExtensionType.ASSET_DEPENDENCY and len(body) >= 2:
            hash_len = body[1]
            out["hash_type"] = body[0]
            out["hash"] = body[2 : 2 + hash_len].hex()
            out["name"] = body[2 + hash_len :].decode("utf-8", "replace")
        elif self.type == ExtensionType.NAME:
            out["name"] = body.decode("utf-8", "replace")
        elif self.type == ExtensionType.HASH and len(body) >= 2:
            out["hash_type"] = body[0]
            out["hash"] = body[2:].hex()
        elif self.type == ExtensionType.SECURITY_MODE and body:
            out["security_mode"] = body[0]
        return out


@dataclass(frozen=True, slots=True)
class Module:
    """Everything a module's own bytes say about it, plus the integrity checks' results."""

    file_size: int
    prefix_offset: int
    prefix_size: int
    start_address: int
    end_address: int
    mcu_target: int
    flags: int
    version: int
    platform_id: int
    function: int
    index: int
    dependency: Dependency
    dependency2: Dependency
    suffix_size: int
    product_id: int | None
    product_version: int | None
    sha256: str
    sha256_actual: str
    stored_crc: str
    actual_crc: str
    extensions: tuple[Extension, ...] = ()

    @property
    def key(self) -> tuple[int, int]:
        """``(function, index)``: what a dependency names and what a device reports."""
        return (self.function, self.index)

    @property
    def crc_ok(self) -> bool:
        return self.stored_crc == self.actual_crc

    @property
    def sha256_ok(self) -> bool:
        return self.sha256 == self.sha256_actual

    @property
    def sha256_authoritative(self) -> bool:
        """False for radio-stack and NCP modules, whose SHA field is not the usual digest."""
        return self.function not in (ModuleFunction.RADIO_STACK, ModuleFunction.NCP_FIRMWARE)

    @property
    def integrity_ok(self) -> bool:
        """CRC matches, and the SHA-256 too where it is meaningful."""
        return self.crc_ok and (self.sha256_ok or not self.sha256_authoritative)

    @property
    def drop_module_info(self) -> bool:
        return bool(self.flags & ModuleFlag.DROP_MODULE_INFO)

    @property
    def function_name(self) -> str | None:
        return function_name(self.function)

    @property
    def platform_name(self) -> str | None:
        return platform_name(self.platform_id)

    @property
    def device_os(self) -> SemVer | None:
        """The Device OS release of a system part, when the version table knows it."""
        if self.function != ModuleFunction.SYSTEM_PART:
            return None
        return device_os_for_system_module(self.version)

    @property
    def system_dependency(self) -> Dependency | None:
        """The dependency on a system part (what a user part was built against), if any."""
        for dep in (self.dependency, self.dependency2):
            if dep.function == ModuleFunction.SYSTEM_PART:
                return dep
        return None

    @property
    def dependencies(self) -> tuple[Dependency, ...]:
        return tuple(d for d in (self.dependency, self.dependency2) if not d.is_none)

    @property
    def flag_names(self) -> list[str]:
        names = [f.name.lower() for f in ModuleFlag if self.flags & f and f.name]
        if self.flags & ~_ALL_FLAGS:
            names.append(f"unknown 0x{self.flags & ~_ALL_FLAGS:02x}")
        return names

    def label(self) -> str:
        """``system part 1 v4005`` — how messages name a module."""
        name = self.function_name or f"unknown function {self.function}"
        return f"{name} {self.index} v{self.version}"

    def flash_image(self, data: bytes) -> bytes:
        """The bytes written at :attr:`start_address`: the file, minus the prefix if flagged.

        A radio-stack module carries DROP_MODULE_INFO: its prefix is for the
        host only and the SoftDevice data starts right after it (spec §1.1, §2.5).
        """
        if not self.drop_module_info:
            return data
        start = self.prefix_offset
        return data[:start] + data[start + self.prefix_size :]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``trayline firmware inspect --json`` (reference field names)."""
        system_dep = self.system_dependency
        needs = device_os_for_system_module(system_dep.version) if system_dep else None
        return {
            "platform_id": self.platform_id,
            "platform_name": self.platform_name or "unknown",
            "module_function": self.function,
            "module_function_name": self.function_name or "unknown",
            "module_index": self.index,
            "module_version": self.version,
            "device_os": str(self.device_os) if self.device_os else None,
            "requires_device_os": str(needs) if needs else None,
            "module_start_address": self.start_address,
            "module_end_address": self.end_address,
            "mcu_target": self.mcu_target,
            "flags": self.flags,
            "flag_names": self.flag_names,
            "prefix_offset": self.prefix_offset,
            "prefix_size": self.prefix_size,
            "dependency": self.dependency.to_dict(),
            "dependency2": self.dependency2.to_dict(),
            "suffix_size": self.suffix_size,
            "product_id": -1 if self.product_id is None else self.product_id,
            "product_version": -1 if self.product_version is None else self.product_version,
            "sha256": self.sha256,
            "sha256_ok": self.sha256_ok,
            "sha256_authoritative": self.sha256_authoritative,
            "crc_ok": self.crc_ok,
            "stored_crc": self.stored_crc,
            "actual_crc": self.actual_crc,
            "file_size": self.file_size,
            "extensions": [e.to_dict() for e in self.extensions],
        }


# -- prefix search ---------------------------------------------------------------------


def _score(data: bytes | memoryview, offset: int, *, require_length: bool = True) -> int:
    """binary-version-reader's ``_validateModulePrefix`` score: 0 = invalid, 7 = certain."""
    if offset + PREFIX_SIZE > len(data):
        return 0
    start, end, _mcu, flags, _v, platform, func, _i, d1f, d1i, d1v, d2f, d2i, d2v = (
        _PREFIX.unpack_from(data, offset)
    )
    if end <= start or func == 0:
        return 0
    expected = end - start + 4
    if require_length and len(data) < expected:
        return 0
    if (d1f == 0 and (d1i or d1v)) or (d2f == 0 and (d2i or d2v)):
        return 0
    score: int = 1
    score += platform in MODULE_PLATFORM_IDS
    score += func in _KNOWN_FUNCTIONS
    score += d1f in _KNOWN_FUNCTIONS
    score += d2f in _KNOWN_FUNCTIONS
    score += len(data) == expected
    score += (flags & ~_ALL_FLAGS) == 0
    return score


def find_prefix(data: bytes | memoryview) -> tuple[int, int]:
    """``(offset, score)`` of the most likely module prefix; score 0 means none was found.

    The preferred offsets come first (0; 0x200 after an nRF52840 vector table;
    0x184 after an STM32F2 one; 0xC0; 0x10C for the Core) and a perfect score
    there returns at once, so a normal module costs five struct unpacks. Only
    when none is perfect does it score every 4-byte offset up to 8 KiB, keeping
    the first best, exactly like the reference parser.
    """
    best_offset, best_score = 0, 0
    for offset in _PREFERRED_OFFSETS:
        score = _score(data, offset)
        if score >= 7:
            return offset, score
        if score > best_score:
            best_offset, best_score = offset, score
    last = min(_MAX_PREFIX_OFFSET, len(data) - MIN_SUFFIX_SIZE - PREFIX_SIZE - 4)
    for offset in range(4, last + 1, 4):
        if offset in _PREFERRED_OFFSETS:
            continue
        score = _score(data, offset)
        if score >= 7:
            return offset, score
        if score > best_score:
            best_offset, best_score = offset, score
    return best_offset, best_score


def _truncation(data: bytes | memoryview) -> tuple[int, str]:
    """If a preferred offset holds a prefix that only fails for the file being short,
    its score and a message saying how short; ``(0, "")`` otherwise."""
    for offset in _PREFERRED_OFFSETS:
        score = _score(data, offset, require_length=False)
        if score >= 5:
            start, end = struct.unpack_from("<II", data, offset)
            return score, (
                f"truncated: the module prefix at offset {offset:#x} says the module is "
                f"{end - start + 4} bytes, but the file has {len(data)}"
            )
    return 0, ""


# -- extensions ------------------------------------------------------------------------


def _read_extension(data: bytes | memoryview, idx: int, base: int = 0) -> Extension | None:
    """One TLV at ``idx``, or ``None`` at an INVALID (0xFFFF) marker or past the end."""
    if idx + 4 > len(data):
        return None
    ext_type, length = struct.unpack_from("<HH", data, idx)
    if ext_type == _INVALID_EXTENSION or idx + length > len(data):
        return None
    return Extension(ext_type, base + idx, length, bytes(data[idx : idx + length]))


def _prefix_extensions(view: memoryview, offset: int) -> tuple[tuple[Extension, ...], int]:
    """Extensions after the 24-byte prefix (flag PREFIX_EXTENSIONS); returns them and the size."""
    region = view[offset:]
    found: list[Extension] = []
    pos = PREFIX_SIZE
    while pos < len(region) - MIN_SUFFIX_SIZE - 4:
        ext = _read_extension(region, pos, base=offset)
        if ext is None:
            break
        found.append(ext)
        pos += ext.length
        if ext.length == 0:
            raise ModuleError(f"prefix extension at offset {offset + pos:#x} has length 0")
        if ext.type == ExtensionType.END:
            break
    if not found or found[-1].type != ExtensionType.END:
        raise ModuleError("prefix extensions do not end with an END extension")
    return tuple(found), pos


def _suffix_extensions(view: memoryview, suffix_size: int) -> tuple[Extension, ...]:
    """Extensions between the module body and the base suffix (suffix size > 40)."""
    found: list[Extension] = []
    if suffix_size <= _PRODUCT_SUFFIX_SIZE:
        return ()
    idx = len(view) - 4 - suffix_size
    while 0 < idx < len(view) - 4 - MIN_SUFFIX_SIZE:
        ext = _read_extension(view, idx)
        if ext is None:
            break
        found.append(ext)
        if ext.length == 0:
            raise ModuleError(
                f"suffix extension at offset {idx:#x} has length 0: the suffix is corrupt "
                f"or the module predates suffixes (suffix size field says {suffix_size})"
            )
        idx += ext.length
        if ext.type == ExtensionType.END:
            break
    return tuple(found)


# -- the parser ------------------------------------------------------------------------

_MIN_FILE = PREFIX_SIZE + MIN_SUFFIX_SIZE + 4


def parse_module(data: bytes) -> Module:
    """Read a module binary. Raises :class:`ModuleError` for empty, short or non-module data.

    A CRC or SHA mismatch is *not* an error here: the result says so
    (:attr:`Module.crc_ok`), because inspecting a damaged file is exactly when a
    person wants to see what is in it. Refusing it is the bundle's job.
    """
    size = len(data)
    if size == 0:
        raise ModuleError("the file is empty")
    if size < _MIN_FILE:
        raise ModuleError(
            f"too short to be a module: {size} bytes (a prefix, suffix and CRC need {_MIN_FILE})"
        )
    view = memoryview(data)
    offset, score = find_prefix(view)
    if score < 7:
        # A chance match deeper in a cut-off file must not hide the real prefix.
        short_score, message = _truncation(view)
        if short_score > score:
            raise ModuleError(message)
    if score == 0:
        raise ModuleError(
            "not a Particle firmware module: no module prefix at offsets 0, 0x200, 0x184, "
            "0xC0, 0x10C or any 4-byte offset below 8 KiB"
        )
    (start, end, mcu, flags, version, platform, func, index, d1f, d1i, d1v, d2f, d2i, d2v) = (
        _PREFIX.unpack_from(view, offset)
    )
    extensions: tuple[Extension, ...] = ()
    prefix_size = PREFIX_SIZE
    if flags & ModuleFlag.PREFIX_EXTENSIONS:
        extensions, prefix_size = _prefix_extensions(view, offset)

    product_id, product_version, _reserved, sha, suffix_size = _SUFFIX_TAIL.unpack_from(
        view, size - 4 - 2 - 32 - 2 - 4
    )
    extensions += _suffix_extensions(view, suffix_size)
    has_product = suffix_size >= _PRODUCT_SUFFIX_SIZE

    stored_crc = bytes(view[size - 4 :]).hex()
    actual_crc = zlib.crc32(view[: size - 4]).to_bytes(4, "big").hex()
    sha_actual = hashlib.sha256(view[: size - 38]).hexdigest()
    return Module(
        file_size=size,
        prefix_offset=offset,
        prefix_size=prefix_size,
        start_address=start,
        end_address=end,
        mcu_target=mcu,
        flags=flags,
        version=version,
        platform_id=platform,
        function=func,
        index=index,
        dependency=Dependency(d1f, d1i, d1v),
        dependency2=Dependency(d2f, d2i, d2v),
        suffix_size=suffix_size,
        product_id=product_id if has_product else None,
        product_version=product_version if has_product else None,
        sha256=sha.hex(),
        sha256_actual=sha_actual,
        stored_crc=stored_crc,
        actual_crc=actual_crc,
        extensions=extensions,
    )

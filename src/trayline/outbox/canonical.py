"""Canonical JSON: the one byte form a manifest is signed and written in.

Sorted keys, no insignificant whitespace, UTF-8 (non-ASCII characters as
themselves, not ``\\u`` escapes), no NaN or infinity. Because the manifest file
*is* the canonical form of its content plus one newline, a reader can insist
on it: any changed byte either changes the content (and the signature fails)
or breaks the form (and the file is refused). There is no second spelling of a
manifest that verifies.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DuplicateKey", "canonical", "strict_loads"]


class DuplicateKey(ValueError):
    """A JSON object names the same key twice (two readers could see two documents)."""


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"key {key!r} appears twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def strict_loads(data: bytes) -> Any:
    """Parse UTF-8 JSON refusing duplicate keys and NaN/Infinity (ValueError says why)."""
    text = data.decode("utf-8")
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)

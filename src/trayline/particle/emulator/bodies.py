"""Request bodies and query strings into typed fields, or a 400 in the cloud's error shape.

Particle accepts JSON, ``application/x-www-form-urlencoded`` (``key[]`` arrays)
and multipart bodies on almost every endpoint (spec §0), so every route reads
its input through :func:`read_fields`, which gives the same :class:`Fields`
whatever the encoding. Then each route asks for what it needs by type:
:meth:`Fields.text`, :meth:`Fields.texts`, :meth:`Fields.flag`,
:meth:`Fields.integer`. A value of the wrong JSON type is a 400 naming the field,
never ``str()`` of a list stored as a device name.

Text is held to what the real cloud (a JavaScript service that answers JSON)
can store: valid UTF-8 with no lone surrogates. Starlette decodes bodies and
queries leniently (``errors="replace"``, a latin-1 fallback for multipart), so
this module parses them itself, strictly: invalid UTF-8 in a body, a percent
escape or a file, and a ``"\\ud800"`` JSON escape, are each a 400. JSON's
``NaN``/``Infinity`` and nesting deep enough to exhaust the parser are 400s too.
The body size limit is enforced before any of this, by the front door.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import parse_qsl

from python_multipart import create_form_parser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File
from starlette.requests import Request

from trayline.particle.emulator.errors import bad_request

__all__ = ["Fields", "check_text", "query_flag", "query_int", "read_fields", "valid_query"]

_MAX_FORM_FIELDS = 100_000
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off", "none", "null"}
NOT_UTF8 = "Request body is not valid UTF-8"


def check_text(text: str, what: str) -> str:
    """``text`` if it is valid Unicode (no lone surrogates), else a 400 naming ``what``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{what} contains a lone surrogate, which is not valid text") from None
    return text


class Fields:
    """The fields of one request body, read by type; a wrong type is a 400 naming the field."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def present(self, *names: str) -> bool:
        return any(name in self._data for name in names)

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def text(self, name: str, *, blank_is_none: bool = False) -> str | None:
        """A text field; absent or ``null`` is ``None`` (and ``""`` too, if asked)."""
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise bad_request(f"{name} must be text, got {_json_type(value)}")
        return None if blank_is_none and value == "" else value

    def texts(self, name: str) -> list[str]:
        """A list of text (``key[]`` form arrays, JSON arrays); one text is a list of one."""
        value = self._data.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) or v is None for v in value):
            return [v for v in value if v is not None]
        raise bad_request(f"{name} must be text or a list of text, got {_json_type(value)}")

    def lines(self, *names: str) -> list[str]:
        """Identifiers from text/list fields and uploaded files: stripped, blank lines dropped.

        Files (and any text) may hold one identifier per line, LF or CRLF.
        """
        found = [
            line.strip() for name in names for t in self.texts(name) for line in t.splitlines()
        ]
        return [line for line in found if line]

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean: JSON true/false (or 0/1), or form text like ``true``/``false``."""
        value = self._data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad_request(f"{name} must be true or false, got {_short(value)}")

    def integer(self, name: str, low: int, high: int) -> int | None:
        """A whole number in ``low..high``; ``null``, ``""`` and ``"null"`` are ``None``."""
        value = self._data.get(name)
        if value is None or value in ("", "null"):
            return None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad_request(f"{name} must be a whole number from {low} to {high}")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        """An object (JSON, or in a form a JSON text); absent is ``{}``."""
        value = self._data.get(name)
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value, parse_constant=_refuse_constant)
            except (ValueError, RecursionError):
                raise bad_request(f"{name} must be a JSON object") from None
            _check_tree(value)
        if not isinstance(value, dict):
            raise bad_request(f"{name} must be an object")
        return value


async def read_fields(request: Request) -> Fields:
    """A request body as :class:`Fields`, whatever its encoding; an empty body has none.

    Form and multipart fields are text; keys ending in ``[]`` (and repeated keys)
    become lists; an uploaded file becomes its text. A JSON body must be an object.
    """
    ctype = request.headers.get("content-type", "")
    raw = await request.body()
    if ctype.startswith("application/x-www-form-urlencoded"):
        return Fields(_collect(_urlencoded(raw)))
    if ctype.startswith("multipart/form-data"):
        return Fields(_collect(_multipart(ctype, raw)))
    if not raw.strip():
        return Fields({})
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise bad_request(NOT_UTF8) from None
    except (ValueError, RecursionError):
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    _check_tree(data)
    return Fields(data)


def valid_query(query_string: bytes) -> list[tuple[str, str]]:
    """The query's pairs, decoded strictly: invalid UTF-8 (raw or %-escaped) is a 400."""
    return _pairs(
        query_string,
        not_utf8="The query string is not valid UTF-8",
        too_many="The query string has too many fields",
    )


def query_int(request: Request, *names: str, default: int) -> int:
    """A positive whole number from the first of ``names`` present in the query."""
    for name in names:
        raw = request.query_params.get(name)
        if raw is not None and raw != "":
            try:
                value = int(raw)
            except ValueError:
                raise bad_request(f"{name} must be a number") from None
            if value < 1:
                raise bad_request(f"{name} must be at least 1")
            return value
    return default


def query_flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    return None if raw is None else raw.strip().lower() in _TRUE


# --------------------------------------------------------------------------- decoding
def _urlencoded(raw: bytes) -> list[tuple[str, str]]:
    return _pairs(raw, not_utf8=NOT_UTF8, too_many="The form has too many fields")


def _pairs(raw: bytes, *, not_utf8: str, too_many: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` decoded strictly (a query string or a form body): each refusal is a 400.

    Invalid UTF-8, raw or %-escaped, and more than ``_MAX_FORM_FIELDS`` pairs are
    refused with the caller's sentence, which names what was sent.
    """
    try:
        return parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise bad_request(not_utf8) from None
    except ValueError:
        raise bad_request(too_many) from None


def _multipart(ctype: str, raw: bytes) -> list[tuple[str, str]]:
    """Multipart fields and files as (name, text) pairs, every byte decoded strictly."""
    parts: list[tuple[bytes, bytes]] = []

    def on_field(field: Field) -> None:
        parts.append((field.field_name or b"", field.value or b""))

    def on_file(file: File) -> None:
        handle = file.file_object
        handle.seek(0)
        parts.append((file.field_name or b"", handle.read()))

    config = {"MAX_MEMORY_FILE_SIZE": len(raw) + 1}  # never spill to disk
    try:
        parser = create_form_parser(
            {"Content-Type": ctype.encode("latin-1")}, on_field, on_file, config
        )
        parser.write(raw)
        parser.finalize()
    except (FormParserError, ValueError):
        raise bad_request("Request body is not valid multipart/form-data") from None
    try:
        return [(name.decode("utf-8"), value.decode("utf-8")) for name, value in parts]
    except UnicodeDecodeError:
        raise bad_request(NOT_UTF8) from None


def _collect(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, text in pairs:
        if key.endswith("[]"):
            existing = fields.setdefault(key[:-2], [])
            if isinstance(existing, list):
                existing.append(text)
            else:
                fields[key[:-2]] = [existing, text]
        elif key in fields:
            existing = fields[key]
            fields[key] = [*existing, text] if isinstance(existing, list) else [existing, text]
        else:
            fields[key] = text
    return fields


def _check_tree(data: Any) -> None:
    """Refuse a JSON value holding, anywhere (keys too), text with a lone surrogate."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item, "Request body")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "text"


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:40] + "…"

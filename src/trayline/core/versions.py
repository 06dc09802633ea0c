"""Device OS versions as comparable values.

Device OS follows semantic versioning with pre-release tags (``4.0.1``,
``5.6.0-rc.1``, ``3.1.0-alpha.2``). Lines compare them constantly: the SKU's
minimum, the test bundle against the production bundle, what a device reports
against what the bundle carries. :class:`SemVer` orders them the way semver
does (a pre-release sorts before its release).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = ["InvalidVersion", "SemVer"]

_SEMVER = re.compile(
    r"v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)


class InvalidVersion(ValueError):
    """Text that is not a Device OS version."""


def _pre_key(pre: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for item in pre.split("."):
        parts.append((0, int(item)) if item.isdigit() else (1, item))
    return tuple(parts)


@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.fullmatch(text.strip())
        if not match:
            raise InvalidVersion(
                f"{text!r} is not a Device OS version (expected e.g. 4.0.1 or 5.6.0-rc.1)"
            )
        return cls(
            int(match["major"]), int(match["minor"]), int(match["patch"]), match["pre"] or ""
        )

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, _pre_key(self.pre))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.pre}" if self.pre else core

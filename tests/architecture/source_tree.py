"""Reading trayline's own source for the house-rule tests: modules, their imports, their sizes.

Shared by test_layers.py and test_sizes.py. Works from the files (``ast``), never by
importing them, so a module that would fail to import is still checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = SRC / "trayline"


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    """Dotted name, ``trayline.store.audit`` (a package is its ``__init__``)."""
    path: Path
    tree: ast.Module
    is_package: bool

    @property
    def where(self) -> str:
        return str(self.path.relative_to(ROOT))


@dataclass(frozen=True, slots=True)
class Import:
    target: str
    """The dotted module imported (``from trayline import settings`` → ``trayline.settings``)."""
    line: int


def modules() -> Iterator[Module]:
    """Every ``.py`` file under src/trayline, parsed."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        yield Module(name, path, tree, is_package)


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (SRC / relative).with_suffix(".py").exists() or (SRC / relative / "__init__.py").exists()


def imports(module: Module) -> Iterator[Import]:
    """Every module ``module`` imports, absolute or relative, anywhere in the file."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                # `from trayline import settings` imports the module trayline.settings
                yield Import(candidate if _is_module(candidate) else base, node.lineno)

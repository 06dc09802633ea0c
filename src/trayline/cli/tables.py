"""Tables that a person can read in 80 columns: the house style for every CLI table.

Most places a table is read at a contract manufacturer are narrow: a pipe into
``less`` or a log (Rich assumes 80 columns), a terminal split beside a camera
feed. Rich fits a table to the width by squeezing every column, which turned
24-character device IDs and dates into ``6a1f…``. The rules here:

* a table shows, by default, only the columns a person needs to act, and the
  identifying ones are ``no_wrap`` with a minimum width, so an ID is never cut;
* free text (a failure reason) is the one column that gives way: it wraps;
* ``--wide`` shows every column at its natural width, however wide that is
  (pipe it into ``less -S``);
* a light box (no vertical rules) leaves the width to the data.

JSON and CSV output never go through here: they are for programs and keep
every field.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, JustifyMethod
from rich.measure import Measurement
from rich.table import Table

from trayline.cli.console import out

__all__ = ["fixed_column", "id_column", "new_table", "print_table", "text_column"]

_MEASURE_WIDTH = 100_000


def new_table(title: str | None = None) -> Table:
    """An empty table in the house style: a rule under the header, two spaces between columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        show_edge=False,
    )


def id_column(table: Table, header: str, width: int, *, justify: JustifyMethod = "left") -> None:
    """A column that is never cut or wrapped: identifiers, states, numbers, dates."""
    table.add_column(
        header,
        no_wrap=True,
        min_width=max(width, len(header)),
        overflow="fold",
        justify=justify,
    )


def fixed_column(table: Table, header: str, width: int) -> None:
    """A column of exactly ``width`` that wraps: short texts with a known longest case."""
    table.add_column(header, width=max(width, len(header)), overflow="fold")


def text_column(table: Table, header: str, *, min_width: int = 12) -> None:
    """The column that gives way to the others: wraps at word boundaries, long words fold."""
    table.add_column(header, overflow="fold", min_width=min_width)


def print_table(table: Table, *, wide: bool = False, console: Console | None = None) -> None:
    """Print ``table`` fitted to the terminal, or at its natural width with ``wide``."""
    target = console or out
    if not wide:
        target.print(table)
        return
    measuring = Console(width=_MEASURE_WIDTH, highlight=False)
    natural = Measurement.get(measuring, measuring.options, table).maximum
    Console(
        file=target.file,
        width=max(natural, 1),
        highlight=False,
        color_system=target.color_system,  # type: ignore[arg-type]
        force_terminal=target.is_terminal,
    ).print(table)

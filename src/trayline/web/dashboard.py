"""The line at a glance: yields by day and shift, throughput, failure Pareto, histograms, Cpk.

The store gives counts per hour (:mod:`trayline.store.dashboard`); this
module folds them into days and shifts, computes yields and capability, and
draws the charts as SVG on the server with pygal (no JavaScript, no external
script: pygal's tooltip script is switched off so the page works offline).

Drawing is most of a dashboard request's own time (pygal takes 4–10 ms a chart),
so a drawing is kept, least recently used first out, keyed by exactly what it
draws: the title, the hour labels and counts, or the histogram's bins and
limits. The data is still read at every request; only a request whose data
equals an earlier one's reuses that drawing, and a unit finishing changes a
count, so the next request draws again.

Definitions, as a quality engineer reads them:

* **final yield** — of the units that ended (``ready`` or ``failed``) in the
  period, the share that ended ``ready`` (after any retests);
* **first-pass yield** — of the first test attempts that finished in the
  period, the share that passed;
* **Cpk** — ``min(USL − mean, mean − LSL) / 3σ`` over the values in the window
  (one-sided when the measurement has one limit); below 1.33 is marginal.

Shifts are three of eight hours, UTC: A 06–14, B 14–22, C 22–06 (a C shift
belongs to the day it began). A batch is a non-unique part the units were built
with — a lot code scanned as a part, or a part's lot — named ``kind serial``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pygal
from pygal.style import Style

from trayline.station.runner import reason_class
from trayline.store.dashboard import HourCount, MeasurementSeries

__all__ = [
    "SHIFTS",
    "Capability",
    "YieldRow",
    "bar_chart",
    "capability",
    "forget_charts",
    "histogram_chart",
    "pareto",
    "shift_of",
    "units_per_hour",
    "yield_rows",
]

CHARTS_KEPT = 32
"""Drawn charts kept in memory per kind (about 15–30 KB each), least recently used dropped."""

SHIFTS = (("A", 6), ("B", 14), ("C", 22))
"""Shift name and the UTC hour it starts; each lasts until the next one starts."""

_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#000",
    foreground_subtle="#777",
    colors=("#2b6cb0", "#c53030", "#2f855a", "#b7791f"),
    font_family="sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    title_font_size=16,
    legend_font_size=13,
)


@dataclass(frozen=True, slots=True)
class YieldRow:
    period: str
    ready: int
    failed: int
    first_passed: int
    first_total: int

    @property
    def final_yield(self) -> float | None:
        done = self.ready + self.failed
        return self.ready / done if done else None

    @property
    def first_pass_yield(self) -> float | None:
        return self.first_passed / self.first_total if self.first_total else None

    def to_dict(self) -> dict[str, object]:
        return {
            "period": self.period,
            "ready": self.ready,
            "failed": self.failed,
            "final_yield": _round(self.final_yield),
            "first_attempts": self.first_total,
            "first_passed": self.first_passed,
            "first_pass_yield": _round(self.first_pass_yield),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def shift_of(hour: str) -> str:
    """``YYYY-MM-DD HH`` → ``YYYY-MM-DD A|B|C`` (a night shift belongs to the day it began)."""
    at = datetime.strptime(hour, "%Y-%m-%d %H")
    name = "C"
    for shift, start in SHIFTS:
        if start <= at.hour:
            name = shift
    if at.hour < SHIFTS[0][1]:
        at -= timedelta(days=1)
    return f"{at:%Y-%m-%d} {name}"


def yield_rows(
    outcomes: Iterable[HourCount], firsts: Iterable[HourCount], by: str = "day"
) -> list[YieldRow]:
    """Hourly counts folded into days (``by="day"``) or shifts (``by="shift"``), oldest
    first; with ``by="batch"`` the counts are per batch already and are only joined."""
    key: Callable[[str], str] = {"day": lambda h: h[:10], "shift": shift_of}.get(by, lambda h: h)
    table: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in outcomes:
        table[key(row.hour)][0 if row.outcome == "ready" else 1] += row.count
    for row in firsts:
        if row.outcome in ("pass", "fail"):
            cell = table[key(row.hour)]
            cell[3] += row.count
            if row.outcome == "pass":
                cell[2] += row.count
    return [YieldRow(k, *v) for k, v in sorted(table.items())]


def units_per_hour(outcomes: Iterable[HourCount], since: datetime, now: datetime) -> list[int]:
    """Units that ended (ready or failed) in each hour from ``since`` to ``now``, zeros included."""
    counts: dict[str, int] = defaultdict(int)
    for row in outcomes:
        counts[row.hour] += row.count
    start = since.replace(minute=0, second=0, microsecond=0)
    hours = int((now - start).total_seconds() // 3600) + 1
    return [counts[f"{start + timedelta(hours=i):%Y-%m-%d %H}"] for i in range(hours)]


def pareto(reasons: Iterable[tuple[str, int]], top: int = 10) -> list[tuple[str, int, float]]:
    """Reasons grouped as the station groups them (IDs and numbers blanked), most first,
    with the cumulative share."""
    grouped: dict[str, int] = defaultdict(int)
    for reason, count in reasons:
        grouped[reason_class(reason)] += count
    ranked = sorted(grouped.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    total = sum(grouped.values()) or 1
    out, running = [], 0
    for reason, count in ranked:
        running += count
        out.append((reason, count, running / total))
    return out


@dataclass(frozen=True, slots=True)
class Capability:
    n: int
    mean: float | None
    stdev: float | None
    cpk: float | None


def capability(series: MeasurementSeries) -> Capability:
    values = series.values
    if len(values) < 2:
        return Capability(len(values), values[0] if values else None, None, None)
    mean = math.fsum(values) / len(values)
    # the sample standard deviation in floats, two passes (statistics.stdev is exact in
    # fractions: a hundred times slower, and no different at four digits)
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    sides = []
    if series.high is not None:
        sides.append(series.high - mean)
    if series.low is not None:
        sides.append(mean - series.low)
    cpk = min(sides) / (3 * stdev) if sides and stdev > 0 else None
    return Capability(len(values), mean, stdev, cpk)


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def _svg(chart: pygal.graph.graph.Graph) -> str:
    """The chart as inline SVG without pygal's inline config script (its tooltips need a
    script from the internet; the page's CSP would block both anyway)."""
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _chart_config(chart: pygal.graph.graph.Graph, title: str) -> None:
    chart.title = title
    chart.js = []  # no external tooltip script: the page must work offline
    chart.disable_xml_declaration = True
    chart.show_legend = False


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int], height: int = 260) -> str:
    """Counts per hour as a filled line (an area) in inline SVG: a week is 168 points, which
    pygal draws in a quarter of the time of 168 bars, and reads the same.

    Drawn once per distinct (title, labels, values): see :func:`_area_svg`."""
    return _area_svg(title, tuple(labels), tuple(values), height)


@lru_cache(maxsize=CHARTS_KEPT)
def _area_svg(title: str, labels: tuple[str, ...], values: tuple[int, ...], height: int) -> str:
    """The area chart itself, kept by what it draws: the dashboard queries the counts at every
    request, and a request whose counts (and hour labels) equal an earlier one's gets the
    SVG drawn then — the same bytes pygal would draw again. A finished unit changes a count,
    so the next request draws anew."""
    chart = pygal.Line(
        style=_STYLE, height=height, width=900, x_label_rotation=0, fill=True, show_dots=False
    )
    _chart_config(chart, title)
    chart.truncate_label = -1
    step = 24 if len(labels) > 72 else 6 if len(labels) > 24 else 1
    chart.x_labels = list(labels)
    chart.x_labels_major_every = step
    chart.show_minor_x_labels = False
    chart.add("units", list(values))
    return _svg(chart)


Bin = tuple[int, float, float]
"""A histogram bar: (height, from, to)."""


def _bins(series: MeasurementSeries, count: int = 20) -> tuple[Bin, ...]:
    edges = list(series.values)
    edges += [x for x in (series.low, series.high) if x is not None]
    lo, hi = min(edges), max(edges)
    if hi == lo:
        hi = lo + 1.0
    width = (hi - lo) / count
    heights = [0] * count
    for value in series.values:
        heights[min(count - 1, int((value - lo) / width))] += 1
    return tuple((h, lo + i * width, lo + (i + 1) * width) for i, h in enumerate(heights))


def histogram_chart(series: MeasurementSeries, cap: Capability) -> str:
    """A histogram of the values with the limits drawn as red bars at LSL and USL.

    The bins are counted here at every call; the drawing is kept by its title and bins
    (:func:`_histogram_svg`), so an unchanged distribution is not drawn twice."""
    unit = f" {series.unit}" if series.unit else ""
    cpk = f"Cpk {cap.cpk:.2f}" if cap.cpk is not None else "Cpk –"
    limits = f"LSL {series.low}{unit} · USL {series.high}{unit}"
    title = f"{series.name}: n={cap.n} · {cpk} · {limits}"
    if not series.values:
        return _histogram_svg(title, (), ())
    bins = _bins(series)
    tall = max(h for h, _, _ in bins) or 1
    span = (bins[-1][2] - bins[0][1]) / 200
    marks = tuple((tall, x - span, x + span) for x in (series.low, series.high) if x is not None)
    return _histogram_svg(title, bins, marks)


@lru_cache(maxsize=CHARTS_KEPT)
def _histogram_svg(title: str, bins: tuple[Bin, ...], marks: tuple[Bin, ...]) -> str:
    chart = pygal.Histogram(style=_STYLE, height=240, width=440)
    _chart_config(chart, title)
    if bins:
        chart.add("values", list(bins))
    if marks:
        chart.add("limits", list(marks))
    return _svg(chart)


def forget_charts() -> None:
    """Drop every kept drawing (the benchmark measures the page with every chart drawn)."""
    _area_svg.cache_clear()
    _histogram_svg.cache_clear()

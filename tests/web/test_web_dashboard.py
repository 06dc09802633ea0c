"""The dashboard's arithmetic: shifts, yields folded from hours, Pareto grouping, Cpk, charts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trayline.store.dashboard import HourCount, MeasurementSeries
from trayline.web.dashboard import (
    bar_chart,
    capability,
    forget_charts,
    histogram_chart,
    pareto,
    shift_of,
    units_per_hour,
    yield_rows,
)


@pytest.mark.parametrize(
    ("hour", "shift"),
    [
        ("2026-11-25 06", "2026-11-25 A"),
        ("2026-11-25 13", "2026-11-25 A"),
        ("2026-11-25 14", "2026-11-25 B"),
        ("2026-11-25 22", "2026-11-25 C"),
        ("2026-11-26 05", "2026-11-25 C"),  # the night shift belongs to the day it began
        ("2026-11-01 00", "2026-10-31 C"),
    ],
)
def test_shifts(hour: str, shift: str) -> None:
    assert shift_of(hour) == shift


def test_yield_rows_by_day_and_shift() -> None:
    outcomes = [
        HourCount("2026-11-25 07", "ready", 8),
        HourCount("2026-11-25 07", "failed", 2),
        HourCount("2026-11-25 23", "ready", 5),
        HourCount("2026-11-26 03", "ready", 5),
    ]
    firsts = [
        HourCount("2026-11-25 07", "pass", 7),
        HourCount("2026-11-25 07", "fail", 3),
        HourCount("2026-11-25 07", "running", 4),  # not finished: not counted
    ]
    days = yield_rows(outcomes, firsts, "day")
    assert [(d.period, d.ready, d.failed) for d in days] == [
        ("2026-11-25", 13, 2),
        ("2026-11-26", 5, 0),
    ]
    assert days[0].final_yield == pytest.approx(13 / 15)
    assert days[0].first_pass_yield == pytest.approx(0.7)
    assert days[1].first_pass_yield is None
    shifts = yield_rows(outcomes, firsts, "shift")
    assert [(s.period, s.ready) for s in shifts] == [("2026-11-25 A", 8), ("2026-11-25 C", 10)]
    assert shifts[1].to_dict()["final_yield"] == 1.0


def test_units_per_hour_fills_empty_hours() -> None:
    since = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    now = datetime(2026, 11, 25, 9, 10, tzinfo=UTC)
    counts = [HourCount("2026-11-25 08", "ready", 3), HourCount("2026-11-25 08", "failed", 1)]
    assert units_per_hour(counts, since, now) == [0, 0, 4, 0]


def test_pareto_groups_reasons_that_differ_only_in_numbers() -> None:
    reasons = [
        ("power: vbat 3.1 V below 3.6 V", 3),
        ("power: vbat 3.2 V below 3.6 V", 2),
        ("radio: rssi -110 dBm below -105 dBm", 5),
    ]
    ranked = pareto(reasons)
    assert [n for _, n, _ in ranked] == [5, 5]
    assert ranked[-1][2] == pytest.approx(1.0)


def test_cpk_two_sided_one_sided_and_degenerate() -> None:
    values = (3.9, 4.0, 4.1, 4.0, 3.95, 4.05)
    both = capability(MeasurementSeries("vbat", "V", 3.6, 4.3, values))
    assert both.mean == pytest.approx(4.0)
    assert both.cpk == pytest.approx((4.3 - 4.0) / (3 * both.stdev))  # type: ignore[operator]
    low_only = capability(MeasurementSeries("rssi", "dBm", -105, None, (-80.0, -82.0, -84.0)))
    assert low_only.cpk == pytest.approx((-82 + 105) / (3 * 2.0))
    assert capability(MeasurementSeries("x", None, 0, 1, (0.5,))).cpk is None
    assert capability(MeasurementSeries("x", None, 0, 1, (0.5, 0.5))).cpk is None


def test_charts_are_inline_svg_without_external_scripts() -> None:
    svg = bar_chart("units", [f"h{i}" for i in range(30)], list(range(30)))
    series = MeasurementSeries("vbat", "V", 3.6, 4.3, (3.9, 4.0, 4.1))
    hist = histogram_chart(series, capability(series))
    for chart in (svg, hist):
        assert chart.startswith("<svg") and "<script" not in chart and "http://kozea" not in chart
    assert "Cpk" in hist and "LSL 3.6 V" in hist


def test_a_chart_is_drawn_again_only_when_what_it_draws_changes() -> None:
    labels = [f"h{i}" for i in range(30)]
    counts = list(range(30))
    first = bar_chart("units", labels, counts)
    assert bar_chart("units", list(labels), list(counts)) == first  # kept: same random id
    counts[-1] += 1
    redrawn = bar_chart("units", labels, counts)
    assert redrawn != first
    series = MeasurementSeries("vbat", "V", 3.6, 4.3, (3.9, 4.0, 4.1))
    hist = histogram_chart(series, capability(series))
    assert histogram_chart(series, capability(series)) == hist
    wider = MeasurementSeries("vbat", "V", 3.6, 4.3, (3.9, 4.0, 4.1, 4.2))
    assert "n=4" in histogram_chart(wider, capability(wider)) and "n=4" not in hist
    forget_charts()
    assert bar_chart("units", labels, counts) != redrawn  # drawn again: a new random id

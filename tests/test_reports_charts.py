"""The server-side SVG charts: scale, gaps for missing values, labels, accessibility."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from reports.charts import bar_chart, chart_for, line_chart, nice_ceiling
from reports.tables import ChartSpec, Column, Table


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [
        (0, 1),
        (-3, 1),
        (0.7, 1),
        (1, 1),
        (3, 5),
        (7, 10),
        (12, 20),
        (23, 25),
        (100, 100),
        (101, 200),
    ],
)
def test_nice_ceiling(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_a_line_chart_scales_to_the_highest_value():
    chart = line_chart("Census", ["1", "2", "3"], [("Patients", [0, 5, 10])], width=400, height=200)
    (series,) = chart.series
    ys = [y for _, y, _, _ in series.dots]
    assert ys[0] == chart.plot_bottom and ys[2] == chart.plot_top
    assert [x for x, _, _, _ in series.dots] == [chart.plot_left, 218.0, chart.plot_right]
    assert [t.value for t in chart.y_ticks] == ["0", "2.5", "5", "7.5", "10"]


def test_a_missing_value_is_a_gap_not_a_zero():
    chart = line_chart("Rate", ["a", "b", "c", "d"], [("Rate", [Decimal("10"), None, 5, 6])])
    (series,) = chart.series
    assert len(series.segments) == 2
    assert len(series.dots) == 3


def test_one_point_is_drawn_in_the_middle():
    chart = line_chart("One", ["only"], [("N", [4])], width=300)
    (series,) = chart.series
    assert series.dots[0][0] == (chart.plot_left + chart.plot_right) / 2


def test_bars_are_proportional_and_none_is_left_out():
    chart = bar_chart(
        "By service",
        ["medicine", "surgery"],
        [("Incomplete", [10, 5]), ("Delinquent", [None, 5])],
        width=600,
    )
    medicine, surgery = chart.groups
    full = chart.plot_right - chart.plot_left
    assert medicine.bars[0].width == full
    assert len(medicine.bars) == 1  # no delinquent value: no bar
    assert surgery.bars[0].width == surgery.bars[1].width == full / 2
    assert [name for name, _, _ in chart.legend] == ["Incomplete", "Delinquent"]


def test_all_zero_bars_have_a_scale():
    chart = bar_chart("Nothing", ["a"], [("N", [0])])
    assert chart.groups[0].bars[0].width == 0
    assert chart.x_ticks[-1].value == "1"


def test_chart_for_a_table():
    table = Table(
        "t",
        "Trend",
        [Column("Day"), Column("N", True)],
        [["d1", 1], ["d2", 3]],
        chart=ChartSpec("line", 0, (1,)),
    )
    assert chart_for(table).kind == "line"
    assert chart_for(Table("e", "Empty", [Column("Day")], [], chart=ChartSpec("bar"))) is None
    assert chart_for(Table("n", "No chart", [Column("Day")], [["x"]])) is None


def test_the_svg_is_accessible_and_escapes_labels():
    table = Table(
        "svc",
        "By service",
        [Column("Service"), Column("N", True)],
        [["<script>alert(1)</script>", 3]],
        chart=ChartSpec("bar"),
    )
    html = render_to_string("reports/_chart.html", {"chart": chart_for(table), "table": table})
    assert 'role="img"' in html
    assert 'aria-labelledby="c-svc-t c-svc-d"' in html
    assert '<title id="c-svc-t">By service</title>' in html
    assert "<desc" in html
    assert "<script>" not in html and "&lt;script&gt;" in html

"""Charts drawn on the server as SVG, from a table's numbers: a line chart for a trend
over time, horizontal bars for a breakdown (by service, status, type). No JavaScript and
nothing fetched from elsewhere; the template (``reports/_chart.html``) writes the
elements from the geometry computed here, with a title and a description for screen
readers, and the table with the same numbers beside it.

Values that are missing (None: nothing to divide by) are left out — a gap in a line, no
bar — rather than drawn as zero. Negative values do not occur in these statistics and
are drawn from zero as if zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from reports.tables import Table

# Colour-blind-safe (Okabe–Ito), dark enough on white for the 3:1 contrast of graphics.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8B6E00", "#56B4E9"]
MAX_POINTS = 400
LABEL_WIDTH = 170


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value - 1e-9:
            return float(candidate)
    return float(10 ** (exponent + 1))


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


@dataclass
class Tick:
    value: str
    pos: float  # y (line chart) or x (bar chart)


@dataclass
class Series:
    name: str
    colour: str
    points: str = ""  # the polyline's points, "x,y x,y"; segments split at gaps
    segments: list[str] = field(default_factory=list)
    dots: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, label, value


@dataclass
class LineChart:
    kind: str
    title: str
    description: str
    width: int
    height: int
    plot_left: int
    plot_top: int
    plot_bottom: int
    plot_right: int
    series: list[Series]
    y_ticks: list[Tick]
    x_labels: list[tuple[float, str]]
    unit: str = ""


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    value: str
    series: str

    @property
    def value_x(self) -> float:
        return round(self.x + self.width + 4, 1)

    @property
    def value_y(self) -> float:
        return round(self.y + self.height - 2, 1)


@dataclass
class BarGroup:
    label: str
    label_y: float
    bars: list[Bar]


@dataclass
class BarChart:
    kind: str
    title: str
    description: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    groups: list[BarGroup]
    x_ticks: list[Tick]
    legend: list[tuple[str, str, int]]  # name, colour, x
    unit: str = ""


def line_chart(
    title: str,
    labels: list[str],
    series: list[tuple[str, list]],
    *,
    width: int = 640,
    height: int = 240,
    unit: str = "",
) -> LineChart:
    """A trend over ``labels`` (days, months) of each named series of values."""
    left, right, top, bottom = 48, width - 12, 12, height - 36
    labels = [str(label) for label in labels][:MAX_POINTS]
    numbers = [[_number(v) for v in values[:MAX_POINTS]] for _, values in series]
    top_value = nice_ceiling(max((v for vs in numbers for v in vs if v is not None), default=0))
    count = len(labels)
    step = (right - left) / (count - 1) if count > 1 else 0

    def x_at(i: int) -> float:
        return round(left + (i * step if count > 1 else (right - left) / 2), 1)

    def y_at(v: float) -> float:
        return round(bottom - max(v, 0) / top_value * (bottom - top), 1)

    drawn = []
    for index, ((name, _), values) in enumerate(zip(series, numbers, strict=True)):
        line = Series(name=name, colour=PALETTE[index % len(PALETTE)])
        current: list[str] = []
        for i, v in enumerate(values):
            if v is None:
                if current:
                    line.segments.append(" ".join(current))
                current = []
                continue
            x, y = x_at(i), y_at(v)
            current.append(f"{x},{y}")
            line.dots.append((x, y, labels[i] if i < count else "", _fmt(v)))
        if current:
            line.segments.append(" ".join(current))
        line.points = " ".join(line.segments)
        drawn.append(line)
    ticks = [Tick(_fmt(top_value * k / 4), y_at(top_value * k / 4)) for k in range(5)]
    every = max(1, math.ceil(count / 8))
    x_labels = [(x_at(i), labels[i]) for i in range(0, count, every)]
    names = ", ".join(name for name, _ in series)
    description = (
        f"Line chart of {names} over {count} point{'s' if count != 1 else ''}"
        f"{f' from {labels[0]} to {labels[-1]}' if count else ''}; "
        "the table below gives every value."
    )
    return LineChart(
        kind="line",
        title=title,
        description=description,
        width=width,
        height=height,
        plot_left=left,
        plot_top=top,
        plot_bottom=bottom,
        plot_right=right,
        series=drawn,
        y_ticks=ticks,
        x_labels=x_labels,
        unit=unit,
    )


def bar_chart(
    title: str,
    labels: list[str],
    series: list[tuple[str, list]],
    *,
    width: int = 640,
    unit: str = "",
) -> BarChart:
    """Horizontal bars: one group per label, one bar per series in each group."""
    left, right = LABEL_WIDTH, width - 56
    labels = [str(label) for label in labels][:MAX_POINTS]
    numbers = [[_number(v) for v in values[: len(labels)]] for _, values in series]
    top_value = nice_ceiling(max((v for vs in numbers for v in vs if v is not None), default=0))
    bar_height = 14 if len(series) > 1 else 18
    group_height = bar_height * len(series) + 10
    legend_height = 22 if len(series) > 1 else 0
    y = legend_height + 4
    groups = []
    for i, label in enumerate(labels):
        bars = []
        for s, (name, _) in enumerate(series):
            v = numbers[s][i] if i < len(numbers[s]) else None
            if v is None:
                continue
            w = round(max(v, 0) / top_value * (right - left), 1)
            bars.append(
                Bar(
                    x=left,
                    y=y + s * bar_height,
                    width=w,
                    height=bar_height - 2,
                    colour=PALETTE[s % len(PALETTE)],
                    value=_fmt(v),
                    series=name,
                )
            )
        groups.append(BarGroup(label, y + (bar_height * len(series)) / 2 + 4, bars))
        y += group_height
    height = max(y + 24, 60)
    ticks = [
        Tick(_fmt(top_value * k / 4), round(left + (right - left) * k / 4, 1)) for k in range(5)
    ]
    names = ", ".join(name for name, _ in series)
    description = (
        f"Bar chart of {names} for {len(labels)} group{'s' if len(labels) != 1 else ''}; "
        "the table below gives every value."
    )
    return BarChart(
        kind="bar",
        title=title,
        description=description,
        width=width,
        height=height,
        plot_left=left,
        plot_right=right,
        groups=groups,
        x_ticks=ticks,
        legend=[
            (name, PALETTE[s % len(PALETTE)], 4 + 150 * s) for s, (name, _) in enumerate(series)
        ]
        if len(series) > 1
        else [],
        unit=unit,
    )


def chart_for(table: Table):
    """The chart a table asks for (``table.chart``), or None (no chart, or no rows)."""
    spec = table.chart
    if spec is None or not table.rows:
        return None
    labels = [row[spec.label_column] for row in table.rows]
    series = [(table.columns[c].label, [row[c] for row in table.rows]) for c in spec.value_columns]
    if spec.kind == "line":
        return line_chart(table.title, labels, series, unit=spec.unit)
    return bar_chart(table.title, labels, series, unit=spec.unit)

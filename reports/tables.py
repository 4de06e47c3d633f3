"""What the dashboards show and export: the filters (from the URL), and each statistic
as a table of plain values with the chart drawn from it (``reports.charts``) and the
exports written from it (``reports.exports``). One shape for every section, so a table
seen on screen is exactly the one exported."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Filters:
    """The dashboard's question: a date range (both days included, local calendar),
    a facility (None: every facility of the user), a service ("" : all) and the
    population (adults and children, newborns, or both). Nothing here identifies a
    patient, so it travels in the URL."""

    start: dt.date
    end: dt.date
    facility: object | None = None  # accounts.Facility
    service: str = ""
    population: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_query(self) -> dict[str, str]:
        query = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.facility is not None:
            query["facility"] = str(self.facility.public_id)
        if self.service:
            query["service"] = self.service
        if self.population:
            query["population"] = self.population
        return query

    def as_detail(self) -> dict[str, str]:
        """For the audit event: the same as the URL."""
        return self.as_query()


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False


@dataclass(frozen=True)
class ChartSpec:
    """How to draw a table: ``line`` (a trend over time) or ``bar`` (a breakdown), with
    the labels from column ``label_column`` and the values from ``value_columns``."""

    kind: str  # "line" or "bar"
    label_column: int = 0
    value_columns: tuple[int, ...] = (1,)
    unit: str = ""


@dataclass
class Table:
    key: str  # a slug, unique on the dashboard; the export link names it
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    chart: ChartSpec | None = None
    patient_level: bool = False  # rows name patients: exporting needs a permission
    patient_ids: list[str] = field(default_factory=list)  # for the audit of an export

    @property
    def headers(self) -> list[str]:
        return [c.label for c in self.columns]


@dataclass
class Section:
    """One part of a dashboard. ``missing`` says plainly why there is nothing to show
    (the app is not in use yet, no rows): the tables are then empty, never zeros."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # headline (label, value)
    missing: str = ""
    note: str = ""
    missing_parts: list[str] = field(default_factory=list)  # a part of a section not measured

    def table(self, key: str) -> Table | None:
        return next((t for t in self.tables if t.key == key), None)

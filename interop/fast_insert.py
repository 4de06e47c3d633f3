"""Inserting many rows of the import's big tables without Django's per-value work.

``Model.objects.bulk_create`` prepares every value of every row through its field
(``get_db_prep_save``, the standard library's JSON encoder) and builds model instances
first: on an import that is the largest cost after validation. Here rows are plain
dicts (attribute names, e.g. ``patient_id``), each column is converted by one cheap
function chosen once per column type, JSON is encoded with orjson — once, when the same
document goes into two tables (:class:`JsonText`) — and the rows are inserted with
multi-row ``INSERT … RETURNING`` (the new primary keys come back in the order of the
rows, as ``bulk_create`` relies on) or, where no key is needed, ``executemany``
(``ON CONFLICT DO NOTHING`` when asked).

No signals are sent, as with ``bulk_create``; fields with ``auto_now`` are not supported
(none of these tables has one). Table and column names come from the models' metadata,
never from input.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import operator
import uuid

import orjson
from django.conf import settings
from django.db import connection


class JsonText(str):
    """A JSON document already encoded: inserted into a JSON column as it is."""

    __slots__ = ()


def json_text(value) -> JsonText:
    return JsonText(orjson.dumps(value).decode())


def _last_value_memo(convert):
    """``convert`` remembering its last argument: the import writes the same moment in
    many rows of a batch."""
    last = [object(), None]

    def memo(value):
        if value is last[0]:
            return last[1]
        result = convert(value)
        last[0], last[1] = value, result
        return result

    return memo


def _converter(field, conn):
    """A cheap function from an attribute value to the database value, or None where the
    value goes as it is; anything unusual goes through the field's own
    ``get_db_prep_save``."""
    internal = field.get_internal_type()
    if internal == "JSONField" and field.encoder is None:
        if conn.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            def to_jsonb(value):
                if value is None:
                    return None
                if isinstance(value, JsonText):
                    return Jsonb(value, dumps=str)
                return Jsonb(json_text(value), dumps=str)

            return to_jsonb
        return lambda v: v if v is None or isinstance(v, JsonText) else json_text(v)
    if internal == "DateTimeField":
        adapt = conn.ops.adapt_datetimefield_value
        if conn.vendor == "sqlite" and settings.USE_TZ and conn.timezone_name == "UTC":
            # What SQLite's adapt_datetimefield_value makes of a moment already in UTC
            # (the import's are): the naive text. Other offsets take its own way.
            def to_text(value):
                if value is None:
                    return None
                if value.tzinfo is dt.UTC:
                    return str(value.replace(tzinfo=None))
                return adapt(value)

            return _last_value_memo(to_text)
        return _last_value_memo(lambda v: None if v is None else adapt(v))
    if internal == "DecimalField":
        # What get_db_prep_save makes of a finite Decimal is an equal Decimal; anything
        # else (a float, a string, an infinity to refuse) takes the field's own way.
        def to_decimal(value, field=field):
            if value is None or (type(value) is decimal.Decimal and value.is_finite()):
                return value
            return field.get_db_prep_save(value, conn)

        return to_decimal
    if internal == "UUIDField" and conn.vendor == "sqlite":
        return lambda v: v.hex if isinstance(v, uuid.UUID) else v
    if internal in (
        "CharField",
        "TextField",
        "IntegerField",
        "PositiveIntegerField",
        "BigIntegerField",
        "PositiveBigIntegerField",
        "BooleanField",
        "ForeignKey",
        "UUIDField",
    ):
        return None
    return lambda v, field=field: field.get_db_prep_save(v, conn)


class Table:
    """One model's table, ready for fast inserts on the default connection."""

    def __init__(self, model) -> None:
        meta = model._meta
        self.model = model
        self.fields = [f for f in meta.concrete_fields if f is not meta.pk]
        self.attnames = [f.attname for f in self.fields]
        quote = connection.ops.quote_name
        self.table = quote(meta.db_table)
        self.columns = ", ".join(quote(f.column) for f in self.fields)
        self.marks = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.pk_column = quote(meta.pk.column)
        self.db_table = meta.db_table
        self.pk_name = meta.pk.column
        self.sequence: str | None = None
        self.plan = [(f.attname, _converter(f, connection), f) for f in self.fields]
        self.getter = operator.itemgetter(*self.attnames)
        self.converters = [
            (number, convert)
            for number, (_, convert, _) in enumerate(self.plan)
            if convert is not None
        ]

    def values(self, row: dict) -> list:
        """The database values of one row; a column the row leaves out takes its
        field's default."""
        try:
            out = list(self.getter(row))
        except KeyError:
            out = [
                row[attname] if attname in row else field.get_default()
                for attname, _, field in self.plan
            ]
        for number, convert in self.converters:
            out[number] = convert(out[number])
        return out

    def insert(self, rows: list[dict], *, batch_size: int = 500) -> list:
        """Insert the rows; return their new primary keys, in order."""
        if not rows:
            return []
        if connection.vendor == "postgresql":
            return self._copy_with_keys(rows)
        if connection.in_atomic_block:
            return self._insert_with_keys(rows)
        limit = connection.features.max_query_params or 999
        size = max(1, min(batch_size, limit // len(self.fields)))
        keys: list = []
        with connection.cursor() as cursor:
            for start in range(0, len(rows), size):
                chunk = rows[start : start + size]
                params = list(itertools.chain.from_iterable(map(self.values, chunk)))
                cursor.execute(
                    f"INSERT INTO {self.table} ({self.columns}) "  # noqa: S608
                    f"VALUES {', '.join([self.marks] * len(chunk))} "
                    f"RETURNING {self.pk_column}",
                    params,
                )
                keys.extend(pk for (pk,) in cursor.fetchall())
        return keys

    def _insert_with_keys(self, rows: list[dict]) -> list:
        """SQLite, inside a transaction: it holds the database's write lock from BEGIN
        (``transaction_mode`` IMMEDIATE), so nobody else can take keys meanwhile: the
        keys after the highest ever given (AUTOINCREMENT never reuses one) are given
        here and the rows go in with one prepared statement, as the raw-insert limit
        inserts them."""
        with connection.cursor() as cursor:
            highest = (
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "  # noqa: S608
                f"COALESCE((SELECT MAX({self.pk_column}) FROM {self.table}), 0))"
            )
            cursor.execute(highest, [self.db_table])
            first = cursor.fetchone()[0] + 1
            keys = list(range(first, first + len(rows)))
            cursor.executemany(
                f"INSERT INTO {self.table} ({self.pk_column}, {self.columns}) "  # noqa: S608
                f"VALUES (%s, {self.marks[1:]}",
                [[pk, *self.values(row)] for pk, row in zip(keys, rows, strict=True)],
            )
        return keys

    def insert_many(self, rows: list[dict], *, ignore_conflicts: bool = False) -> None:
        """Insert the rows when their keys are not needed (``executemany``); with
        ``ignore_conflicts`` a row that would break a unique constraint is left out."""
        if not rows:
            return
        if connection.vendor == "postgresql":
            self._copy(rows, ignore_conflicts=ignore_conflicts)
            return
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.table} ({self.columns}) VALUES {self.marks}{conflict}",  # noqa: S608
                [self.values(row) for row in rows],
            )

    # PostgreSQL: COPY, as the raw-insert limit does; no statement is parsed per row.
    def _copy_with_keys(self, rows: list[dict]) -> list:
        """COPY the rows with primary keys taken from the table's sequence first (one
        query), so that they are known without RETURNING."""
        with connection.cursor() as cursor:
            if self.sequence is None:
                cursor.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", [self.db_table, self.pk_name]
                )
                self.sequence = cursor.fetchone()[0]
            cursor.execute(
                "SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequence, len(rows)]
            )
            keys = [pk for (pk,) in cursor.fetchall()]
            # The driver's own cursor: its errors made Django's (an IntegrityError) here.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(
                    f"COPY {self.table} ({self.pk_column}, {self.columns}) FROM STDIN"
                ) as copy,
            ):
                for pk, row in zip(keys, rows, strict=True):
                    copy.write_row([pk, *self.values(row)])
        return keys

    def _copy(self, rows: list[dict], *, ignore_conflicts: bool) -> None:
        """COPY the rows; with ``ignore_conflicts``, through a temporary table and an
        ``INSERT … SELECT … ON CONFLICT DO NOTHING``."""
        with connection.cursor() as cursor:
            target = self.table
            if ignore_conflicts:
                target = connection.ops.quote_name(f"fast_{self.db_table}")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} ON COMMIT DELETE ROWS AS "  # noqa: S608
                    f"SELECT {self.columns} FROM {self.table} WITH NO DATA"
                )
                cursor.execute(f"DELETE FROM {target}")  # noqa: S608
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {target} ({self.columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(self.values(row))
            if ignore_conflicts:
                cursor.execute(
                    f"INSERT INTO {self.table} ({self.columns}) "  # noqa: S608
                    f"SELECT {self.columns} FROM {target} ON CONFLICT DO NOTHING"
                )


_TABLES: dict[tuple, Table] = {}


def table(model) -> Table:
    """The :class:`Table` of ``model`` for the default connection's database."""
    key = (model, connection.vendor, connection.settings_dict.get("NAME"))
    found = _TABLES.get(key)
    if found is None:
        found = _TABLES[key] = Table(model)
    return found


def insert_rows(model, rows: list[dict]) -> list:
    """Insert rows (dicts of attribute values) of ``model``; their new primary keys."""
    return table(model).insert(rows)


def fast_bulk_create(model, objs: list, *, batch_size: int = 500, ignore_conflicts=False) -> None:
    """``Model.objects.bulk_create`` for model instances, through :class:`Table`: the new
    primary keys are set on the objects (not with ``ignore_conflicts``)."""
    if not objs:
        return
    found = table(model)
    rows = [{a: getattr(obj, a) for a in found.attnames} for obj in objs]
    if ignore_conflicts:
        found.insert_many(rows, ignore_conflicts=True)
        return
    for obj, pk in zip(objs, found.insert(rows, batch_size=batch_size), strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias

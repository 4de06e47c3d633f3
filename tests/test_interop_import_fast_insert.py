"""The import's fast bulk insert writes what Django's bulk_create would: every column,
JSON whole (unicode, nesting, numbers), timestamps in UTC, primary keys set on the
objects; with ignore_conflicts an existing key is left as it was."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from interop.fast_insert import fast_bulk_create
from interop.models import FhirResource, FhirResourceVersion, SourceKey

pytestmark = pytest.mark.django_db
WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


def test_rows_and_keys_come_back_as_written(personas):
    content = {
        "resourceType": "Basic",
        "id": "b-1",
        "text": {"div": "<div>Zoë – 東京 ✓</div>"},
        "extension": [{"valueDecimal": 12.5}, {"valueInteger": 7}, {"valueBoolean": False}],
        "nested": {"list": [[1, 2], {"a": None}]},
    }
    rows = [
        FhirResource(
            resource_type="Basic",
            fhir_id=f"b-{n}",
            version_id=1,
            last_updated=WHEN,
            content={**content, "id": f"b-{n}"},
            content_sha256="0" * 64,
            date=WHEN if n else None,
            status="active",
            code="x",
            source="test",
        )
        for n in range(3)
    ]
    fast_bulk_create(FhirResource, rows, batch_size=2)
    assert all(row.pk for row in rows)
    versions = [
        FhirResourceVersion(
            resource=row,
            version_id=1,
            content=row.content,
            recorded_at=WHEN,
            recorded_by=personas.integration,
            reason="imported",
        )
        for row in rows
    ]
    fast_bulk_create(FhirResourceVersion, versions)
    for row in rows:
        stored = FhirResource.objects.get(pk=row.pk)
        assert stored.fhir_id == row.fhir_id
        assert stored.content == row.content
        assert stored.last_updated == WHEN
        assert stored.date == row.date
        version = stored.versions.get()
        assert version.content == row.content and version.recorded_by == personas.integration
    assert Decimal(
        str(FhirResource.objects.get(pk=rows[0].pk).content["extension"][0]["valueDecimal"])
    ) == Decimal("12.5")


def test_ignore_conflicts_keeps_the_existing_key():
    def key(fhir_id):
        return SourceKey(
            namespace="ns",
            resource_type="Basic",
            source_id="s-1",
            fhir_id=fhir_id,
            content_sha256="",
            first_seen_at=WHEN,
            last_seen_at=WHEN,
        )

    fast_bulk_create(SourceKey, [key("first")], ignore_conflicts=True)
    fast_bulk_create(SourceKey, [key("second")], ignore_conflicts=True)
    assert list(SourceKey.objects.values_list("fhir_id", flat=True)) == ["first"]


def test_nothing_to_insert_is_a_no_op():
    fast_bulk_create(SourceKey, [])
    assert SourceKey.objects.count() == 0


def test_new_ids_are_random_version_4_uuids_as_text():
    import uuid

    from interop.importer import new_ids

    ids = new_ids(5000)
    assert len(set(ids)) == 5000 and new_ids(0) == []
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == value
    # Every variant nibble (8, 9, a, b) turns up: the random bits are not all the same.
    assert {value[19] for value in ids} == set("89ab")


@pytest.mark.parametrize(
    "moment",
    [
        WHEN,
        WHEN.replace(microsecond=0),
        WHEN.astimezone(dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        None,
    ],
)
def test_moments_are_converted_as_the_database_backend_converts_them(moment):
    from django.db import connection

    from interop.fast_insert import _converter

    convert = _converter(FhirResource._meta.get_field("last_updated"), connection)
    expected = connection.ops.adapt_datetimefield_value(moment)
    assert convert(moment) == expected

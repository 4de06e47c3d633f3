"""A FHIR search by code reads the code's rows through an index — the clinical record's
``clinical_type_code_date`` (Observation, Condition, …) and the stored resources'
``fhir_type_code_updated`` (DiagnosticReport, Claim, …) — on SQLite and on PostgreSQL,
for the count and for the page, rather than every row of the type. Checked on the SQL
the API runs, with the tables analysed as a population would have them: many rows per
type, few per code."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from clinical.models import ClinicalEntry
from interop.models import FhirResource
from interop.testing import auth_header, bearer_token
from recordroom import clock
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db

CODES = [f"{1000 + n}-{n % 10}" for n in range(100)]
FAMILIES = ["Ashgrove", "Brackenridge", "Cinderfell", "Duskmoor"]


@pytest.fixture
def population(personas):
    """A few patients with many entries each, spread over a hundred codes."""
    now = clock.now()
    patients = [register_patient(personas, family=family) for family in FAMILIES]
    entries, stored = [], []
    for n in range(2000):
        patient = patients[n % len(patients)]
        when = now - dt.timedelta(hours=n)
        entries.append(
            ClinicalEntry(
                patient=patient,
                resource_type="Observation" if n % 2 else "Condition",
                code_system="http://loinc.org" if n % 2 else "http://hl7.org/fhir/sid/icd-10-cm",
                code=CODES[n % len(CODES)],
                status="final",
                effective_at=when,
                resource={"resourceType": "Observation" if n % 2 else "Condition"},
                recorded_at=now,
            )
        )
        if n % 2:
            fhir_id = str(uuid.uuid4())
            stored.append(
                FhirResource(
                    resource_type="DiagnosticReport",
                    fhir_id=fhir_id,
                    last_updated=when,
                    content={"resourceType": "DiagnosticReport", "id": fhir_id},
                    content_sha256="0" * 64,
                    patient=patient,
                    code=CODES[n % len(CODES)],
                    status="final",
                )
            )
    ClinicalEntry.objects.bulk_create(entries)
    FhirResource.objects.bulk_create(stored)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return patients


def plans(client, token, url: str, table: str) -> list[str]:
    """The query plans of the searches' SELECTs on ``table`` filtered by code."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **auth_header(token))
    assert response.status_code == 200, response.content[:300]
    assert response.json()["total"] > 0
    selects = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and f'"{table}"."code" =' in q["sql"]
    ]
    # The count and the page (and, where the page reaches them, the rows whose date is
    # null, read apart).
    assert len(selects) in (2, 3)
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    result = []
    with connection.cursor() as cursor:
        for sql in selects:
            cursor.execute(explain + sql)
            result.append("\n".join(str(row[-1]) for row in cursor.fetchall()))
    return result


@pytest.mark.parametrize(
    ("url", "table", "index"),
    [
        (
            "/fhir/Observation?code=http://loinc.org|1005-5",
            "clinical_entry",
            "clinical_type_code_date",
        ),
        ("/fhir/Condition?code=1006-6&_count=10", "clinical_entry", "clinical_type_code_date"),
        ("/fhir/DiagnosticReport?code=1007-7", "interop_resource", "fhir_type_code_updated"),
        (
            "/fhir/DiagnosticReport?code=1007-7&_sort=-date",
            "interop_resource",
            "fhir_type_code_updated",
        ),
    ],
)
def test_a_code_search_reads_through_the_code_index(
    client, personas, population, url, table, index
):
    token = bearer_token(personas.integration, "system/*.read")
    for plan in plans(client, token, url, table):
        assert index in plan, plan


@pytest.mark.parametrize(
    ("url", "nullable"),
    [
        ("/fhir/DiagnosticReport?code=1007-7", False),  # -_lastUpdated
        ("/fhir/DiagnosticReport?code=1007-7&_sort=_lastUpdated", False),
        ("/fhir/DiagnosticReport?code=1007-7&_sort=-date", True),
        ("/fhir/Observation?code=1005-5&_sort=-_lastUpdated", False),
        ("/fhir/Observation?code=1005-5", True),  # -date: effective_at may be null
        ("/fhir/Observation?code=1005-5&_sort=date", True),
    ],
)
def test_the_page_is_ordered_as_an_index_serves_it(client, personas, population, url, nullable):
    """The page's order has no nulls clause, so an index on the key serves it in either
    direction: PostgreSQL reads no index for ``DESC NULLS LAST``, SQLite none for ``ASC
    NULLS LAST``; each sorts every match instead (28 ms against 1 ms for a page of
    100,000 patients by birth date on PostgreSQL). A key that may be null is read for
    the rows with a value first (its nulls stay last)."""
    token = bearer_token(personas.integration, "system/*.read")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **auth_header(token))
    assert response.status_code == 200, response.content[:300]
    table = "interop_resource" if "DiagnosticReport" in url else "clinical_entry"
    page = next(
        q["sql"]
        for q in queries.captured_queries
        if "ORDER BY" in q["sql"] and f'"{table}"."code" =' in q["sql"]
    )
    assert "NULLS" not in page.split("ORDER BY")[-1], page
    column = "effective_at" if table == "clinical_entry" else "date"
    assert (f'"{table}"."{column}" IS NOT NULL' in page) is nullable, page


@pytest.mark.parametrize("sort", ["-date", "date"])
def test_rows_without_a_date_come_last_on_every_page(client, personas, population, sort):
    """Paging through the rows with a date and on into those without: the same order as
    one sort with nulls last, whatever the page size, with ``_total=none`` too."""
    entries = list(ClinicalEntry.objects.filter(code="1005-5").order_by("pk"))
    ClinicalEntry.objects.filter(pk__in=[e.pk for e in entries[::3]]).update(effective_at=None)
    key = (
        F("effective_at").desc(nulls_last=True)
        if sort == "-date"
        else F("effective_at").asc(nulls_last=True)
    )
    expected = [
        str(e.public_id) for e in ClinicalEntry.objects.filter(code="1005-5").order_by(key, "-pk")
    ]
    token = bearer_token(personas.integration, "system/*.read")
    for size in (1, 3, 7, 50):
        for total in ("accurate", "none"):
            seen = []
            for offset in range(0, len(expected) + size, size):
                response = client.get(
                    "/fhir/Observation",
                    {
                        "code": "1005-5",
                        "_sort": sort,
                        "_count": size,
                        "_offset": offset,
                        "_total": total,
                    },
                    **auth_header(token),
                )
                assert response.status_code == 200, response.content[:300]
                seen += [e["resource"]["id"] for e in response.json().get("entry", [])]
            assert seen == expected, (size, total)

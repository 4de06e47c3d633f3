"""FHIR Bulk Data export: kick-off, polling, files, cancelling, expiry, who sees what,
bad input, the audit trail, and flat memory on a large population."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
import uuid

import pytest
import time_machine

from audit.models import Action, Outcome
from clinical.actions import do_record_clinical_entry
from documents.testing import signed, stored_files, temporary_storage
from interop.models import ExportJob, ExportStatus, FhirResource
from interop.testing import auth_header, bearer_token, make_client
from patients.actions import do_set_restriction
from recordroom import clock
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db

ASYNC = {"HTTP_PREFER": "respond-async", "HTTP_ACCEPT": "application/fhir+json"}


@pytest.fixture
def media(settings, tmp_path):
    return temporary_storage(settings, tmp_path)


def observation(code="8867-4", value=72):
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": "2026-01-05T10:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def practitioner_row():
    now = clock.now()
    return FhirResource.objects.create(
        resource_type="Practitioner",
        fhir_id="prac-1",
        last_updated=now,
        content={"resourceType": "Practitioner", "id": "prac-1", "name": [{"family": "Osei"}]},
        content_sha256="0" * 64,
    )


@pytest.fixture
def population(personas, media):
    """Two ordinary patients with data, a restricted one, one at the other facility, a
    sensitive document and a shared Practitioner."""
    first = register_patient(personas, family="Ashgrove")
    second = register_patient(personas, family="Brackenridge", given="Tobias")
    hidden = register_patient(personas, family="Cinderfell", given="Wren")
    do_set_restriction(hidden, "vip", reason="public figure", acting_user=personas.administrator)
    elsewhere = register_patient(
        personas, family="Duskmoor", given="Ivo", facility=personas.other_facility
    )
    for patient in (first, second, hidden, elsewhere):
        do_record_clinical_entry(patient, resource=observation(), acting_user=personas.technician)
    do_record_clinical_entry(
        first, resource=observation("9279-1", 16), acting_user=personas.technician
    )
    ordinary = signed(first, personas.clinician, title="Progress note")
    sensitive = signed(first, personas.clinician, title="Therapy note", sensitivity=["behavioral"])
    practitioner_row()
    return {
        "first": first,
        "second": second,
        "hidden": hidden,
        "elsewhere": elsewhere,
        "document": ordinary,
        "sensitive": sensitive,
    }


def kickoff(client, token, path="/fhir/$export", **extra):
    headers = {**ASYNC, **auth_header(token), **extra}
    return client.get(path, **headers)


def read_ndjson(client, url, token):
    response = client.get(url, **auth_header(token))
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/fhir+ndjson"
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def run_export(client, token, path="/fhir/$export", **extra):
    response = kickoff(client, token, path, **extra)
    assert response.status_code == 202, response.content
    status_url = response["Content-Location"]
    assert "/fhir/$export-poll-status/" in status_url
    poll = client.get(status_url, **auth_header(token))
    assert poll.status_code == 200, poll.content
    return status_url, poll.json()


def by_type(client, manifest, token):
    return {item["type"]: read_ndjson(client, item["url"], token) for item in manifest["output"]}


# --- the whole flow --------------------------------------------------------------------


def test_system_export_writes_one_file_per_type(client, personas, population, audit_rows):
    token = bearer_token(personas.integration, "system/*.read")
    status_url, manifest = run_export(client, token)
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/$export")
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["error"] == []
    files = by_type(client, manifest, token)
    counts = {item["type"]: item["count"] for item in manifest["output"]}
    assert {k: len(v) for k, v in files.items()} == counts
    patient_ids = {p["id"] for p in files["Patient"]}
    assert patient_ids == {str(population["first"].public_id), str(population["second"].public_id)}
    assert counts["Observation"] == 3
    assert all(o["subject"]["reference"].split("/")[1] in patient_ids for o in files["Observation"])
    # Sensitive documents never leave in a bulk export.
    assert [d["id"] for d in files["DocumentReference"]] == [str(population["document"].public_id)]
    # Shared resources come with the system-level export.
    assert [p["id"] for p in files["Practitioner"]] == ["prac-1"]
    assert files["Practitioner"][0]["meta"]["versionId"] == "1"
    # Audited: the request and the export with the patients it carried.
    done = audit_rows(action=Action.EXPORT, object_type="fhir_export", outcome=Outcome.ALLOWED)
    assert [row.reason for row in done] == [
        "FHIR bulk export requested",
        "FHIR bulk export completed",
    ]
    detail = done[-1].detail
    assert detail["patients"] == 2
    assert set(detail["patient_ids"]) == patient_ids
    assert detail["resources"]["Observation"] == 3
    downloads = audit_rows(object_type="fhir_export_file")
    assert len(downloads) == len(manifest["output"])


def test_every_resource_validates_under_fhir_resources(client, personas, population):
    from fhir.resources.R4B import get_fhir_model_class

    token = bearer_token(personas.integration, "system/*.read")
    _, manifest = run_export(client, token)
    for resource_type, resources in by_type(client, manifest, token).items():
        for resource in resources:
            get_fhir_model_class(resource_type).model_validate(resource)


def test_patient_export_leaves_out_shared_resources(client, personas, population):
    token = bearer_token(personas.integration, "system/*.read")
    _, manifest = run_export(client, token, "/fhir/Patient/$export")
    types = {item["type"] for item in manifest["output"]}
    assert "Practitioner" not in types
    assert {"Patient", "Observation", "DocumentReference"} <= types


def test_type_limits_the_export(client, personas, population):
    token = bearer_token(personas.integration, "system/*.read")
    _, manifest = run_export(client, token, "/fhir/$export?_type=Patient,Observation")
    assert sorted(item["type"] for item in manifest["output"]) == ["Observation", "Patient"]


def test_since_exports_only_what_changed(client, personas, population):
    token = bearer_token(personas.integration, "system/*.read", seconds=10 * 3600)
    later = clock.now() + dt.timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        newer = do_record_clinical_entry(
            population["second"],
            resource=observation("8310-5", 37),
            acting_user=personas.technician,
        )
    with time_machine.travel(later + dt.timedelta(minutes=5), tick=False):
        since = (later - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        _, manifest = run_export(client, token, f"/fhir/$export?_since={since}")
        files = by_type(client, manifest, token)
    assert [o["id"] for o in files["Observation"]] == [str(newer.public_id)]
    assert "Patient" not in files


def test_a_user_token_exports_what_the_user_may_see(client, personas, population):
    token = bearer_token(personas.administrator, "user/*.read")
    _, manifest = run_export(client, token, "/fhir/$export?_type=Patient")
    patients = by_type(client, manifest, token)["Patient"]
    # The administrator keeps the restricted list, so the VIP is in; the outsider's not.
    assert {p["id"] for p in patients} == {
        str(population[k].public_id) for k in ("first", "second", "hidden")
    }


def test_a_scope_naming_types_exports_only_those(client, personas, population):
    token = bearer_token(personas.integration, "system/Patient.read system/Condition.rs")
    _, manifest = run_export(client, token)
    assert [item["type"] for item in manifest["output"]] == ["Patient"]


# --- polling, cancelling, expiry, failure -------------------------------------------------


def test_a_running_job_answers_202_with_progress(client, personas, media):
    token = bearer_token(personas.integration, "system/*.read")
    from interop.auth import token_hash
    from interop.models import AccessToken

    row = AccessToken.objects.get(token_sha256=token_hash(token))
    job = ExportJob.objects.create(
        kind="system",
        requested_by=personas.integration,
        client_id=row.client.client_id,
        request_url="http://testserver/fhir/$export",
        status=ExportStatus.RUNNING,
        requested_at=clock.now(),
        progress="Observation (3 of 10 types)",
    )
    response = client.get(f"/fhir/$export-poll-status/{job.public_id}", **auth_header(token))
    assert response.status_code == 202
    assert response["X-Progress"] == "Observation (3 of 10 types)"
    assert response["Retry-After"]


def test_a_failed_job_answers_500_with_an_outcome(client, personas, population, monkeypatch):
    from interop import bulk

    def broken(self, resource_type):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bulk.Exporter, "resources", broken)
    token = bearer_token(personas.integration, "system/*.read")
    response = kickoff(client, token)
    poll = client.get(response["Content-Location"], **auth_header(token))
    assert poll.status_code == 500
    outcome = poll.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "RuntimeError" in outcome["issue"][0]["diagnostics"]
    assert stored_files(_media_root()) == []
    assert population["first"]  # the population existed; nothing of it was left behind


def _media_root():
    from pathlib import Path

    from django.core.files.storage import default_storage

    return Path(default_storage.location) / "fhir-export"


def test_delete_cancels_and_removes_the_files(client, personas, population, audit_rows):
    token = bearer_token(personas.integration, "system/*.read")
    status_url, manifest = run_export(client, token)
    assert stored_files(_media_root())
    response = client.delete(status_url, **auth_header(token))
    assert response.status_code == 202
    assert stored_files(_media_root()) == []
    assert client.get(status_url, **auth_header(token)).status_code == 404
    assert client.get(manifest["output"][0]["url"], **auth_header(token)).status_code == 404
    assert client.delete(status_url, **auth_header(token)).status_code == 404
    assert audit_rows(reason="FHIR bulk export cancelled")


def test_jobs_expire_and_their_files_are_deleted(client, personas, population, settings):
    from interop.bulk import delete_expired_exports

    settings.FHIR_EXPORT_HOURS = 1
    token = bearer_token(personas.integration, "system/*.read", seconds=10 * 3600)
    status_url, manifest = run_export(client, token)
    with time_machine.travel(clock.now() + dt.timedelta(hours=2), tick=False):
        assert client.get(status_url, **auth_header(token)).status_code == 404
        assert client.get(manifest["output"][0]["url"], **auth_header(token)).status_code == 404
        assert delete_expired_exports() == 1
        assert delete_expired_exports() == 0
    assert stored_files(_media_root()) == []
    assert ExportJob.objects.get().status == ExportStatus.COMPLETED


# --- who may -----------------------------------------------------------------------------


def test_the_job_is_queued_ahead_of_background_work(client, personas, population, settings):
    """With the worker's database queue, a kick-off does not wait behind chart
    analysis queued in bulk (the demo load queues thousands)."""
    from django_tasks_db.models import DBTaskResult

    from completion.tasks import analyse_record

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    for _ in range(3):
        analyse_record.enqueue(str(uuid.uuid4()))
    token = bearer_token(personas.integration, "system/*.read")
    response = kickoff(client, token)
    assert response.status_code == 202
    assert DBTaskResult.objects.ready().first().task_path == "interop.tasks.run_bulk_export"


def test_it_requires_a_token(client, personas, audit_rows):
    response = client.get("/fhir/$export", **ASYNC)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer realm="RecordRoom"')
    assert response.json()["resourceType"] == "OperationOutcome"
    assert audit_rows(outcome=Outcome.DENIED, object_type="fhir_token")


def test_it_refuses_post(client, personas):
    token = bearer_token(personas.integration, "system/*.read")
    assert client.post("/fhir/$export", **ASYNC, **auth_header(token)).status_code == 405


def test_it_denies_a_role_without_bulk_export(client, personas, audit_rows):
    token = bearer_token(personas.clinician, "user/*.read")
    response = kickoff(client, token)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    denied = audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)
    assert denied and "interop.bulk_export" in denied[0].reason
    assert not ExportJob.objects.exists()


def test_it_refuses_a_token_with_the_wrong_scope(client, personas, audit_rows):
    token = bearer_token(personas.integration, "system/Patient.read")
    response = kickoff(client, token, "/fhir/$export?_type=Observation")
    assert response.status_code == 403
    assert "insufficient_scope" in response["WWW-Authenticate"]
    assert "insufficient_scope" in response.json()["issue"][0]["diagnostics"]
    assert audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)
    assert not ExportJob.objects.exists()


def test_it_refuses_a_patient_scope(client, personas, population, audit_rows):
    token = bearer_token(personas.administrator, "patient/*.read", patient=population["first"])
    response = kickoff(client, token)
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)


def test_another_client_cannot_poll_or_download(client, personas, population, audit_rows):
    token = bearer_token(personas.integration, "system/*.read")
    status_url, manifest = run_export(client, token)
    other = bearer_token(
        personas.integration, "system/*.read", client=make_client(personas.integration)
    )
    assert client.get(status_url, **auth_header(other)).status_code == 404
    assert client.get(manifest["output"][0]["url"], **auth_header(other)).status_code == 404
    assert client.delete(status_url, **auth_header(other)).status_code == 404
    denied = audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)
    assert {row.reason for row in denied} == {
        "export job of another client or user",
        "export file of another client or user",
    }
    # The owner still gets it.
    assert client.get(status_url, **auth_header(token)).status_code == 200


def test_an_outsider_exports_only_their_facility(client, personas, population):
    from django.contrib.auth.models import Group

    personas.outsider.groups.add(Group.objects.get(name="him_administrator"))
    token = bearer_token(personas.outsider, "user/*.read")
    _, manifest = run_export(client, token, "/fhir/$export?_type=Patient")
    patients = by_type(client, manifest, token)["Patient"]
    assert [p["id"] for p in patients] == [str(population["elsewhere"].public_id)]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "status", "named"),
    [
        ("", {"HTTP_PREFER": ""}, 400, "Prefer"),
        ("?_since=yesterday", {}, 400, "_since"),
        ("?_since=2026-01-01", {}, 400, "_since"),
        ("?_since=2026-01-01T00:00:00", {}, 400, "_since"),
        ("?_type=Patient,Spaceship", {}, 400, "_type"),
        ("?_type=AuditEvent", {}, 400, "_type"),
        ("?_outputFormat=text/csv", {}, 400, "_outputFormat"),
        ("?_typeFilter=Observation%3Fcode%3Dx", {}, 400, "_typeFilter"),
        ("?patient=Patient/1&foo=bar", {}, 400, "foo"),
        ("", {"HTTP_ACCEPT": "application/xml"}, 406, "Accept"),
    ],
)
def test_bad_kickoffs_are_refused_naming_what_is_wrong(
    client, personas, query, headers, status, named
):
    token = bearer_token(personas.integration, "system/*.read")
    response = kickoff(client, token, "/fhir/$export" + query, **headers)
    assert response.status_code == status, response.content
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert named in issue["diagnostics"] or named in issue.get("expression", [])
    assert not ExportJob.objects.exists()


def test_a_since_with_an_offset_is_accepted(client, personas, population):
    token = bearer_token(personas.integration, "system/*.read")
    # An unencoded '+' arrives as a space; it is read as the offset it was meant to be.
    response = kickoff(client, token, "/fhir/$export?_since=2026-01-01T00:00:00+02:00")
    assert response.status_code == 202, response.content


def test_patient_export_refuses_shared_types(client, personas):
    token = bearer_token(personas.integration, "system/*.read")
    response = kickoff(client, token, "/fhir/Patient/$export?_type=Practitioner")
    assert response.status_code == 400
    assert "Practitioner" in response.json()["issue"][0]["diagnostics"]


def test_smart_configuration_describes_the_endpoints(client):
    response = client.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["token_endpoint"].endswith("/oauth/token")
    assert body["authorization_endpoint"].endswith("/oauth/authorize")
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "system/*.read" in body["scopes_supported"]
    assert "permission-v2" in body["capabilities"]


# --- memory ------------------------------------------------------------------------------


def test_memory_stays_flat_on_a_large_export(personas, media, settings):
    """A few thousand rows export with a peak far below the size of the data: the job
    holds one chunk at a time, never the population."""
    from clinical.models import ClinicalEntry
    from interop.bulk import run_export
    from interop.models import ExportFile

    settings.FHIR_EXPORT_CHUNK = 100
    patient = register_patient(personas)
    now = clock.now()
    note = "x" * 2000  # a long comment per observation, so the data is large
    rows = []
    for i in range(4000):
        resource = observation(value=i)
        resource["note"] = [{"text": note}]
        resource["subject"] = {"reference": f"Patient/{patient.public_id}"}
        rows.append(
            ClinicalEntry(
                patient=patient,
                resource_type="Observation",
                code="8867-4",
                resource=resource,
                recorded_at=now,
                status="final",
            )
        )
    ClinicalEntry.objects.bulk_create(rows, batch_size=500)
    del rows
    job = ExportJob.objects.create(
        kind="system",
        requested_by=personas.integration,
        client_id="memory-test",
        request_url="http://testserver/fhir/$export?_type=Observation",
        types=["Observation"],
        status=ExportStatus.ACCEPTED,
        requested_at=now,
    )
    tracemalloc.start()
    try:
        assert run_export(str(job.public_id)) == ExportStatus.COMPLETED
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    exported = ExportFile.objects.get(job=job, resource_type="Observation")
    assert exported.count == 4000
    assert exported.size > 8_000_000
    # One chunk of 100 rows is a fortieth of the data; the peak is a few chunks.
    assert peak < exported.size / 4, (peak, exported.size)

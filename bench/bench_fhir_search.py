"""FHIR searches of the clinical record through the API: the visible-patients filter.

What it measures
  ``GET /fhir/Observation?…`` with a bearer token through Django's test client (URL
  routing, authentication, the search with its count and page, the audit row, the
  JSON), on ``--patients`` patients loaded in bulk by the patient-search benchmark's
  loader (90 % with an MRN at the main facility, 10 % at another one), with 1 % of them
  restricted and 0.5 % merged away, and about 3.3 Observations a patient:

  - ``code broad``: a code 30 % of the patients have (a page of 50 from ~0.3 rows a
    patient);
  - ``code medium``: one of 100 codes, each about 2 % of the patients;
  - ``code narrow``: one of ``patients / 5`` codes, about 5 rows each;
  - ``patient``: one patient's Observations (~3 rows);
  - ``patient + code broad``.

  Each shape is run for a HIM technician (no ``manage_restrictions``: the restricted
  patients are filtered) at the main facility only (``one of two facilities``) and at
  both (``every facility``): the visible-patients filter has a different form in each.
  Per shape 5 warm-ups, then ``--repeat`` timed requests; p50 and p95.

How to run
  .venv/bin/python bench/bench_fhir_search.py --patients 20000
  DATABASE_URL=postgres://recordroom@127.0.0.1:PORT/postgres \\
      .venv/bin/python bench/bench_fhir_search.py --patients 100000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import FreshDatabase, machine_info, percentile, write_results  # noqa: E402

BROAD = "8867-4"
MEDIUM = [f"M{n:03d}-1" for n in range(100)]


def load(args):
    """Patients (the patient-search loader), restrictions, merges, Observations."""
    from types import SimpleNamespace

    import bench_patient_search as patient_bench
    from django.db import connection, transaction

    from accounts.models import Facility
    from clinical.models import ClinicalEntry
    from patients.models import Patient

    main = Facility.objects.create(code="bench", name="Bench General", mrn_prefix="BG")
    other = Facility.objects.create(code="other", name="Other Clinic", mrn_prefix="OC")
    loader_args = SimpleNamespace(patients=args.patients, seed=args.seed, batch=5000, analyze=False)
    print(f"loading {args.patients:,} patients …", flush=True)
    people, _ = patient_bench.populate(loader_args, (main, other))
    rng = random.Random(args.seed)
    pks = [p["pk"] for p in people]
    restricted = rng.sample(pks, len(pks) // 100)
    merged = rng.sample(sorted(set(pks) - set(restricted)), len(pks) // 200)
    Patient.objects.filter(pk__in=restricted).update(restriction="vip")
    survivors = sorted(set(pks) - set(merged))
    for pk in merged:
        Patient.objects.filter(pk=pk).update(merged_into_id=rng.choice(survivors))
    narrow_codes = max(1, len(pks) // 5)
    now = dt.datetime.now(dt.UTC)
    print("loading Observations …", flush=True)
    rows = []
    count = 0

    def flush():
        nonlocal rows, count
        with transaction.atomic():
            ClinicalEntry.objects.bulk_create(rows, batch_size=2000)
        count += len(rows)
        rows = []

    for n, pk in enumerate(pks):
        codes = [rng.choice(MEDIUM), rng.choice(MEDIUM), f"N{n % narrow_codes:06d}-2"]
        if rng.random() < 0.3:
            codes.append(BROAD)
        for code in codes:
            when = now - dt.timedelta(minutes=rng.randrange(0, 5 * 365 * 24 * 60))
            fhir_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            rows.append(
                ClinicalEntry(
                    public_id=fhir_id,
                    patient_id=pk,
                    resource_type="Observation",
                    category="laboratory",
                    code_system="http://loinc.org",
                    code=code,
                    status="final",
                    effective_at=when,
                    resource={
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "subject": {"reference": f"Patient/{people[n]['public_id']}"},
                        "effectiveDateTime": when.isoformat(),
                    },
                    recorded_at=now,
                )
            )
        if len(rows) >= 20000:
            flush()
    flush()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"{count:,} Observations", flush=True)
    return people, main, other, set(restricted) | set(merged)


def reloaded():
    """What ``load`` returned, read back from a kept database (``--reuse``)."""
    from accounts.models import Facility
    from patients.models import Patient, PatientIdentifier

    main = Facility.objects.get(code="bench")
    other = Facility.objects.get(code="other")
    by_pk = {main.pk: main, other.pk: other}
    at = dict(PatientIdentifier.objects.filter(kind="MR").values_list("patient_id", "facility_id"))
    people, hidden = [], set()
    rows = Patient.objects.order_by("pk").values_list(
        "pk", "public_id", "restriction", "merged_into_id"
    )
    for pk, public_id, restriction, merged_into in rows:
        people.append({"pk": pk, "public_id": str(public_id), "facility": by_pk[at[pk]]})
        if restriction or merged_into:
            hidden.add(pk)
    return people, main, other, hidden


def run(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from interop.testing import bearer_token
    from patients.models import Patient
    from recordroom.testing import make_user

    User = get_user_model()  # noqa: N806
    people, main, other, hidden = reloaded() if args.reuse else load(args)
    rng = random.Random(args.seed + 1)
    mains = [p for p in people if p["facility"] is main and p["pk"] not in hidden]
    samples = rng.sample(mains, args.repeat + 5)
    narrow_codes = max(1, len(people) // 5)
    index = {p["pk"]: n for n, p in enumerate(people)}
    shapes = {
        "code broad": lambda p: f"/fhir/Observation?code=http://loinc.org|{BROAD}",
        "code medium": lambda p: f"/fhir/Observation?code={MEDIUM[index[p['pk']] % 100]}",
        "code narrow": lambda p: f"/fhir/Observation?code=N{index[p['pk']] % narrow_codes:06d}-2",
        "patient": lambda p: f"/fhir/Observation?patient={p['public_id']}",
        "patient + code broad": lambda p: (
            f"/fhir/Observation?patient={p['public_id']}&code={BROAD}"
        ),
    }
    users = {"one of two facilities": [main], "every facility": [main, other]}
    out: dict = {"patients": Patient.objects.count(), "repeat": args.repeat}
    for label, facilities in users.items():
        username = f"bench-{len(facilities)}"
        user = User.objects.filter(username=username).first() or make_user(
            username, "him_technician"
        )
        user.facilities.set(facilities)
        token = bearer_token(user, scope="user/Observation.read")
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
        for shape, url_of in shapes.items():
            for person in samples[:5]:
                client.get(url_of(person), secure=True)  # warm-up
            times, totals = [], []
            for person in samples[5:]:
                start = time.perf_counter()
                response = client.get(url_of(person), secure=True)
                times.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise SystemExit(f"{shape}: HTTP {response.status_code}")
                totals.append(response.json()["total"])
            key = f"{label}: {shape}"
            out[key] = {
                "p50_ms": round(percentile(times, 0.5) * 1000, 1),
                "p95_ms": round(percentile(times, 0.95) * 1000, 1),
                "median_total": sorted(totals)[len(totals) // 2],
            }
            print(f"  {key:45} {out[key]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--reuse", help="Search a database kept by --keep (its folder, or its name on PostgreSQL)."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--tag", default="", help="Appended to the results file's name.")
    args = parser.parse_args()
    results: dict = {}
    if args.reuse:
        # A kept database: the folder (SQLite) or the database's name (PostgreSQL).
        if args.reuse.startswith("/"):
            os.environ["RECORDROOM_DATA_DIR"] = args.reuse
        else:
            url = urlsplit(os.environ["DATABASE_URL"])
            os.environ["DATABASE_URL"] = urlunsplit(url._replace(path="/" + args.reuse))
        os.environ["DJANGO_SETTINGS_MODULE"] = "recordroom.settings"
        import django

        django.setup()
        context = contextlib.nullcontext()
    else:
        context = FreshDatabase(prefix="rr_bench_fhir_search", keep=args.keep)
    with context:
        from django.db import connection

        vendor = connection.vendor
        results["machine"] = machine_info()
        results["search"] = run(args)
    path = write_results("fhir_search" + (f"-{args.tag}" if args.tag else ""), vendor, results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()

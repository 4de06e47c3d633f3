"""A year of hospital statistics for a 500-bed hospital: the whole dashboard's queries.

What it measures
  ``reports.statistics.dashboard`` — everything the hospital dashboard shows for one
  question: the daily census of 365 days, the year's totals (service days, ADC,
  admissions, discharges, ALOS, occupancy, turnover, gross/net/post-operative death
  rates, consultation and 30-day readmission rates), the monthly trend, the breakdown
  by service and the top 10 diagnoses and procedures — for adults and children, for
  newborns and for everyone (the three populations the dashboard's filter offers).
  Goal: under 2 s for one dashboard (issue 9, point 6).

The synthetic hospital (bulk_create into a fresh scratch database; no real data)
  500 beds in 11 units (450 adult beds, 50 nursery bassinets); about 40,000 inpatient
  discharges in the year (ALOS about 3.7 days, so about 150,000 service days), 10 %
  newborns born in the hospital, 2.5 % deaths (a fifth of them within 48 hours), a
  quarter of the stays operated on (a surgical Procedure entry), one in six with a
  consult note, 85 % with a final abstract (principal diagnosis and procedures), and
  patients coming back (about one stay in eight is a readmission within 30 days, one
  in ten of those planned chemotherapy). Stays from the year before and after are
  there too, so the range cuts stays at both ends.

How to run
  .venv/bin/python bench/bench_statistics.py                  # SQLite
  DATABASE_URL=postgres://recordroom@127.0.0.1:PORT/postgres .venv/bin/python bench/bench_statistics.py
Results go to bench/results/statistics-<vendor>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402

GOAL_S = 2.0
YEAR = 2025
BEDS = [("4 West", 45), ("4 East", 45), ("5 West", 45), ("5 East", 45), ("6 West", 45)]
BEDS += [("6 East", 45), ("ICU", 40), ("CCU", 30), ("Oncology", 45), ("Ortho", 65)]
NURSERY = ("Nursery", 50)
SERVICES = [
    ("medicine", 0.34),
    ("surgery", 0.18),
    ("cardiology", 0.12),
    ("orthopaedics", 0.09),
    ("oncology", 0.07),
    ("neurology", 0.06),
    ("obstetrics", 0.08),
    ("pediatrics", 0.06),
]
DIAGNOSES = ["I214", "J189", "I509", "N390", "A419", "J441", "K8000", "E1165", "S72001A"]
DIAGNOSES += ["I639", "O80", "K358", "M1711", "C3490", "F329", "R079", "I4891"]
PROCEDURES = ["02703ZZ", "0SRC0J9", "0DTJ4ZZ", "0FT44ZZ", "B2111ZZ", "10E0XZZ", "0SRD0J9"]
PROCEDURES += ["3E0436Z", "5A1955Z", "30233N1", "0W9G3ZZ", "4A023N7"]


def build(seed: int, discharges: int) -> dict:
    """Insert the synthetic hospital; returns what was made."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Facility
    from clinical.models import ClinicalEntry
    from coding.models import Abstract, AbstractDiagnosis, AbstractProcedure
    from documents.models import Document, DocumentType
    from encounters.models import Encounter, EncounterLocation
    from patients.models import Patient
    from reports.models import BedCapacity

    rng = random.Random(seed)
    tz = timezone.get_current_timezone()
    now = timezone.now()
    user = get_user_model().objects.create_user(username="bench.clinician", password=None)
    facility = Facility.objects.create(code="bnch", name="Bench General", mrn_prefix="BG")
    consult = DocumentType.objects.get(loinc_code="11488-4")
    made = {"patients": 0, "encounters": 0}

    # About 13 % more stays than the year's discharges: the stays of the weeks before
    # and after the year (cut by the range) and the ones still in house.
    total = int(discharges * 1.13)
    patients_n = int(total * 0.72)
    with transaction.atomic():
        BedCapacity.objects.bulk_create(
            [
                BedCapacity(
                    facility=facility,
                    unit=unit,
                    beds=beds,
                    newborn=unit == NURSERY[0],
                    effective_from=dt.date(YEAR - 1, 1, 1),
                    created_at=now,
                )
                for unit, beds in [*BEDS, NURSERY]
            ]
        )
        patients = Patient.objects.bulk_create(
            [
                Patient(
                    family_name="Benchmark",
                    given_name="Synthetic",
                    birth_date=dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(33000)),
                    sex_at_birth=rng.choice("FM"),
                    created_at=now,
                    updated_at=now,
                )
                for _ in range(patients_n)
            ],
            batch_size=5000,
        )
        made["patients"] = len(patients)
        first = dt.datetime(YEAR - 1, 12, 1, tzinfo=tz)
        span_minutes = (dt.datetime(YEAR + 1, 1, 20, tzinfo=tz) - first).total_seconds() / 60
        encounters, last_stay = [], {}
        names, weights = zip(*SERVICES, strict=True)
        for n in range(total):
            newborn = rng.random() < 0.10
            readmission = not newborn and last_stay and rng.random() < 0.12
            if readmission:
                patient, previous_end = rng.choice(list(last_stay.items()))
                start = previous_end + dt.timedelta(hours=rng.randrange(24, 30 * 24))
            else:
                patient = patients[rng.randrange(len(patients))]
                start = first + dt.timedelta(minutes=rng.random() * span_minutes)
            if newborn:
                length = dt.timedelta(hours=rng.choice([30, 48, 50, 72, 96]))
            else:
                length = dt.timedelta(hours=max(2.0, rng.expovariate(1 / (3.7 * 24))))
            died = not newborn and rng.random() < 0.025
            if died and rng.random() < 0.2:
                length = dt.timedelta(hours=rng.randrange(2, 47))
            end = start + length
            in_house = end > dt.datetime(YEAR + 1, 1, 20, tzinfo=tz)
            encounters.append(
                Encounter(
                    patient=patient,
                    facility=facility,
                    visit_number=f"B{n:08d}",
                    encounter_class="IMP",
                    status="in-progress" if in_house else "finished",
                    service="pediatrics" if newborn else rng.choices(names, weights)[0],
                    admit_source="5a" if newborn else rng.choice(["1", "2", "7", "7", "4"]),
                    started_at=start,
                    ended_at=None if in_house else end,
                    disposition="" if in_house else ("20" if died else "01"),
                    unit=NURSERY[0] if newborn else rng.choice(BEDS)[0],
                    created_at=now,
                    updated_at=now,
                )
            )
            if not newborn and not died:
                last_stay[patient] = end
        encounters = Encounter.objects.bulk_create(encounters, batch_size=5000)
        made["encounters"] = len(encounters)
        # Where each stay was: its admitting unit, and for 15 % of the adults a transfer
        # to another unit part-way through (the census by unit reads these segments).
        locations = []
        for encounter in encounters:
            end = encounter.ended_at
            moved = encounter.admit_source != "5a" and end is not None and rng.random() < 0.15
            middle = encounter.started_at + (end - encounter.started_at) * 0.4 if moved else None
            locations.append(
                EncounterLocation(
                    encounter=encounter,
                    unit=encounter.unit,
                    started_at=encounter.started_at,
                    ended_at=middle or end,
                )
            )
            if moved:
                other = rng.choice([u for u, _ in BEDS if u != encounter.unit])
                locations.append(
                    EncounterLocation(
                        encounter=encounter, unit=other, started_at=middle, ended_at=end
                    )
                )
        EncounterLocation.objects.bulk_create(locations, batch_size=5000)
        made["locations"] = len(locations)

        procedures, documents, abstracts, plans = [], [], [], []
        for encounter in encounters:
            if encounter.ended_at is None:
                continue
            stay = encounter.ended_at - encounter.started_at
            if encounter.admit_source != "5a" and rng.random() < 0.25:
                when = encounter.started_at + stay * rng.random() * 0.6
                procedures.append(
                    ClinicalEntry(
                        patient_id=encounter.patient_id,
                        encounter=encounter,
                        resource_type="Procedure",
                        category="387713003",
                        code="80146002",
                        status="completed",
                        effective_at=when,
                        resource={"resourceType": "Procedure"},
                        recorded_at=when,
                    )
                )
            if rng.random() < 0.16:
                documents.append(
                    Document(
                        public_id=uuid.uuid4(),
                        patient_id=encounter.patient_id,
                        encounter=encounter,
                        doc_type=consult,
                        title="Consult",
                        author=user,
                        service_at=encounter.started_at,
                        entered_at=encounter.started_at,
                        status="final",
                        created_at=now,
                        updated_at=now,
                    )
                )
            if rng.random() < 0.85:
                abstracts.append(
                    Abstract(
                        encounter=encounter,
                        patient_id=encounter.patient_id,
                        status="final",
                        created_at=now,
                        updated_at=now,
                    )
                )
                plans.append(rng.random() < 0.012)
        ClinicalEntry.objects.bulk_create(procedures, batch_size=5000)
        Document.objects.bulk_create(documents, batch_size=5000)
        abstracts = Abstract.objects.bulk_create(abstracts, batch_size=5000)
        dx, px = [], []
        for abstract, chemo in zip(abstracts, plans, strict=True):
            dx.append(
                AbstractDiagnosis(
                    abstract=abstract,
                    sequence=1,
                    code="Z5111" if chemo else rng.choice(DIAGNOSES),
                    poa="Y",
                )
            )
            for sequence in range(1, rng.choice([1, 1, 2, 3]) + 1):
                px.append(
                    AbstractProcedure(
                        abstract=abstract,
                        sequence=sequence,
                        system="icd10pcs",
                        code=rng.choice(PROCEDURES),
                    )
                )
        AbstractDiagnosis.objects.bulk_create(dx, batch_size=5000)
        AbstractProcedure.objects.bulk_create(px, batch_size=5000)
        made.update(surgeries=len(procedures), consults=len(documents), abstracts=len(abstracts))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics for the planner, on both databases
    made["facility_id"] = facility.pk
    return made


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discharges", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    with benchkit.FreshDatabase(keep=args.keep, prefix="rr_bench_stats"):
        from django.db import connection

        from reports import statistics as st

        vendor = connection.vendor
        started = time.perf_counter()
        made = build(args.seed, args.discharges)
        build_s = time.perf_counter() - started
        print(f"built {made} in {build_s:.1f} s", flush=True)
        start, end = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
        results = {"vendor": vendor, "machine": benchkit.machine_info(), "data": made}
        timings, whole = {}, {}
        report = None
        for population in (st.ADULTS_CHILDREN, st.NEWBORN, st.ALL):
            scope = st.Scope((made["facility_id"],), population=population)
            samples, report = benchkit.measure(
                lambda scope=scope: st.dashboard(scope, start, end),
                repeat=args.repeat,
                warmup=1,
            )
            timings[population] = benchkit.summarize(samples)
            print(f"engine {population}: {timings[population]}", flush=True)
        totals = report.totals  # population "all"
        # The whole hospital dashboard as the page gets it: the door (permission, audit
        # row with the patients listed), the engine, the lists of deaths and
        # readmissions, and the tables (reports.hospital.hospital_sections).
        from accounts.models import Facility
        from recordroom.testing import make_user
        from reports import hospital
        from reports.tables import Filters

        facility = Facility.objects.get(pk=made["facility_id"])
        admin = make_user("bench.administrator", "him_administrator")
        admin.facilities.add(facility)
        for population in ("", st.NEWBORN, st.ALL):
            filters = Filters(start, end, facility=facility, population=population)
            samples, sections = benchkit.measure(
                lambda filters=filters: hospital.hospital_sections(admin, filters),
                repeat=args.repeat,
                warmup=1,
            )
            whole[population or st.ADULTS_CHILDREN] = benchkit.summarize(samples)
            key = population or st.ADULTS_CHILDREN
            print(f"dashboard {key}: {whole[key]}", flush=True)
        results["figures_all"] = {
            "discharges": totals.discharges,
            "service_days": totals.service_days,
            "average_daily_census": str(totals.average_daily_census),
            "alos": str(totals.alos),
            "occupancy": str(totals.occupancy),
            "gross_death_rate": str(totals.gross_death_rate),
            "net_death_rate": str(totals.net_death_rate),
            "postop_death_rate": str(totals.postop_death_rate),
            "consultation_rate": str(totals.consultation_rate),
            "readmission_rate": str(totals.readmission_rate),
        }
        results["engine"] = timings
        results["dashboard"] = whole
        worst = max(t["median_ms"] for t in whole.values()) / 1000
        results["goal_s"] = GOAL_S
        results["meets_goal"] = worst < GOAL_S
        print(results["figures_all"])
        path = benchkit.write_results("statistics", vendor, results)
        print(f"worst median {worst:.3f} s (goal < {GOAL_S} s); results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

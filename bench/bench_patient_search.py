"""Benchmark: patient search in the master patient index.

Builds a fresh database with synthetic patients (100,000 by default: names from common
US surname and given-name lists, some with typos, maiden names, MRNs with check digits,
encrypted SSNs, payer member ids, phones), then times a mix of searches a registration
desk types (MRN, SSN, partial name, misspelt name, date of birth, phone, name with date
of birth) through the real service, ``patients.search.search_patients``, against the
floor of one primary-key lookup. SQLite by default; PostgreSQL when ``DATABASE_URL`` is
set (a new database is created beside the one it names and dropped afterwards). See
bench/README.md.

    .venv/bin/python bench/bench_patient_search.py [--patients 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402  (sets sys.path for the project before Django is imported)

GOAL_P95_MS = 100.0


def _words(text: str) -> list[str]:
    return text.split()


SURNAMES = _words(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres
Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts
Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales
Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos
Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry
Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons
Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West
Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro
Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry
Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez
Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd
Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols
Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong
Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston
Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval Guerrero George
Chapman Rios Estrada O'Brien Okafor Nakamura Kowalski Lindqvist Abara Natarajan Huang
Mendoza-Ruiz St.Clair
"""
)
FEMALE = _words(
    """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty
Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah
Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma
Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Maria
Heather Diane Ruth Julie Olivia Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn
Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison Frances
Kathryn Janice Jean Abigail Alice Judy Sophia Grace Denise Amber Doris Marilyn Danielle
Beverly Isabella Theresa Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori Ava Mia
Priya Mei Ximena Aaliyah Guadalupe Fatima Yesenia
"""
)
MALE = _words(
    """
James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel
Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy
Ronald Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin
Scott Brandon Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry
Tyler Aaron Jose Adam Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter
Christian Keith Roger Terry Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan
Jesse Bryan Billy Bruce Gabriel Joe Logan Alan Juan Albert Willie Elijah Wayne Randy
Vincent Mason Roy Ralph Bobby Russell Bradley Philip Eugene Wei Omar Luis Carlos Tariq
Hiroshi
"""
)
PAYERS = ["Acme Health Plan", "Bay State Mutual", "Commonwealth Care", "Medicaid MA"]

QUERY_KINDS = [
    ("mrn", 30),
    ("ssn", 30),
    ("partial_name", 30),
    ("misspelt_name", 30),
    ("birth_date", 25),
    ("phone", 25),
    ("name_and_birth_date", 30),
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="synthetic patients")
    parser.add_argument("--queries", type=int, default=200, help="timed searches (mixed)")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per insert batch")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--data-dir", help="data folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--analyze", action="store_true", help="run ANALYZE on SQLite too after loading"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the slowest statement of each kind"
    )
    parser.add_argument("--output", help="results file (default bench/results/...json)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------
# Synthetic population


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip: a letter dropped, doubled, swapped with the next, or replaced."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "double", "swap", "replace"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]


def _ssn(rng: random.Random) -> str:
    return (
        f"{rng.randrange(100, 666):03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
    )


def _phone(rng: random.Random) -> str:
    return f"({rng.choice(['413', '617', '508', '781', '978'])}) 555-{rng.randrange(0, 10000):04d}"


def populate(args, facilities) -> tuple[list[dict], dict]:
    """Insert the patients with bulk_create; returns what the queries are drawn from."""
    from django.db import connection, transaction

    from accounts.models import Facility
    from patients import matching
    from patients.models import (
        Patient,
        PatientIdentifier,
        PatientName,
        PatientTelecom,
    )
    from patients.mrn import format_mrn
    from recordroom import crypto

    rng = random.Random(args.seed)
    ring = crypto.key_ring()
    now = dt.datetime.now(dt.UTC)
    first_day = dt.date(1925, 1, 1).toordinal()
    last_day = dt.date(2025, 12, 31).toordinal()
    main, other = facilities
    counters = {main.pk: 1, other.pk: 1}
    people: list[dict] = []
    started = time.perf_counter()
    done = 0
    while done < args.patients:
        size = min(args.batch, args.patients - done)
        batch = []
        for _ in range(size):
            sex = rng.choice("FM")
            family = rng.choice(SURNAMES)
            given = rng.choice(FEMALE if sex == "F" else MALE)
            if rng.random() < 0.03:
                family = typo(rng, family)  # entered with a slip at some registration
            person = {
                "family": family,
                "given": given,
                "middle": rng.choice(FEMALE + MALE) if rng.random() < 0.5 else "",
                "sex": sex,
                "birth_date": dt.date.fromordinal(rng.randrange(first_day, last_day)),
                "facility": main if rng.random() < 0.9 else other,
                "ssn": _ssn(rng) if rng.random() < 0.8 else "",
                "phone": _phone(rng) if rng.random() < 0.9 else "",
                "member_id": f"{rng.choice('ABCDEFGHJK')}{rng.randrange(10**8, 10**9)}"
                if rng.random() < 0.3
                else "",
                "maiden": rng.choice(SURNAMES) if sex == "F" and rng.random() < 0.1 else "",
            }
            batch.append(person)
        with transaction.atomic():
            patients = Patient.objects.bulk_create(
                [
                    Patient(
                        public_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                        family_name=p["family"],
                        given_name=p["given"],
                        middle_name=p["middle"],
                        birth_date=p["birth_date"],
                        sex_at_birth=p["sex"],
                        created_at=now,
                        updated_at=now,
                    )
                    for p in batch
                ]
            )
            names, identifiers, telecoms = [], [], []
            for person, patient in zip(batch, patients, strict=True):
                person["pk"] = patient.pk
                person["public_id"] = str(patient.public_id)
                for use, family in [("official", person["family"]), ("maiden", person["maiden"])]:
                    if not family:
                        continue
                    names.append(
                        PatientName(
                            patient_id=patient.pk,
                            use=use,
                            family=family,
                            given=person["given"],
                            middle=person["middle"],
                            family_norm=matching.normalize_name(family),
                            given_norm=matching.normalize_name(person["given"]),
                            family_phonetic=matching.phonetic(family),
                            given_phonetic=matching.phonetic(person["given"]),
                        )
                    )
                facility = person["facility"]
                person["mrn"] = format_mrn(facility, counters[facility.pk])
                counters[facility.pk] += 1
                identifiers.append(
                    PatientIdentifier(
                        patient_id=patient.pk,
                        kind="MR",
                        facility=facility,
                        value=person["mrn"],
                        created_at=now,
                    )
                )
                if person["ssn"]:
                    digits = matching.normalize_identifier(person["ssn"])
                    identifiers.append(
                        PatientIdentifier(
                            patient_id=patient.pk,
                            kind="SS",
                            value_encrypted=crypto.encrypt(digits, ring),
                            value_hash=crypto.blind_index("SS", digits, ring),
                            last4=digits[-4:],
                            created_at=now,
                        )
                    )
                if person["member_id"]:
                    identifiers.append(
                        PatientIdentifier(
                            patient_id=patient.pk,
                            kind="MB",
                            issuer=rng.choice(PAYERS),
                            value=person["member_id"],
                            created_at=now,
                        )
                    )
                if person["phone"]:
                    telecoms.append(
                        PatientTelecom(
                            patient_id=patient.pk,
                            system="phone",
                            use="mobile",
                            value=person["phone"],
                            normalized=matching.normalize_phone(person["phone"]),
                        )
                    )
            PatientName.objects.bulk_create(names, batch_size=2000)
            PatientIdentifier.objects.bulk_create(identifiers, batch_size=2000)
            PatientTelecom.objects.bulk_create(telecoms, batch_size=2000)
        people.extend(batch)
        done += size
        if done % (args.batch * 4) == 0 or done == args.patients:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:>9,} patients  {rate:,.0f} patients/s", flush=True)
    for facility in facilities:
        Facility.objects.filter(pk=facility.pk).update(mrn_next=counters[facility.pk])
    load_s = time.perf_counter() - started
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What autovacuum does soon after a bulk load; done now, so plans are stable.
            cursor.execute("VACUUM ANALYZE")
            with contextlib.suppress(Exception):
                cursor.execute("CHECKPOINT")
        else:
            if args.analyze:
                cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stats = {
        "patients": args.patients,
        "names": PatientName.objects.count(),
        "identifiers": PatientIdentifier.objects.count(),
        "telecoms": PatientTelecom.objects.count(),
        "at_other_facility": sum(1 for p in people if p["facility"] is other),
        "seconds": round(load_s, 2),
        "patients_per_s": round(args.patients / load_s),
        "post_load_s": round(time.perf_counter() - t0, 2),
        "post_load": "VACUUM ANALYZE"
        if connection.vendor == "postgresql"
        else ("ANALYZE" if args.analyze else "none (as deployed)"),
    }
    return people, stats


# ---------------------------------------------------------------------------------------
# Queries


def build_queries(people: list[dict], count: int, seed: int, main_facility) -> list[dict]:
    """A mix of what a registration desk types, each aimed at one real patient of the
    technician's facility (so the benchmark can also say whether it is on the first page)."""
    rng = random.Random(seed + 1)
    local = [p for p in people if p["facility"].pk == main_facility.pk]
    total = sum(n for _, n in QUERY_KINDS)
    queries = []
    for kind, share in QUERY_KINDS:
        for _ in range(max(1, round(count * share / total))):
            p = rng.choice(local)
            if kind == "ssn":
                p = rng.choice([q for q in local[:5000] if q["ssn"]] or local)
            if kind == "phone":
                p = rng.choice([q for q in local[:5000] if q["phone"]] or local)
            given, family = p["given"], p["family"]
            if kind == "mrn":
                text = p["mrn"]
            elif kind == "ssn":
                text = p["ssn"]
            elif kind == "partial_name":
                text = f"{family[: rng.randint(3, 5)]}, {given[: rng.randint(1, 3)]}"
            elif kind == "misspelt_name":
                text = f"{given} {typo(rng, family)}"
            elif kind == "birth_date":
                text = p["birth_date"].strftime("%m/%d/%Y")
            elif kind == "phone":
                text = p["phone"]
            else:
                text = f"{family}, {given} {p['birth_date'].isoformat()}"
            queries.append({"kind": kind, "text": text, "target": p["public_id"]})
    rng.shuffle(queries)
    return queries[:count]


class QueryLog:
    def __init__(self):
        self.queries: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(
                {"sql": sql, "params": params, "ms": (time.perf_counter() - start) * 1000}
            )


def explain(connection, sql: str, params) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(" | ".join(str(c) for c in row[1:]) for row in cursor.fetchall())
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def run_benchmark(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from accounts.models import Facility
    from patients.models import Patient
    from patients.search import parse_query, search_patients
    from recordroom.testing import make_user

    main = Facility.objects.create(code="bench", name="Bench General", mrn_prefix="BG")
    other = Facility.objects.create(code="other", name="Other Clinic", mrn_prefix="OC")
    technician = make_user("bench.tech", "him_technician")
    technician.facilities.add(main)

    print(f"Loading {args.patients:,} synthetic patients ({connection.vendor})…", flush=True)
    people, load = populate(args, (main, other))
    queries = build_queries(people, args.queries, args.seed, main)
    users = get_user_model().objects

    def fresh_user():
        return users.get(pk=technician.pk)  # as each request loads its user

    for q in queries[:10]:  # warm the caches and the connection
        search_patients(fresh_user(), parse_query(q["text"]))

    samples: dict[str, list[float]] = defaultdict(list)
    found: dict[str, list[bool]] = defaultdict(list)
    results_count: dict[str, list[int]] = defaultdict(list)
    slowest: dict[str, tuple[float, str]] = {}
    for q in queries:
        user = fresh_user()
        start = time.perf_counter()
        page = search_patients(user, parse_query(q["text"]))
        elapsed = time.perf_counter() - start
        samples[q["kind"]].append(elapsed)
        found[q["kind"]].append(any(r.public_id == q["target"] for r in page.results))
        results_count[q["kind"]].append(page.count)
        if elapsed > slowest.get(q["kind"], (0, ""))[0]:
            slowest[q["kind"]] = (elapsed, q["text"])

    rng = random.Random(args.seed + 2)
    ids = [p["pk"] for p in people]
    floor_samples, _ = benchkit.measure(
        lambda: Patient.objects.get(pk=rng.choice(ids)), repeat=200, warmup=10
    )
    floor = benchkit.summarize(floor_samples)

    every = [s for values in samples.values() for s in values]
    overall = benchkit.summarize(every)
    by_kind = {}
    for kind, _ in QUERY_KINDS:
        summary = benchkit.summarize(samples[kind])
        summary["target_on_first_page"] = f"{sum(found[kind])}/{len(found[kind])}"
        summary["median_results"] = statistics.median(results_count[kind])
        summary["slowest_query_shape"] = _shape(slowest[kind][1])
        by_kind[kind] = summary

    plans = {}
    if args.explain:
        for kind, (_, text) in slowest.items():
            log = QueryLog()
            with connection.execute_wrapper(log):
                search_patients(fresh_user(), parse_query(text))
            worst = max(log.queries, key=lambda q: q["ms"])
            plan = explain(connection, worst["sql"], worst["params"])
            plans[kind] = {"ms": round(worst["ms"], 3), "sql": worst["sql"], "plan": plan}
            print(f"\n== {kind}: slowest statement {worst['ms']:.1f} ms\n{worst['sql']}\n{plan}")

    return {
        "benchmark": "patient_search",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": benchkit.machine_info(),
        "load": load,
        "queries": len(every),
        "overall": overall,
        "by_kind": by_kind,
        "floor_pk_lookup": floor,
        "ratio_median_to_floor": round(overall["median_ms"] / floor["median_ms"], 1),
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": overall["p95_ms"] < GOAL_P95_MS,
        "plans": plans,
    }


def _shape(text: str) -> str:
    """A query's shape without its values (names and numbers become letters and 9s)."""
    return "".join("9" if c.isdigit() else ("a" if c.isalpha() else c) for c in text)


def print_table(results: dict) -> None:
    print()
    print(f"{'search':<22}{'n':>5}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}  target on page 1")
    for kind, s in results["by_kind"].items():
        print(
            f"{kind:<22}{s['n']:>5}{s['median_ms']:>12.2f}{s['p95_ms']:>10.2f}"
            f"{s['max_ms']:>10.2f}  {s['target_on_first_page']}"
        )
    o = results["overall"]
    print(f"{'all':<22}{o['n']:>5}{o['median_ms']:>12.2f}{o['p95_ms']:>10.2f}{o['max_ms']:>10.2f}")
    f = results["floor_pk_lookup"]
    print(
        f"\nfloor (primary-key read): median {f['median_ms']:.3f} ms; "
        f"search median is {results['ratio_median_to_floor']}x the floor"
    )
    verdict = "met" if results["goal_met"] else "NOT met"
    print(f"goal p95 < {GOAL_P95_MS:.0f} ms: {verdict} ({o['p95_ms']:.1f} ms)")


def main(argv=None) -> None:
    args = parse_args(argv)
    with benchkit.FreshDatabase(args.data_dir, keep=args.keep, prefix="rr_bench_mpi"):
        from django.db import connection

        results = run_benchmark(args)
        vendor = connection.vendor
    print_table(results)
    if args.output:
        Path(args.output).write_text(__import__("json").dumps(results, indent=2, default=str))
        print(f"results: {args.output}")
    else:
        print(f"results: {benchkit.write_results('patient_search', vendor, results)}")


if __name__ == "__main__":
    main()

"""FHIR import throughput against the raw-insert limit, and FHIR Patient search p95.

What it measures
  1. ``recordroom import-fhir`` (``interop.import_actions.do_import_paths``) of a
     synthetic population written by ``clinosim`` (FHIR R4 NDJSON, one file per type):
     resources per second and the process's peak memory (ru_maxrss).
  2. The physical limit for the same work: every row the import wrote (in every table
     it touched, the audit trail included) is read back and inserted again, raw, into
     empty copies of those tables with the same indexes — ``executemany`` on SQLite,
     ``COPY`` on PostgreSQL — in one transaction. The ratio import ÷ raw is the figure
     the issue asks for (goal: at least 30 %).
  3. Patient search through the FHIR API (``GET /fhir/Patient?…`` with a bearer
     token, through Django's test client: URL routing, authentication, the search, the
     audit row and the JSON) on ``--search-patients`` patients loaded in bulk: p50 and
     p95 per query shape, against the floor of one primary-key read.

How to run
  .venv/bin/python bench/bench_fhir_import.py                       # 1,000 patients, SQLite
  .venv/bin/python bench/bench_fhir_import.py --patients 100 --search-patients 10000
  DATABASE_URL=postgres://recordroom@127.0.0.1:PORT/postgres .venv/bin/python bench/bench_fhir_import.py

The clinosim population is generated once per (size, seed) into var/bench/ and reused.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import ROOT, FreshDatabase, machine_info, percentile, write_results  # noqa: E402


def population(patients: int, seed: int) -> Path:
    folder = ROOT / "var" / "bench" / f"clinosim-{patients}-{seed}"
    out = folder / "fhir_r4"
    if out.is_dir() and any(out.glob("*.ndjson")):
        return out
    folder.mkdir(parents=True, exist_ok=True)
    clinosim = Path(sys.executable).parent / "clinosim"
    print(f"generating {patients} patients with clinosim (seed {seed}) …", flush=True)
    subprocess.run(
        [
            str(clinosim),
            "simulate",
            "--country",
            "US",
            "--population",
            str(patients),
            "--seed",
            str(seed),
            "--output",
            str(folder),
            "--format",
            "fhir-r4",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def count_resources_of(folder: Path, resource_type: str) -> int:
    path = folder / f"{resource_type}.ndjson"
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def count_resources(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.ndjson"):
        with path.open("rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def table_counts() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def current_rss_mib() -> float:
    """The process's resident memory now (not its peak), from /proc."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        return 0.0


def raw_copy_seconds(tables: list[str], *, foreign_keys: bool = True) -> tuple[float, int]:
    """Insert every row of ``tables`` again, raw, into empty copies with the same
    indexes and (unless ``foreign_keys`` is false, PostgreSQL only) the same foreign
    keys, which point at the original tables; return the seconds the inserts took and
    the rows inserted.

    SQLite's copies are made from the tables' own DDL, so they carry the foreign keys
    (checked: Django turns ``PRAGMA foreign_keys`` on). PostgreSQL's ``LIKE … INCLUDING
    ALL`` leaves foreign keys out; they are added here so that both databases' limits
    insert the same rows into the same schema — checking them is part of inserting."""
    from django.db import connection

    vendor = connection.vendor
    prefix = "raw_" if foreign_keys else "rawnofk_"
    data: dict[str, tuple[list[str], list[tuple]]] = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            data[table] = (columns, cursor.fetchall())
            copy = f"{prefix}{table}"
            if vendor == "postgresql":
                cursor.execute(f'CREATE TABLE "{copy}" (LIKE "{table}" INCLUDING ALL)')
                if foreign_keys:
                    cursor.execute(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = %s::regclass AND contype = 'f'",
                        [f'"{table}"'],
                    )
                    for number, (_, definition) in enumerate(cursor.fetchall()):
                        cursor.execute(
                            f'ALTER TABLE "{copy}" ADD CONSTRAINT "{copy[:50]}_fk{number}" '
                            f"{definition}"
                        )
            else:
                cursor.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
                    "AND type IN ('table', 'index')",
                    [table],
                )
                for (ddl,) in cursor.fetchall():
                    ddl = ddl.replace(f'"{table}"', f'"{copy}"', 1)
                    if ddl.upper().startswith("CREATE UNIQUE INDEX") or ddl.upper().startswith(
                        "CREATE INDEX"
                    ):
                        # Index names are global in SQLite: rename them too.
                        head, _, rest = ddl.partition(" ON ")
                        name = head.split()[-1].strip('"')
                        ddl = f"{head.replace(name, 'raw_' + name)} ON {rest}"
                    cursor.execute(ddl)
    rows = sum(len(r) for _, r in data.values())
    start = time.perf_counter()
    if vendor == "postgresql":
        raw = connection.connection  # psycopg 3
        with raw.transaction(), raw.cursor() as cursor:
            for table, (columns, records) in data.items():
                cols = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f'COPY "{prefix}{table}" ({cols}) FROM STDIN') as copy:
                    for record in records:
                        copy.write_row(record)
    else:
        raw = connection.connection
        raw.execute("BEGIN")
        for table, (columns, records) in data.items():
            cols = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            raw.executemany(f'INSERT INTO "{prefix}{table}" ({cols}) VALUES ({marks})', records)
        raw.execute("COMMIT")
    return time.perf_counter() - start, rows


def bench_import(args) -> dict:
    from django.db import connection

    from interop.import_actions import do_import_paths
    from recordroom.testing import make_facility, make_user

    folder = Path(args.folder) if args.folder else population(args.patients, args.seed)
    # The NDJSON files only: manifest.json and _generator_metadata.json describe the run.
    files = sorted(folder.glob("*.ndjson"))
    resources = count_resources(folder)
    facility = make_facility()
    account = make_user("bench-engine", "integration")
    account.facilities.add(facility)
    connection.ensure_connection()
    before = table_counts()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    samples: list[tuple[int, float]] = []
    done = [0]

    def progress(number: int) -> None:
        done[0] += number
        if done[0] // 10_000 != (done[0] - number) // 10_000:
            samples.append((done[0], current_rss_mib()))

    load_before = [round(x, 2) for x in os.getloadavg()]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cpu_start = time.process_time()
    result = do_import_paths(
        files,
        acting_user=account,
        source="clinosim-bench",
        progress=progress,
        keep_results=False,
        validate_in_worker=False if args.validate_here else None,
    )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    # The validation process (when the import uses one) has ended with the import.
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    after = table_counts()
    written = [t for t in after if after[t] > before.get(t, 0) and not t.startswith("raw_")]
    totals = result.totals()
    raw_seconds, raw_rows = raw_copy_seconds(written)
    without_keys = None
    if connection.vendor == "postgresql":
        # For comparison with the figures before the foreign keys were added to the limit.
        without_keys, _ = raw_copy_seconds(written, foreign_keys=False)
    return {
        "patients": count_resources_of(folder, "Patient"),
        "resources_in_files": resources,
        "created": totals.get("created", 0),
        "updated": totals.get("updated", 0),
        "unchanged": totals.get("unchanged", 0),
        "refused": totals.get("refused", 0),
        "units_refused": result.units_refused,
        "units_retried": result.retried,
        "refusals_by_reason": dict(
            Counter(
                re.sub(r"[A-Za-z]+/[\w.\-]+", "T/id", r.reason)[:140] for r in result.refused
            ).most_common(8)
        ),
        "import_seconds": round(seconds, 2),
        "import_resources_per_s": round(resources / seconds, 1),
        "import_cpu_seconds": round(cpu_seconds, 2),
        "import_resources_per_cpu_s": round(resources / cpu_seconds, 1),
        "validated_in": "a second process" if worker_cpu > 0 else "the importing process",
        "validation_process_cpu_seconds": round(worker_cpu, 2),
        "rows_written": raw_rows,
        "tables_written": len(written),
        "raw_insert_seconds": round(raw_seconds, 2),
        "raw_resources_per_s": round(resources / raw_seconds, 1),
        "percent_of_raw_limit": round(100 * raw_seconds / seconds, 1),
        "percent_of_raw_limit_by_cpu": round(100 * raw_seconds / (cpu_seconds + worker_cpu), 1),
        **(
            {
                "raw_insert_seconds_without_foreign_keys": round(without_keys, 2),
                "percent_of_raw_limit_without_foreign_keys": round(100 * without_keys / seconds, 1),
            }
            if without_keys is not None
            else {}
        ),
        "load_average_before": load_before,
        "peak_rss_mib": round(rss_after / 1024, 1),
        "rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
        "rss_mib_every_10k_resources": [round(mib) for _, mib in samples],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def bench_search(args) -> dict:
    """Patient searches through the FHIR API on a population loaded in bulk by the
    patient-search benchmark's loader (names with their search keys, MRNs, SSNs)."""
    from types import SimpleNamespace

    import bench_patient_search as patient_bench
    from django.test import Client

    from accounts.models import Facility
    from interop.testing import bearer_token
    from patients.models import Patient
    from recordroom.testing import make_user

    main = Facility.objects.create(code="bench", name="Bench General", mrn_prefix="BG")
    other = Facility.objects.create(code="other", name="Other Clinic", mrn_prefix="OC")
    user = make_user("bench-searcher", "him_technician")
    user.facilities.add(main)
    loader_args = SimpleNamespace(
        patients=args.search_patients, seed=args.seed, batch=5000, analyze=True
    )
    print(f"loading {args.search_patients:,} patients for the search …", flush=True)
    people, _ = patient_bench.populate(loader_args, (main, other))
    rng = random.Random(args.seed)
    samples = rng.sample([p for p in people if p["facility"] is main], 40)
    token = bearer_token(user, scope="user/Patient.read")
    # As a real client: an allowed host, over HTTPS (the production settings redirect HTTP).
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    shapes = {
        "family": lambda p: f"/fhir/Patient?family={p['family']}&_count=20",
        "family+given": lambda p: f"/fhir/Patient?family={p['family']}&given={p['given']}",
        "birthdate": lambda p: f"/fhir/Patient?birthdate={p['birth_date'].isoformat()}",
        "identifier (MRN)": lambda p: f"/fhir/Patient?identifier={p['mrn']}",
        "name+birthdate": lambda p: (
            f"/fhir/Patient?name={p['family']}&birthdate={p['birth_date'].isoformat()}"
        ),
    }
    out: dict = {"patients": Patient.objects.count()}
    for shape, url_of in shapes.items():
        for person in samples[:5]:
            client.get(url_of(person), secure=True)  # warm-up
        times = []
        for person in samples:
            start = time.perf_counter()
            response = client.get(url_of(person), secure=True)
            times.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise SystemExit(f"{shape}: HTTP {response.status_code}")
        out[shape] = {
            "n": len(times),
            "p50_ms": round(percentile(times, 0.5) * 1000, 2),
            "p95_ms": round(percentile(times, 0.95) * 1000, 2),
        }
    pks = [p["pk"] for p in rng.sample(people, 200)]
    floor = []
    for pk in pks:
        start = time.perf_counter()
        Patient.objects.get(pk=pk)
        floor.append(time.perf_counter() - start)
    out["floor: one primary-key read"] = {
        "p50_ms": round(percentile(floor, 0.5) * 1000, 3),
        "p95_ms": round(percentile(floor, 0.95) * 1000, 3),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--search-patients", type=int, default=100_000)
    parser.add_argument("--folder", help="Import this folder of NDJSON instead of generating one.")
    parser.add_argument("--profile", help="Write a cProfile of the import to this file.")
    parser.add_argument(
        "--validate-here",
        action="store_true",
        help="Validate in the importing process (no second process), for comparison.",
    )
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()

    results: dict = {}
    with FreshDatabase(prefix="rr_bench_fhir"):
        from django.db import connection

        vendor = connection.vendor
        results["machine"] = machine_info()
        if not args.skip_import:
            results["import"] = bench_import(args)
        if not args.skip_search:
            results["search"] = bench_search(args)
    buf = io.StringIO()
    for section, figures in results.items():
        if section == "machine":
            continue
        print(f"\n{section}", file=buf)
        for key, value in figures.items():
            print(f"  {key:28} {value}", file=buf)
    print(buf.getvalue())
    path = write_results("fhir_import", vendor, results)
    print(f"results: {path}")


if __name__ == "__main__":
    main()

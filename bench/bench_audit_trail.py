"""Benchmark: the privacy officer's audit-trail search on a large trail.

Builds a fresh database, fills the audit trail with synthetic, validly hash-chained
events (1,000,000 by default), then times the real service functions a privacy officer
uses (``audit.access.search_trail`` and ``export_trail``) against the floor of one
primary-key lookup, and walks the whole chain with ``audit.verify.verify_chain``.
SQLite by default; PostgreSQL when ``DATABASE_URL`` is set (a new database is created
beside the one it names and dropped afterwards). See bench/README.md.

    .venv/bin/python bench/bench_audit_trail.py [--rows 1000000] [--repeat 20] [--explain]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import json
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402  (sets sys.path for the project before Django is imported)

GOAL_P95_MS = 100.0

USERS = 300
PATIENTS = 50_000
SPAN = dt.timedelta(days=730)

# Share of events per action: mostly chart views and searches.
ACTIONS = {
    "view": 0.60,
    "search": 0.20,
    "create": 0.06,
    "update": 0.05,
    "login": 0.04,
    "logout": 0.02,
    "login_failed": 0.01,
    "sign": 0.01,
    "print": 0.005,
    "export": 0.005,
}
# Refused accesses to a patient's record; with every failed log-in, about 2% of events.
DENIED_SHARE = 0.0125
PATIENT_ACTIONS = {"view", "create", "update", "sign", "print", "export"}
ROLE_MIX = [
    ("clinician", 0.60, "TREAT"),
    ("him_technician", 0.15, "HOPERAT"),
    ("coder", 0.12, "HPAYMT"),
    ("roi_specialist", 0.08, "PATRQT"),
    ("him_administrator", 0.05, "HOPERAT"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605",
]
COLUMNS = [
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_roles",
    "action",
    "outcome",
    "purpose",
    "patient_id",
    "object_type",
    "object_id",
    "reason",
    "detail",
    "client_ip",
    "user_agent",
    "path",
    "prev_hash",
    "row_hash",
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic audit events")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each search")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per insert batch")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--data-dir", help="data folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE on SQLite after loading (RecordRoom does not by itself)",
    )
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument(
        "--proposed",
        action="store_true",
        help="after timing as is, apply bench/proposals.py to this database and time again",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the chain walk")
    parser.add_argument("--output", help="results file (default bench/results/...json)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------
# Synthetic trail


def _zipf_cum_weights(n: int, exponent: float) -> list[float]:
    total = 0.0
    cum = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**exponent
        cum.append(total)
    return cum


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class TrailGenerator:
    """Produces rows of ``COLUMNS`` in sequence, each hashed by the model's own
    ``compute_hash`` (one reused, unsaved ``AuditEvent``), so the chain verifies."""

    def __init__(self, rows: int, users: list, seed: int, end: dt.datetime):
        from audit.models import GENESIS_HASH, AuditEvent

        self.rows = rows
        self.rng = random.Random(seed)
        rng = self.rng
        self.user_cum = _zipf_cum_weights(len(users), 1.0)
        role_cum = []
        acc = 0.0
        for _, share, _ in ROLE_MIX:
            acc += share
            role_cum.append(acc)
        # (pk, username, role, purpose, workstation address, browser) per member of staff
        self.staff = []
        for user in users:
            role, _, purpose = ROLE_MIX[min(bisect.bisect(role_cum, rng.random()), 4)]
            address = f"10.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            self.staff.append(
                (user.pk, user.username, role, purpose, address, rng.choice(USER_AGENTS))
            )
        self.patients = [_uuid(rng) for _ in range(PATIENTS)]
        self.patient_text = {patient: str(patient) for patient in self.patients}
        self.patient_cum = _zipf_cum_weights(PATIENTS, 0.6)
        self.action_names = list(ACTIONS)
        self.action_cum = []
        acc = 0.0
        for share in ACTIONS.values():
            acc += share
            self.action_cum.append(acc)
        self.start = end - SPAN
        # Integer microseconds, so occurred_at strictly increases with seq.
        self.mean_gap_us = SPAN / dt.timedelta(microseconds=1) / rows * 0.995
        self.t_us = 0
        self.seq = 0
        self.prev_hash = GENESIS_HASH
        self.event = AuditEvent(detail={})
        self.per_user: Counter = Counter()
        self.per_patient: Counter = Counter()
        self.denied_views = 0
        self.user_sample_seq: dict[str, int] = {}

    def batch(self, size: int) -> list[tuple]:
        rng = self.rng
        staff = rng.choices(self.staff, cum_weights=self.user_cum, k=size)
        patients = rng.choices(self.patients, cum_weights=self.patient_cum, k=size)
        actions = rng.choices(self.action_names, cum_weights=self.action_cum, k=size)
        event = self.event
        out = []
        per_user = self.per_user
        per_patient = self.per_patient
        start = self.start
        mean_gap_us = self.mean_gap_us
        for member, patient, action in zip(staff, patients, actions, strict=True):
            self.seq += 1
            self.t_us += max(1, int(rng.expovariate(1.0) * mean_gap_us))
            actor_id, username, role, purpose, address, agent = member
            outcome = "allowed"
            reason = ""
            detail: dict = {}
            object_type = ""
            object_id = ""
            path = ""
            patient_id = None
            if action in PATIENT_ACTIONS:
                patient_id = patient
                if action == "view" and rng.random() < 0.5:
                    object_type = "documents.document"
                    object_id = str(_uuid(rng))
                    path = f"/documents/{object_id}/"
                else:
                    object_type = "patients.patient"
                    object_id = self.patient_text[patient]
                    path = f"/patients/{object_id}/"
                if rng.random() < DENIED_SHARE:
                    outcome = "denied"
                    reason = "lacks permission patients.view_clinical"
                    if action == "view":
                        self.denied_views += 1
                if action == "export":
                    detail = {"format": "pdf"}
                elif action == "update":
                    detail = {"fields": ["address", "phone"]}
            elif action == "search":
                object_type = "patients.patient"
                path = "/patients/search/"
                detail = {"by": rng.choice(["mrn", "name_dob", "visit"])}
            elif action == "login_failed":
                actor_id = None
                outcome = "denied"
                reason = "bad password"
            if action in ("login", "logout", "login_failed"):
                purpose_used = ""
                path = "/accounts/logout/" if action == "logout" else "/accounts/login/"
            else:
                purpose_used = purpose
            event.seq = self.seq
            event.occurred_at = start + dt.timedelta(microseconds=self.t_us)
            event.actor_id = actor_id
            event.actor_username = username
            event.actor_roles = role if actor_id else ""
            event.action = action
            event.outcome = outcome
            event.purpose = purpose_used
            event.patient_id = patient_id
            event.object_type = object_type
            event.object_id = object_id
            event.reason = reason
            event.detail = detail
            event.client_ip = address
            event.user_agent = agent
            event.path = path
            event.prev_hash = self.prev_hash
            row_hash = event.compute_hash()
            out.append(
                (
                    event.seq,
                    event.occurred_at,
                    actor_id,
                    username,
                    event.actor_roles,
                    action,
                    outcome,
                    event.purpose,
                    patient_id,
                    object_type,
                    object_id,
                    reason,
                    detail,
                    event.client_ip,
                    event.user_agent,
                    path,
                    self.prev_hash,
                    row_hash,
                )
            )
            self.prev_hash = row_hash
            per_user[username] += 1
            if per_user[username] == 100:
                self.user_sample_seq[username] = self.seq
            if patient_id is not None:
                per_patient[patient_id] += 1
        return out


def _make_staff(count: int, seed: int) -> list:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model = get_user_model()
    rng = random.Random(seed)
    unusable = make_password(None)
    staff = [
        user_model(
            username=f"staff{n:03d}",
            password=unusable,
            first_name=f"Staff{n:03d}",
            last_name="Testperson",
            email=f"staff{n:03d}@example.invalid",
            public_id=_uuid(rng),
        )
        for n in range(1, count + 1)
    ]
    user_model.objects.bulk_create(staff, batch_size=1000)
    return list(user_model.objects.filter(username__startswith="staff").order_by("username"))


def _insert_sqlite(connection, rows: list[tuple]) -> None:
    adapt_dt = connection.ops.adapt_datetimefield_value
    prepared = [
        (
            *row[:1],
            adapt_dt(row[1]),
            *row[2:8],
            row[8].hex if row[8] is not None else None,
            *row[9:12],
            json.dumps(row[12]),
            *row[13:],
        )
        for row in rows
    ]
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT INTO audit_auditevent ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _insert_postgresql(connection, rows: list[tuple]) -> None:
    sql = f"COPY audit_auditevent ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*row[:12], json.dumps(row[12]), *row[13:]))


def generate_trail(args) -> tuple[TrailGenerator, dict]:
    from django.db import DatabaseError, connection, transaction

    from audit.models import AuditChainHead

    staff = _make_staff(USERS, args.seed)
    # The trail ends at midnight UTC today, so a given seed gives the same rows all day.
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generator = TrailGenerator(args.rows, staff, args.seed, end=end)
    insert = _insert_sqlite if connection.vendor == "sqlite" else _insert_postgresql
    build_s = insert_s = 0.0
    started = time.perf_counter()
    done = 0
    while done < args.rows:
        size = min(args.batch, args.rows - done)
        t0 = time.perf_counter()
        rows = generator.batch(size)
        t1 = time.perf_counter()
        with transaction.atomic():
            insert(connection, rows)
        insert_s += time.perf_counter() - t1
        build_s += t1 - t0
        done += size
        if done % (args.batch * 20) == 0 or done == args.rows:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:>10,} rows  {rate:,.0f} rows/s", flush=True)
    head = {"last_seq": generator.seq, "last_hash": generator.prev_hash}
    if any(f.name == "max_occurred_at" for f in AuditChainHead._meta.get_fields()):
        # The chain head's record of the clock (proposed in bench/proposals.py); the
        # generated clock never steps back.
        head["max_occurred_at"] = generator.start + dt.timedelta(microseconds=generator.t_us)
    AuditChainHead.objects.filter(pk=1).update(**head)
    load_s = time.perf_counter() - started
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What autovacuum does soon after a bulk load; done now, so plans are stable.
            cursor.execute("VACUUM ANALYZE audit_auditevent")
            # Write the loaded pages out now, not while the searches are being timed.
            # CHECKPOINT needs superuser or pg_checkpoint; without it only the noise differs.
            with contextlib.suppress(DatabaseError):
                cursor.execute("CHECKPOINT")
        else:
            if args.analyze:
                cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finish_s = time.perf_counter() - t0
    stats = {
        "rows": args.rows,
        "users": USERS,
        "patients": PATIENTS,
        "seconds": round(load_s, 2),
        "rows_per_s": round(args.rows / load_s),
        "build_hash_s": round(build_s, 2),
        "insert_s": round(insert_s, 2),
        "post_load_s": round(finish_s, 2),
        "post_load": "VACUUM ANALYZE"
        if connection.vendor == "postgresql"
        else ("ANALYZE" if args.analyze else "none (as deployed)"),
    }
    return generator, stats


# ---------------------------------------------------------------------------------------
# Timing


class QueryLog:
    """Records each SQL statement (text, parameters, duration) run inside the block."""

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


def profile_queries(connection, run) -> list[dict]:
    """Run once, log each statement with its time, and the plan of each SELECT from the
    audit table (the permission look-ups are the same in every search)."""
    log = QueryLog()
    with connection.execute_wrapper(log):
        run()
    out = []
    for query in log.queries:
        entry = {"sql": query["sql"], "ms": round(query["ms"], 3)}
        sql = query["sql"].lstrip()
        if sql.upper().startswith("SELECT") and '"audit_auditevent"' in sql:
            entry["plan"] = explain(connection, query["sql"], query["params"])
        out.append(entry)
    return out


def define_searches(generator: TrailGenerator, rows: int):
    """The privacy officer's usual searches, with values picked from the generated trail:
    the busiest user and patient (worst cases for counting), typical ones, a week and a
    month a year back (an old range is the hard case for a newest-first page)."""
    from audit.access import TrailFilter

    busiest_user, busiest_count = generator.per_user.most_common(1)[0]
    users = generator.per_user.most_common()
    typical_user, typical_count = users[len(users) // 2]
    patients = generator.per_patient.most_common()
    busiest_patient, busiest_patient_count = patients[0]
    typical_patient, typical_patient_count = patients[len(patients) // 2]
    day = (generator.start + SPAN / 2).date()
    week = {"date_from": day, "date_to": day + dt.timedelta(days=6)}
    month = {"date_from": day, "date_to": day + dt.timedelta(days=30)}
    deep = min(1000, rows)
    user_deep = generator.user_sample_seq.get(busiest_user, rows)
    return [
        ("first page, no filter", TrailFilter(), None),
        (f"username, busiest ({busiest_count:,} rows)", TrailFilter(username=busiest_user), None),
        (f"username, typical ({typical_count:,} rows)", TrailFilter(username=typical_user), None),
        (
            f"patient, busiest ({busiest_patient_count:,} rows)",
            TrailFilter(patient_id=busiest_patient),
            None,
        ),
        (
            f"patient, typical ({typical_patient_count:,} rows)",
            TrailFilter(patient_id=typical_patient),
            None,
        ),
        (
            f"action=view + denied ({generator.denied_views:,} rows)",
            TrailFilter(action="view", outcome="denied"),
            None,
        ),
        ("outcome=denied", TrailFilter(outcome="denied"), None),
        ("one week", TrailFilter(**week), None),
        ("one month", TrailFilter(**month), None),
        ("username busiest + one week", TrailFilter(username=busiest_user, **week), None),
        ("username typical + one week", TrailFilter(username=typical_user, **week), None),
        ("outcome=denied + one week", TrailFilter(outcome="denied", **week), None),
        (f"deep page, no filter (before={deep})", TrailFilter(), deep),
        (
            f"deep page, username busiest (before={user_deep})",
            TrailFilter(username=busiest_user),
            user_deep,
        ),
    ], TrailFilter(username=busiest_user, **month)


class Officer:
    """The privacy officer, loaded afresh before each call as a request would (so role
    and permission caches start empty), outside the timed part."""

    def __init__(self):
        from django.contrib.auth import get_user_model

        from recordroom.testing import make_user

        self.model = get_user_model()
        self.pk = make_user("po", "privacy_officer").pk
        self.user = None
        self.reload()

    def reload(self) -> None:
        self.user = self.model.objects.get(pk=self.pk)


def time_searches(args, searches, export_filter, officer: Officer, floor_ms: float) -> dict:
    from django.db import connection

    from audit.access import export_trail, search_trail

    results = []
    for name, filters, before in searches:

        def run(filters=filters, before=before):
            return search_trail(officer.user, filters, before=before)

        samples, page = benchkit.measure(run, repeat=args.repeat, before_each=officer.reload)
        officer.reload()
        summary = benchkit.summarize(samples)
        summary.update(
            name=name,
            filters=filters.as_detail(),
            before=before,
            count=page.count,
            count_capped=page.count_capped,
            page_seqs=[event.seq for event in page.events],
            ratio_to_floor=round(summary["median_ms"] / floor_ms, 1),
            queries=profile_queries(connection, run),
        )
        results.append(summary)
        print_row(summary)

    def run_export():
        return sum(1 for _ in export_trail(officer.user, export_filter))

    samples, exported = benchkit.measure(
        run_export, repeat=max(3, args.repeat // 4), warmup=1, before_each=officer.reload
    )
    officer.reload()
    export = benchkit.summarize(samples)
    export.update(
        name=f"CSV export, busiest user, one month ({exported:,} rows)",
        filters=export_filter.as_detail(),
        rows=exported,
        rows_per_s=round(exported / statistics.median(samples)),
        ratio_to_floor=round(export["median_ms"] / floor_ms, 1),
        queries=profile_queries(connection, run_export),
    )
    print_row(export, goal=False)
    return {
        "searches": results,
        "export": export,
        "over_goal": [r["name"] for r in results if r["p95_ms"] > GOAL_P95_MS],
    }


def same_answers(before: list[dict], after: list[dict]) -> list[str]:
    """Searches whose count or page differ between two runs. The newest-first page with
    no filter is left out: every search appends an event, so it moves between runs."""
    differ = []
    for a, b in zip(before, after, strict=True):
        if not a["filters"] and a["before"] is None:
            continue
        if (a["count"], a["page_seqs"]) != (b["count"], b["page_seqs"]):
            differ.append(a["name"])
    return differ


def run_benchmark(args) -> dict:
    from django.db import connection

    from audit.actions import record_event
    from audit.models import AuditEvent
    from audit.verify import verify_chain

    vendor = connection.vendor
    print(f"RecordRoom audit-trail benchmark on {vendor}: {args.rows:,} rows")
    print("generating the trail...")
    generator, load = generate_trail(args)
    print(
        f"  loaded {args.rows:,} rows in {load['seconds']} s ({load['rows_per_s']:,} rows/s; "
        f"hashing {load['build_hash_s']} s, inserting {load['insert_s']} s)"
    )
    officer = Officer()
    searches, export_filter = define_searches(generator, args.rows)

    rng = random.Random(args.seed + 1)
    first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    ids = iter([first_id + rng.randrange(args.rows) for _ in range(args.repeat * 5 + 5)])
    samples, _ = benchkit.measure(
        lambda: AuditEvent.objects.get(pk=next(ids)), repeat=args.repeat * 5, warmup=5
    )
    floor = benchkit.summarize(samples)
    print(f"floor: AuditEvent.objects.get(pk=...) median {floor['median_ms']} ms\n")

    print(f"{'search (as is)':<56}{'median':>12}{'p95':>14}{'ratio':>14}")
    as_is = time_searches(args, searches, export_filter, officer, floor["median_ms"])
    proposed = None
    if args.proposed:
        import proposals

        t0 = time.perf_counter()
        applied = proposals.apply_all(connection)
        took = time.perf_counter() - t0
        print(f"\n{'search (with bench/proposals.py)':<56}  applied: {applied} in {took:.1f} s")
        proposed = time_searches(args, searches, export_filter, officer, floor["median_ms"])
        proposed["applied"] = applied
        proposed["apply_s"] = round(took, 2)
        proposed["answers_differ"] = same_answers(as_is["searches"], proposed["searches"])
        if proposed["answers_differ"]:
            print("DIFFERENT ANSWERS with the proposals: " + "; ".join(proposed["answers_differ"]))
        else:
            print("  same counts and pages as before the proposals")

    def write_one():
        record_event(officer.user, "view", purpose="COMPL", object_type="audit.trail")

    samples, _ = benchkit.measure(write_one, repeat=args.repeat)
    audit_write = benchkit.summarize(samples)
    audit_write["ratio_to_floor"] = round(audit_write["median_ms"] / floor["median_ms"], 1)
    print(
        f"\ncontext: one record_event (every search writes one) median "
        f"{audit_write['median_ms']} ms = {audit_write['ratio_to_floor']}x floor"
    )

    verify = None
    if not args.no_verify:
        print("verifying the whole chain...")
        t0 = time.perf_counter()
        outcome = verify_chain()
        seconds = time.perf_counter() - t0
        verify = {
            "ok": outcome.ok,
            "problem": outcome.problem,
            "rows": outcome.rows_checked,
            "seconds": round(seconds, 2),
            "rows_per_s": round(outcome.rows_checked / seconds),
        }
        print(
            f"  verify_chain: {'ok' if outcome.ok else 'BROKEN: ' + outcome.problem}, "
            f"{outcome.rows_checked:,} rows in {verify['seconds']} s "
            f"({verify['rows_per_s']:,} rows/s)"
        )
        if not outcome.ok:
            raise SystemExit("the synthetic chain does not verify: the generator is wrong")

    if args.explain:
        print_plans("as is", as_is)
        if proposed:
            print_plans("with proposals", proposed)
    print()
    for label, run in (("as is", as_is), ("with proposals", proposed)):
        if run is None:
            continue
        if run["over_goal"]:
            print(f"{label}: p95 over {GOAL_P95_MS:.0f} ms: " + "; ".join(run["over_goal"]))
        else:
            print(f"{label}: every search p95 under {GOAL_P95_MS:.0f} ms")
    return {
        "benchmark": "audit_trail",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": benchkit.machine_info(),
        "args": {k: v for k, v in vars(args).items() if k not in ("data_dir", "output")},
        "goal_p95_ms": GOAL_P95_MS,
        "load": load,
        "floor": {"what": "AuditEvent.objects.get(pk=...)", **floor},
        "as_is": as_is,
        "proposed": proposed,
        "audit_write": {"what": "audit.actions.record_event(...)", **audit_write},
        "verify": verify,
    }


def print_plans(label: str, run: dict) -> None:
    """The audit-table statements of each search, with their time and plan."""
    for result in [*run["searches"], run["export"]]:
        print(f"\n== {label}: {result['name']}")
        for query in result["queries"]:
            if "audit_auditevent" not in query["sql"] or "plan" not in query:
                continue
            print(f"-- {query['ms']:.2f} ms  {query['sql'][:160]}")
            print("   " + query["plan"].replace("\n", "\n   "))


def print_row(summary: dict, *, goal: bool = True) -> None:
    flag = "  <-- over goal" if goal and summary["p95_ms"] > GOAL_P95_MS else ""
    if "rows_per_s" in summary:
        flag = f"  ({summary['rows_per_s']:,} rows/s)"
    print(
        f"  {summary['name']:<54}{summary['median_ms']:>9.2f} ms{summary['p95_ms']:>11.2f} ms"
        f"{summary['ratio_to_floor']:>11.1f}x{flag}",
        flush=True,
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    with benchkit.FreshDatabase(args.data_dir, keep=args.keep, prefix="rr_bench_audit"):
        from django.db import connection

        results = run_benchmark(args)
        vendor = connection.vendor
    if args.output:
        path = Path(args.output)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    else:
        path = benchkit.write_results("audit_trail", vendor, results)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

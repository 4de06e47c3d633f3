"""Shared helpers for the benchmarks in bench/: a fresh database, timing and results.

A benchmark script imports this module *before* Django: :class:`FreshDatabase` sets the
environment (settings module, a temporary data folder, a new PostgreSQL database when
``DATABASE_URL`` is set), calls ``django.setup()`` and runs ``migrate``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class FreshDatabase:
    """An empty, migrated RecordRoom database for the length of a ``with`` block.

    SQLite: a new file in a temporary data folder (or in ``data_dir``, which must not
    hold a database yet). PostgreSQL (``DATABASE_URL`` set): a new database created
    beside the one the URL names, dropped afterwards. The audit table refuses DELETE and
    TRUNCATE, so a throw-away database is the only clean way to start again.
    """

    def __init__(
        self, data_dir: str | None = None, *, keep: bool = False, prefix: str = "rr_bench"
    ):
        self.given_data_dir = data_dir
        self.keep = keep
        self.prefix = prefix
        self.data_dir: Path | None = None
        self.admin_url: str | None = None
        self.database_name: str | None = None

    def __enter__(self) -> FreshDatabase:
        if self.given_data_dir:
            self.data_dir = Path(self.given_data_dir).resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        os.environ["RECORDROOM_DATA_DIR"] = str(self.data_dir)
        os.environ["DJANGO_SETTINGS_MODULE"] = "recordroom.settings"
        url = os.environ.get("DATABASE_URL")
        if url:
            self.admin_url = url
            self.database_name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database_name}"')
            parts = urlsplit(url)
            os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + self.database_name))
        elif (self.data_dir / "recordroom.sqlite3").exists():
            raise SystemExit(f"{self.data_dir} already holds a database; give an empty folder")

        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        return self

    def __exit__(self, *exc) -> None:
        from django.db import connections

        connections.close_all()
        if self.keep:
            where = self.database_name or self.data_dir
            print(f"kept the benchmark database: {where}")
            return
        if self.admin_url and self.database_name:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
            os.environ["DATABASE_URL"] = self.admin_url
        if not self.given_data_dir and self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the value at or below which ``fraction`` of samples lie."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 0.95), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def measure(
    run: Callable[[], object],
    *,
    repeat: int,
    warmup: int = 2,
    before_each: Callable[[], None] | None = None,
) -> tuple[list[float], object]:
    """Time ``run`` ``repeat`` times after ``warmup`` untimed calls. ``before_each`` runs
    outside the timing (for instance to load the acting user afresh, as a request does).
    Returns the durations in seconds and the last result."""
    result = None
    for _ in range(warmup):
        if before_each:
            before_each()
        result = run()
    samples = []
    for _ in range(repeat):
        if before_each:
            before_each()
        start = time.perf_counter()
        result = run()
        samples.append(time.perf_counter() - start)
    return samples, result


def machine_info() -> dict[str, object]:
    import django
    from django.db import connection

    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "database": connection.vendor,
    }
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("select sqlite_version()")
        else:
            cursor.execute("show server_version")
        info["database_version"] = cursor.fetchone()[0]
    info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    try:
        with open("/proc/meminfo") as meminfo:
            total_kb = int(meminfo.readline().split()[1])
        info["memory_gib"] = round(total_kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def write_results(name: str, vendor: str, results: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{vendor}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path

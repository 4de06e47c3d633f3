"""Code look-up over the full ICD-10-CM set: p50/p95 of realistic queries.

What it measures
  ``coding.lookup.search`` (what the look-up screen and the abstract screen's
  autocomplete call, without the HTTP layer), after ``recordroom codes load`` filled a
  fresh database with everything shipped: ICD-10-CM (98,505 items of the FY2026 April
  update, 74,719 billable) and ICD-10-PCS (78,638 codes). Queries: code prefixes in
  any form (``e11``, ``S72.0``, ``j18.9``), words in any order (``fracture femur
  left``), partial words as typed (``heart fail``, ``fract hum``), typos
  (``daibetes``, ``pnuemonia``) and ICD-10-PCS (``0DT``, ``bypass coronary artery``).
  Each query runs ``--repeat`` times after 2 warm-up runs; the first search of a
  process builds the in-memory word index (reported separately as
  ``index_build_seconds``). Goal: p95 under 50 ms (issue 8, point 2). Also reports
  how long the load took (``load_seconds``).

How to run
  .venv/bin/python bench/bench_code_lookup.py                  # SQLite
  DATABASE_URL=postgres://recordroom@127.0.0.1:PORT/postgres .venv/bin/python bench/bench_code_lookup.py
Results go to bench/results/code-lookup-<vendor>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402

QUERIES = {
    "prefix": ["e11", "E11.6", "s72.0", "I50", "j18.9", "Z79", "O24.4", "M84.35", "c50.9"],
    "words": [
        "type 2 diabetes kidney",
        "fracture femur left",
        "acute systolic heart failure",
        "pneumonia unspecified organism",
        "chronic obstructive pulmonary disease exacerbation",
        "sepsis",
        "breast cancer left",
        "hypertension chronic kidney",
        "left femur fracture displaced",
    ],
    "typed": ["heart fail", "diab", "pneum", "fract hum", "hypert", "breast cancer le"],
    "typos": ["daibetes", "pnuemonia", "fractrue femur", "hypertnsion", "systolc heart failure"],
}
PCS_QUERIES = ["0DT", "resection appendix", "bypass coronary artery", "0SR9"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    with benchkit.FreshDatabase(keep=args.keep, prefix="rr_bench_codes"):
        from django.db import connection

        from coding import codesets
        from coding.lookup import search

        vendor = connection.vendor
        started = time.perf_counter()
        loads = codesets.load_shipped()
        load_seconds = time.perf_counter() - started
        results = {
            "vendor": vendor,
            "machine": benchkit.machine_info(),
            "load_seconds": round(load_seconds, 1),
            "codes": {r.system: r.codes for r in loads},
        }
        started = time.perf_counter()
        search("warm up the index")
        search("warm up", system="icd10pcs")
        results["index_build_seconds"] = round(time.perf_counter() - started, 1)
        timings, every = {}, []
        for kind, queries in QUERIES.items():
            samples = []
            for query in queries:
                took, _ = benchkit.measure(lambda q=query: search(q), repeat=args.repeat)
                samples += took
            timings[kind] = benchkit.summarize(samples)
            every += samples
        pcs = []
        for query in PCS_QUERIES:
            took, _ = benchkit.measure(
                lambda q=query: search(q, system="icd10pcs"), repeat=args.repeat
            )
            pcs += took
        timings["icd10pcs"] = benchkit.summarize(pcs)
        timings["all_icd10cm"] = benchkit.summarize(every)
        results["timings"] = timings
        path = benchkit.write_results("code-lookup", vendor, results)
        print(f"{vendor}: load {load_seconds:.1f} s, index {results['index_build_seconds']} s")
        for kind, row in timings.items():
            print(f"  {kind:12} p50 {row['median_ms']:7.1f} ms   p95 {row['p95_ms']:7.1f} ms")
        print(f"results: {path}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Run every benchmark in bench/ (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in bench/bench_*.py; do
  echo "== $bench =="
  .venv/bin/python "$bench" "$@"
done

#!/usr/bin/env bash
# Serve RecordRoom with a background worker beside it; stopping one stops both.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
rr=.venv/bin/recordroom
"$rr" worker &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT INT TERM
"$rr" runserver "$host:$port" --noreload

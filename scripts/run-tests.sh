#!/usr/bin/env bash
# The whole suite twice: on SQLite, then on a throw-away PostgreSQL cluster on loopback.
# Extra arguments go to pytest (e.g. `bash scripts/run-tests.sh -k audit`).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
artifacts=${RECORDROOM_TEST_ARTIFACTS:-test-artifacts}
mkdir -p "$artifacts"
export RECORDROOM_TEST_ARTIFACTS=$(cd "$artifacts" && pwd)

echo "== lint =="
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== migrations are in step with the models =="
RECORDROOM_DATA_DIR=$(mktemp -d) $py -m recordroom makemigrations --check --dry-run >/dev/null

echo "== tests on SQLite =="
unset DATABASE_URL
$py -m pytest -n 2 --dist loadgroup "$@"

echo "== tests on PostgreSQL =="
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pgdir=$(mktemp -d)
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$pgdir"
stop_pg() { run_pg "$pgbin/pg_ctl" -D "$pgdir/data" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap stop_pg EXIT
run_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U recordroom >/dev/null
run_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
export DATABASE_URL="postgres://recordroom@127.0.0.1:$port/postgres"
$py -m pytest -n 2 --dist loadgroup "$@"

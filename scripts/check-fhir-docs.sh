#!/usr/bin/env bash
# Run the examples of docs/fhir.md against a running RecordRoom (`make run`: demo data
# loaded, worker running): every ```sh block not marked `<!-- check-fhir-docs: skip … -->`,
# in order, in one shell, with 127.0.0.1:8000 changed to the address given. Stops at the
# first request that answers an error (curl --fail-with-body) or command that fails.
# Run from a checkout beside ../shared (the transaction example posts a Synthea bundle
# from ../shared/data/synthea-r4). Needs curl 7.76+, jq and python3.
# Usage: scripts/check-fhir-docs.sh [host:port]
set -euo pipefail
address=${1:-127.0.0.1:8000}
cd "$(dirname "$0")/.."
examples=$(mktemp)
trap 'rm -f "$examples"' EXIT
{
    echo 'set -eEuo pipefail'
    # Each request is named on stderr; an HTTP error fails the command.
    echo 'curl() { local a; for a in "$@"; do [[ $a == http* ]] && echo "  $a" >&2; done'
    echo '         command curl --fail-with-body --max-time 120 "$@"; }'
    echo 'trap '\''echo "FAILED: $BASH_COMMAND" >&2'\'' ERR'
    # The client-credentials example uses the client registered just before it.
    echo 'CLIENT_ID=demo-warehouse CLIENT_SECRET=recordroom-demo-client-2026'
    awk '
        /^<!-- check-fhir-docs: skip/ { skip = 1; next }
        /^```/ {
            if (inblock) { inblock = 0; run = 0 }
            else { inblock = 1; run = ($0 ~ /^```sh *$/) && !skip; skip = 0 }
            next
        }
        run { print; next }
        !inblock && NF { skip = 0 }
    ' docs/fhir.md | sed "s/127\.0\.0\.1:8000/$address/g"
} >"$examples"
timeout 600 bash "$examples" >/dev/null
echo "docs/fhir.md: every example ran against $address"

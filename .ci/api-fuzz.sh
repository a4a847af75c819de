#!/usr/bin/env bash
# schemathesis against a running `moat run` (memory backend, built-in
# generator): every operation of /api/v1/openapi.json, every check, a bounded
# number of examples. Exits non-zero on any failure.
#
#   .ci/api-fuzz.sh [MOAT_BINARY] [MAX_EXAMPLES]
#
# `st` is taken from $ST (default: `st` on PATH). Runs in a temporary folder
# (config, state, logs), removed at the end; the node is stopped by its PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
moat=${1:-$root/target/debug/moat}
examples=${2:-50}
st=${ST:-st}
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
sed -e 's/backend = "pcap"/backend = "memory"/' \
    -e 's|^cookie_secret_file = .*||' \
    -e "s|^state_dir = .*|state_dir = \"$dir/state\"|" \
    "$root/examples/offline.toml" > "$dir/moat.toml"
printf '\n[dataplane.memory]\npps = 20000\n\n[mgmt]\nlisten = "127.0.0.1:0"\n' >> "$dir/moat.toml"

MOAT_API_TOKEN=$token "$moat" run --config "$dir/moat.toml" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
addr=
for _ in $(seq 100); do
  addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/err.log" | sed 's|.*http://||' || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/err.log"; echo "moat run exited"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$dir/err.log"; echo "moat run did not start its API"; exit 1; }

# Bounded: examples per operation and phase, and the whole run by time.
timeout 600 "$st" --config-file "$root/.ci/schemathesis.toml" run "http://$addr/api/v1/openapi.json" \
  --checks all -H "Authorization: Bearer $token" \
  --max-examples "$examples" --seed 1 --workers 1

#!/usr/bin/env bash
# The management plane's demo: an attack detected, escalated and relaxed, its
# report with every dimension, and the webhooks a listener received. No NIC,
# no root: the memory backend with an attack phase (examples/attack-demo.toml).
#
#   examples/attack-demo.sh      (needs curl and python3; builds moat unless
#                                 MOAT names a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
moat=${MOAT:-target/release/moat}
[ -n "${MOAT:-}" ] || cargo build --release -q -p mgmt
state=/tmp/moat-attack-demo
rm -rf "$state"
export MOAT_API_TOKEN=attack-demo-token-0123456789
A=http://127.0.0.1:9180
H="Authorization: Bearer $MOAT_API_TOKEN"
python3 examples/webhook-listener.py 9099 >"$state.hooks" &
hook=$!
"$moat" run --config examples/attack-demo.toml --duration 22 --live >"$state.log" 2>&1 &
node=$!
trap 'kill $hook $node 2>/dev/null || true' EXIT
sleep 9
echo "== during the attack: GET /api/v1/attacks, /api/v1/signatures, moat_attacks_active"
curl -s -H "$H" $A/api/v1/attacks; echo
curl -s -H "$H" $A/api/v1/signatures; echo
curl -s -H "$H" $A/metrics | grep '^moat_attacks_active'
wait $node || true
uuid=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["attack_uuid"])' <"$state.hooks")
echo "== the webhooks received"
cat "$state.hooks"
echo "== the report ($state/attacks/$uuid.json), lists cut to 3"
python3 - "$state/attacks/$uuid.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("top_sources", "top_fingerprints", "top_dst_ports"):
    r[k] = r[k][:3]
r["timeline"]["points"] = r["timeline"]["points"][:3] + ["..."]
for k, v in r.items():
    print(f"{k}: {json.dumps(v)}")
PY
echo "== what moat printed"
grep -E " attack [0-9a-f-]+ on " "$state.log"

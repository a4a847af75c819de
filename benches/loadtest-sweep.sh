#!/usr/bin/env bash
# The flood sweep on the live test's netns topology: legitimate goodput
# under SYN, ACK, UDP-reflection and mixed floods, from no flood up to what
# this machine's veth and AF_PACKET path carry.
#
# tests/e2e/topology.sh builds the namespaces (clients and attacker in
# PREFIXinet, Moat's two ports in PREFIXmoat, OVS GRE endpoint and the HTTP
# origin in PREFIXorigin, answers by direct server return into PREFIXinet);
# Moat runs there with examples/e2e-netns.toml (service "web" on
# 203.0.113.10, challenge-ack). Then `moat loadtest sweep` runs one step per
# flood type and rate: generated clients from 10.10.0.100-10.10.0.199 (an
# address range the inet namespace's kernel does not own, so it ignores
# the origin's answers to them) and curl from the namespace's own 10.10.0.2
# and 10.10.0.4 fetch http://203.0.113.10/ while the flood runs, and Moat's
# API counters are read around each step. Moat's verified sources are
# flushed before each step, so every step's clients are challenged again.
#
# usage: benches/loadtest-sweep.sh [--short | --long] [--out DIR] [--plot]
#   --short   4 floods x 2 rates + a baseline, 3 s each (about a minute;
#             what mgmt/tests/loadtest.rs runs in CI)
#   --long    4 floods x 6 rates + a baseline, 8 s each (about 6 minutes):
#             the benchmark behind docs/loadtest-sweep.svg
#   --out DIR where loadtest-sweep.csv (and .svg with --plot) go
#             (default: the current folder)
# env: MOAT     the moat binary (default: target/release/moat, else
#               target/debug/moat)
#      RATES, FLOODS, STEP_SECS, CLIENTS override the form's values.
# Needs root, iproute2, Open vSwitch, curl, ethtool, python3 (see
# topology.sh). Everything it creates is removed on exit, on failure too;
# every flood is bounded by its step's time.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
form=short out=. plot=0
while [ $# -gt 0 ]; do
    case $1 in
    --short) form=short ;;
    --long) form=long ;;
    --out)
        out=$2
        shift
        ;;
    --plot) plot=1 ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
    shift
done

if [ -z "${MOAT:-}" ]; then
    MOAT=$root/target/release/moat
    [ -x "$MOAT" ] || MOAT=$root/target/debug/moat
fi
[ -x "$MOAT" ] || {
    echo "no moat binary at $MOAT: cargo build --release -p mgmt, or set MOAT" >&2
    exit 2
}

if [ "$form" = short ]; then
    rates=${RATES:-0,2000,20000} step=${STEP_SECS:-3} clients=${CLIENTS:-40}
else
    rates=${RATES:-0,2000,10000,30000,60000,100000,160000} step=${STEP_SECS:-8} clients=${CLIENTS:-100}
fi
floods=${FLOODS:-syn-flood,ack-flood,dns-reflection,mix}

mkdir -p "$out"
out=$(cd "$out" && pwd)
state=$(mktemp -d /tmp/moat-loadtest.XXXXXX)
prefix="moat-lt-$$-"
moat_pid=
cleanup() {
    if [ -n "$moat_pid" ] && kill -0 "$moat_pid" 2>/dev/null; then
        kill -TERM "$moat_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$moat_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$moat_pid" 2>/dev/null || true
    fi
    timeout -k 5 60 bash "$root/tests/e2e/topology.sh" down "$state/topo" "$prefix" || true
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout -k 5 120 bash "$root/tests/e2e/topology.sh" up "$state/topo" "$prefix"
# The example as shipped, its relative state_dir inside $state.
cp "$root/examples/e2e-netns.toml" "$state/moat.toml"
ip netns exec "${prefix}moat" "$MOAT" run --config "$state/moat.toml" >"$state/moat.log" 2>&1 &
moat_pid=$!
for _ in $(seq 300); do
    grep -q ' worker(s) on the ' "$state/moat.log" && [ -s "$state/state/api.token" ] && break
    kill -0 "$moat_pid" 2>/dev/null || {
        cat "$state/moat.log" >&2
        exit 1
    }
    sleep 0.1
done
grep -q ' worker(s) on the ' "$state/moat.log" || {
    echo "moat did not start in 30 s" >&2
    cat "$state/moat.log" >&2
    exit 1
}

timeout -k 10 3600 "$MOAT" loadtest sweep \
    --inet-ns "${prefix}inet" --moat-ns "${prefix}moat" \
    --token-file "$state/state/api.token" --flush-verified \
    --floods "$floods" --rates "$rates" --step-secs "$step" \
    --csv "$out/loadtest-sweep.csv" \
    -- --iface inet0 --rx-iface dsr0 --src 10.10.0.100-10.10.0.199 \
    --vip 203.0.113.10 --gateway 10.10.0.1 --clients "$clients" \
    --think-ms 250 --timeout 4 --curl 10.10.0.2 --curl 10.10.0.4

if [ "$plot" = 1 ]; then
    "$MOAT" loadtest plot --csv "$out/loadtest-sweep.csv" --out "$out/loadtest-sweep.svg"
fi

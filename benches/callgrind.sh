#!/usr/bin/env bash
# Instructions per packet of `classify` for each generated profile, and of
# the whole worker loop for the `moat bench` workloads, counted
# by callgrind (repeatable where wall-clock time is not). Each profile runs
# twice, N and 2N packets over the same 4096 frames; the difference divided
# by N is the per-packet cost of the loop body alone (generation and set-up
# cancel out).
#
#   benches/callgrind.sh [N]        (default N = 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
cargo build --release --quiet -p benches --example classify_loop
bin=target/release/examples/classify_loop
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-22s %s\n' profile instructions/packet
for p in syn-flood ack-flood rst-flood udp-flood dns-reflection ntp-reflection memcached-reflection frag malformed legit; do
  a=$(count "$p" "$n")
  b=$(count "$p" $((2 * n)))
  printf '%-22s %d\n' "$p" $(((b - a) / n))
done

# The whole worker loop (`moat bench --packets`): memory backend RX (copy
# into the pool frame, spoofed source), pipeline in place, TX, counters.
cargo build --release --quiet -p mgmt
moat=target/release/moat
loop_count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$moat" bench --workload "$1" --packets "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '\n%-22s %s\n' "worker loop" instructions/packet
for w in syn-flood ack-flood clean; do
  a=$(loop_count "$w" "$n")
  b=$(loop_count "$w" $((2 * n)))
  printf '%-22s %d\n' "$w" $(((b - a) / n))
done

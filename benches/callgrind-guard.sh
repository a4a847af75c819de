#!/usr/bin/env bash
# CI guard on the hot path: instructions per packet of the worker loop
# (benches/examples/worker_loop.rs: the loop of `moat bench --workload W
# --packets N` without the management plane) for the ACK-flood, SYN-flood
# and clean workloads, counted by callgrind, which is repeatable for a given
# binary and input where wall-clock figures are not. Each workload runs
# twice, N and 2N packets; the difference divided by N is the per-packet
# cost of the loop alone (start-up and template generation cancel out).
# Fails when a workload exceeds its budget in benches/callgrind-budget.txt.
#
#   benches/callgrind-guard.sh [N]     (default N = 100000: past the 65,536
# entries of each table, so that the floods are measured in steady state,
# evictions included)
#
# Builds only classifier, dataplane and the example (release profile), not
# mgmt. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
budget=benches/callgrind-budget.txt
command -v valgrind >/dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --locked --quiet -p benches --example worker_loop
bin=${CARGO_TARGET_DIR:-target}/release/examples/worker_loop
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
fail=0
printf '%-10s %12s %8s\n' workload instr/packet budget
while read -r w limit; do
  case "$w" in '' | '#'*) continue ;; esac
  a=$(count "$w" "$n")
  b=$(count "$w" $((2 * n)))
  per=$(((b - a) / n))
  verdict=ok
  if [ "$per" -gt "$limit" ]; then
    verdict="OVER BUDGET"
    fail=1
  fi
  printf '%-10s %12d %8d  %s\n' "$w" "$per" "$limit" "$verdict"
done <"$budget"
if [ "$fail" = 1 ]; then
  echo "the hot path costs more instructions per packet than $budget allows:" >&2
  echo "find what grew with benches/callgrind.sh and callgrind_annotate, or raise the budget with a reason" >&2
  exit 1
fi

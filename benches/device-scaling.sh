#!/usr/bin/env bash
# Multi-core scaling of the worker loop (issue 12): `moat bench` with 1, 2,
# 4, 8 and 14 workers on each workload, for a many-core machine that has no
# Rust toolchain (the device machine of this project's sessions): build the
# release binary here, carry it there, run this one script.
#
#   benches/device-scaling.sh [MOAT] [SECONDS]
#     MOAT     the release binary (default target/release/moat)
#     SECONDS  per measurement (default 3)
#
# Prints the machine, then `moat bench`'s table per workload (Mpps per
# worker and in total for each worker count) and the scaling factor: the
# total rate at the largest count over the rate of one worker. Needs no
# root, NIC or DPDK (memory backend).
set -euo pipefail
moat=${1:-target/release/moat}
secs=${2:-3}
counts=1,2,4,8,14
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
for w in ack-flood syn-flood clean; do
  echo "== $w"
  "$moat" bench --workload "$w" --worker-counts "$counts" --seconds "$secs" | tee "$tmp"
  # Rows: workload workers "Mpps total" ...
  awk -v w="$w" '$1 == w && $2 ~ /^[0-9]+$/ { if (!one) one = $3; n = $2; last = $3 }
    END { if (one > 0) printf "%s: %d workers give %.2f x one worker (%.3f -> %.3f Mpps)\n", w, n, last / one, one, last }' "$tmp"
done

#!/usr/bin/env bash
# Moat's DPDK backend against dpdk-testpmd on the same frames, in the same
# run, one forwarding core each (DESIGN.md, "Performance targets"):
#
#   workload    Moat does                          testpmd mode   target
#   ack-flood   drops every packet (no flow)        rxonly         >= 60 %
#   syn-flood   answers every SYN with a challenge  5tswap         >= 75 %
#   clean       re-injects every packet through GRE csum           >= 60 %
#
# Both replay the frames of `moat bench --export-dpdk` from a `net_pcap`
# device with `infinite_rx=1` (DPDK copies each frame from memory into a
# fresh mbuf, the same cost for both) and transmit into /dev/null through
# the same PMD. Rates are the median of the per-second figures after a
# two-second warm-up: Moat's `--live` line, testpmd's `--stats-period`.
# Then, with CALLGRIND=1, instructions per packet of Moat's worker loop
# (the PMD's RX/TX included) counted by callgrind; with CG_DIR=DIR as well,
# the callgrind profiles are kept there (DIR/WORKLOAD.cg, and the packet
# count in DIR/WORKLOAD.packets) for `callgrind_annotate --inclusive=yes`
# and benches/dpdk-breakdown.sh. CALLGRIND=1 also counts testpmd's own
# instructions per packet in each mode, the floor the ratio is taken
# against: testpmd is stripped, so it runs twice under callgrind, for
# TESTPMD_CG_SECS (default 30) and twice that, and the difference in
# instructions is divided by the difference in packets (start-up cancels
# out).
#
#   benches/dpdk-vs-testpmd.sh [SECONDS]     (default 8; root; needs a
#   `moat` built with `--features dpdk` in MOAT, default target/release/moat,
#   and dpdk-testpmd from Debian's dpdk-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
moat=${MOAT:-target/release/moat}
templates=${TEMPLATES:-8192}
mbufs=$((templates * 2 + 4096))
dir=$(mktemp -d /tmp/moat-testpmd.XXXXXX)
trap 'rm -rf "$dir"' EXIT

command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (apt-get install dpdk-dev)" >&2; exit 1; }
"$moat" bench --export-dpdk "$dir" --templates "$templates" >/dev/null

# Median of the numbers on stdin after skipping the first two.
median() { tail -n +3 | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else print v[int((NR + 1) / 2)]}'; }

testpmd_mpps() { # workload mode
  timeout -s INT $((secs + 3)) dpdk-testpmd --no-huge -m 512 --no-pci --no-shconf --file-prefix "tp-$1" -l 0,1 \
    --vdev "net_pcap0,rx_pcap=$dir/$1.pcap,infinite_rx=1,tx_pcap=/dev/null" -- \
    --no-flush-rx --forward-mode="$2" --port-topology=loop --stats-period=1 --total-num-mbufs="$mbufs" \
    </dev/null >"$dir/$1.testpmd.log" 2>&1 || true
  sed -n 's/.*Rx-pps: *\([0-9]*\).*/\1/p' "$dir/$1.testpmd.log" | median | awk '{printf "%.3f", $1 / 1e6}'
}

moat_mpps() { # workload
  "$moat" run --config "$dir/$1.toml" --live --duration $((secs + 1)) >"$dir/$1.moat.log" 2>&1 ||
    { cat "$dir/$1.moat.log" >&2; exit 1; }
  awk '/^in / { v = $2; if ($3 == "kpps") v /= 1000; print v }' "$dir/$1.moat.log" | median | awk '{printf "%.3f", $1}'
}

echo "Moat (DPDK backend, 1 worker) vs dpdk-testpmd (1 forwarding core), net_pcap infinite_rx, ${templates} frames, ${secs} s each"
echo "CPU: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
printf '%-10s %10s %10s %-8s %12s %7s %7s\n' workload "Moat Mpps" ns/packet mode "testpmd Mpps" ratio target
for row in "ack-flood rxonly 60" "syn-flood 5tswap 75" "clean csum 60"; do
  set -- $row
  m=$(moat_mpps "$1")
  t=$(testpmd_mpps "$1" "$2")
  awk -v w="$1" -v m="$m" -v mode="$2" -v t="$t" -v target="$3" 'BEGIN {
    printf "%-10s %10.3f %10.1f %-8s %12.3f %6.0f%% %6d%%\n", w, m, (m > 0 ? 1000 / m : 0), mode, t, (t > 0 ? 100 * m / t : 0), target }'
done

if [ "${CALLGRIND:-0}" = 1 ]; then
  echo
  echo "instructions per packet of Moat's worker loop (callgrind, PMD RX/TX included)"
  for w in ack-flood syn-flood clean; do
    valgrind --tool=callgrind --callgrind-out-file="$dir/$w.cg" --toggle-collect='dataplane::runtime::worker::run*' \
      "$moat" run --config "$dir/$w.toml" --duration 20 --stats "$dir/$w.stats.json" >"$dir/$w.cg.log" 2>&1 ||
      { tail -20 "$dir/$w.cg.log" >&2; exit 1; }
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/$w.cg.log")
    pk=$(sed -n 's/^  "rx_packets": \([0-9]*\).*/\1/p' "$dir/$w.stats.json" | head -1)
    awk -v w="$w" -v ir="$ir" -v pk="$pk" 'BEGIN { printf "%-10s %8.0f  (%d packets)\n", w, ir / pk, pk }'
    if [ -n "${CG_DIR:-}" ]; then
      cp "$dir/$w.cg" "$CG_DIR/$w.cg"
      echo "$pk" >"$CG_DIR/$w.packets"
    fi
  done

  echo
  echo "instructions per packet of dpdk-testpmd (callgrind, two runs, the difference)"
  cg_secs=${TESTPMD_CG_SECS:-30}
  testpmd_cg() { # workload mode seconds -> "instructions packets"
    timeout -s INT "$3" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      dpdk-testpmd --no-huge -m 512 --no-pci --no-shconf --file-prefix "tpcg-$1-$3" -l 0,1 \
      --vdev "net_pcap0,rx_pcap=$dir/$1.pcap,infinite_rx=1,tx_pcap=/dev/null" -- \
      --no-flush-rx --forward-mode="$2" --port-topology=loop --stats-period=1 --total-num-mbufs="$mbufs" \
      </dev/null >"$dir/$1.tpcg.log" 2>&1 || true
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$dir/$1.tpcg.log")
    # The last figure is the accumulated total printed at exit.
    pk=$(sed -n 's/.*RX-packets: *\([0-9]*\).*/\1/p' "$dir/$1.tpcg.log" | tail -1)
    echo "${ir:-0} ${pk:-0}"
  }
  for row in "ack-flood rxonly" "syn-flood 5tswap" "clean csum"; do
    set -- $row
    read -r a pa < <(testpmd_cg "$1" "$2" "$cg_secs")
    read -r b pb < <(testpmd_cg "$1" "$2" $((2 * cg_secs)))
    awk -v w="$1" -v m="$2" -v a="$a" -v b="$b" -v pa="$pa" -v pb="$pb" 'BEGIN {
      if (pb > pa) printf "%-10s %-7s %8.0f  (%d packets more in the longer run)\n", w, m, (b - a) / (pb - pa), pb - pa
      else printf "%-10s %-7s no packets counted (see the testpmd log)\n", w, m }'
  done
fi

#!/usr/bin/env bash
# Where the instructions of Moat's DPDK worker loop go, per packet and
# part, from the callgrind profiles that `CALLGRIND=1 CG_DIR=DIR
# benches/dpdk-vs-testpmd.sh` keeps (DIR/WORKLOAD.cg, DIR/WORKLOAD.packets):
#
#   part        what it is, in the profile
#   pmd-rx      rte_eth_rx_burst, inclusive (net_pcap: an mbuf and a copy per frame)
#   wrap        Moat's rx_burst, inclusive, less pmd-rx (wrapping the mbufs)
#   free        rte_pktmbuf_free_bulk, inclusive (dropped frames)
#   pmd-tx      rte_eth_tx_burst, inclusive (net_pcap: libpcap writes each frame)
#   parse       the lines of classifier/src/parse.rs and wire/mod.rs, wherever inlined
#   classify    classify_hashed, inclusive
#   executor    Core::process, inclusive, less parse and classify (counters,
#               dispatch, the answer or the GRE header written in place)
#   loop        worker::run less all of the above (sampling, bus, ticks, sweeps)
#
#   benches/dpdk-breakdown.sh DIR     (needs valgrind's callgrind_annotate)
set -euo pipefail
dir=${1:?usage: $0 CG_DIR}
command -v callgrind_annotate >/dev/null || { echo "callgrind_annotate not found (apt-get install valgrind)" >&2; exit 1; }
printf '%-10s %7s %6s %6s %6s %6s %6s %8s %8s %6s\n' workload total pmd-rx wrap free pmd-tx parse classify executor loop
for w in ack-flood syn-flood clean; do
  [ -f "$dir/$w.cg" ] || continue
  n=$(cat "$dir/$w.packets")
  # Inclusive cost per function (file:function, binary suffix dropped),
  # divided by the packets.
  incl=$(callgrind_annotate --inclusive=yes "$dir/$w.cg" 2>/dev/null | grep '%)' |
    sed -E 's/^ *([0-9,]+) \( *[0-9.]+%\) +(.*)$/\1\t\2/; s/,//g; s/ \[[^]]*\]$//' |
    awk -F'\t' -v n="$n" '$2 !~ /^=>/ { if (!($2 in a) || $1 > a[$2]) a[$2] = $1 } END { for (k in a) printf "%s\t%.1f\n", k, a[k] / n }')
  # Largest inclusive cost of a function whose name matches $1.
  f() { printf '%s\n' "$incl" | awk -F'\t' -v re="$1" '$1 ~ re { if ($2 > m) m = $2 } END { printf "%.1f", m + 0 }'; }
  total=$(f 'worker\.rs:dataplane::runtime::worker::run$')
  rx=$(f 'DpdkQueues as dataplane::port::Queues>::rx_burst$')
  pmdrx=$(f ':rte_eth_rx_burst__extern$')
  free=$(f ':rte_pktmbuf_free_bulk$')
  pmdtx=$(f ':rte_eth_tx_burst__extern$')
  process=$(f 'pipeline\.rs:dataplane::pipeline::Core::process$')
  classify=$(f 'classify\.rs:classifier::classify::classify_hashed$')
  # Self cost of the parse lines, wherever the compiler inlined them.
  parse=$(callgrind_annotate --auto=yes --show-percs=no "$dir/$w.cg" 2>/dev/null | awk -v n="$n" '
    /^-- Auto-annotated source:/ { on = ($4 ~ /classifier\/src\/(parse|wire\/mod)\.rs$/); next }
    /^-- (User|Auto|Annotated|Unannotated)/ { on = 0 }
    on && $0 !~ /=>/ && $1 ~ /^[0-9,]+$/ { c = $1; gsub(",", "", c); s += c }
    END { printf "%.1f", s / n }')
  awk -v w="$w" -v t="$total" -v rx="$rx" -v prx="$pmdrx" -v fr="$free" -v ptx="$pmdtx" \
    -v pr="$process" -v cl="$classify" -v pa="$parse" 'BEGIN {
    printf "%-10s %7.0f %6.0f %6.0f %6.0f %6.0f %6.0f %8.0f %8.0f %6.0f\n",
      w, t, prx, rx - prx, fr, ptx, pa, cl, pr - pa - cl, t - rx - fr - ptx - pr }'
done

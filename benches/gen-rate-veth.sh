#!/usr/bin/env bash
# `moat gen --iface` at full speed into a veth pair in a namespace of its
# own (nothing listens on the peer: the kernel drops the frames there, on
# the sender's core, as part of the send): the AF_PACKET path's rate with
# 1 and 2 sender threads, RUNS runs of SECS seconds each, medians shown:
# frames a second (wall clock) and the process's CPU time (user + system,
# GNU time) per frame, the steadier figure where other processes share
# the cores.
#
# usage: benches/gen-rate-veth.sh [MOAT] [SECS] [RUNS] [PROFILE...]
#   MOAT     the binary (default target/release/moat)
#   SECS     seconds per run (default 3)
#   RUNS     runs per setting (default 3)
#   PROFILE  generator profiles (default syn-flood udp-flood mix)
# Root only. The namespace is deleted on exit, whatever happens.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

MOAT=${1:-target/release/moat}
SECS=${2:-3}
RUNS=${3:-3}
shift $(($# < 3 ? $# : 3))
PROFILES=("$@")
[ ${#PROFILES[@]} -gt 0 ] || PROFILES=(syn-flood udp-flood mix)

NS=moat-genrate-$$
TMP=$(mktemp)
trap 'ip netns del "$NS" 2>/dev/null || true; rm -f "$TMP"' EXIT
ip netns add "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
ip -n "$NS" link add name ga type veth peer name gb
for d in ga gb; do
  ip netns exec "$NS" ethtool -K "$d" rx off tx off tso off gso off gro off >/dev/null
  ip -n "$NS" link set "$d" up
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for profile in "${PROFILES[@]}"; do
  for threads in 1 2; do
    rates=()
    cpu=()
    for _ in $(seq "$RUNS"); do
      # stdout: "sent N packets (B bytes) on ga in S s: R pps, M Mbit/s; E errors";
      # stderr's last line: GNU time's "USER SYS" seconds.
      out=$(ip netns exec "$NS" /usr/bin/time -f '%U %S' "$MOAT" gen --iface ga --profile "$profile" \
        --pps max --duration "$SECS" --threads "$threads" 2>"$TMP")
      line=$(echo "$out" | grep '^sent ')
      sent=$(echo "$line" | awk '{ print $2 }')
      rates+=("$(echo "$line" | awk '{ print $(NF-5) }')")
      cpu+=("$(tail -1 "$TMP" | awk -v n="$sent" '{ printf "%.0f", ($1 + $2) * 1e9 / n }')")
    done
    r=$(printf '%s\n' "${rates[@]}" | median)
    c=$(printf '%s\n' "${cpu[@]}" | median)
    printf '%-12s %d thread(s): %8s pps, %6s ns CPU/frame (medians; runs: %s pps; %s ns)\n' \
      "$profile" "$threads" "$r" "$c" "${rates[*]}" "${cpu[*]}"
  done
done

#!/usr/bin/env bash
# The BGP topology of `mgmt/tests/cluster_bgp.rs`: an upstream router and
# one scrubbing node, each in its own network namespace with its own BIRD 2
# (docs/cluster/bird-router.conf and bird-node.conf, as shipped), each BIRD
# with its control socket and PID file under STATE_DIR.
#
#  ns PREFIXr (router)                      ns PREFIXn (node)
#  rbgp1 192.0.2.1/30  ◄──── veth ────►  nbgp 192.0.2.2/30   eBGP AS64500 ⇄ AS64501
#  rout 198.51.100.1/24 ◄─── veth ────►  out0 (no address: Moat's outside
#                                             port, 198.51.100.11 answered by Moat's ARP)
#                                        in0 ◄─ veth ─► in0p (Moat's inside port,
#                                             no address; the origin has a static MAC)
#                                        moat0: created by Moat (liveness TAP)
#  bird (router config)                  bird (node config), moat run
#
# IPv6 is off in both namespaces (no router solicitations or DAD on the
# links). The node's BIRD starts with moat_vips disabled; only Moat
# enables it.
#
# usage: bgp-topology.sh up   STATE_DIR PREFIX
#        bgp-topology.sh down STATE_DIR PREFIX
# `down` is idempotent and never fails: it is the test's cleanup.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

HERE=$(cd "$(dirname "$0")" && pwd)
CONFS=$HERE/../../docs/cluster

cmd=${1:?usage: bgp-topology.sh up|down STATE_DIR PREFIX}
state=${2:?state dir}
prefix=${3:?namespace prefix}
R=${prefix}r
N=${prefix}n

down() {
  for who in router node; do
    pidfile=$state/bird-$who.pid
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  for ns in "$R" "$N"; do ip netns del "$ns" 2>/dev/null || true; done
}

up() {
  mkdir -p "$state"
  ip netns add "$R"
  ip netns add "$N"
  for ns in "$R" "$N"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip link add "${prefix}b" type veth peer name "${prefix}bn"
  ip link set "${prefix}b" netns "$R" name rbgp1
  ip link set "${prefix}bn" netns "$N" name nbgp
  ip link add "${prefix}o" type veth peer name "${prefix}on"
  ip link set "${prefix}o" netns "$R" name rout
  ip link set "${prefix}on" netns "$N" name out0
  ip -n "$N" link add in0 type veth peer name in0p
  ip -n "$R" addr add 192.0.2.1/30 dev rbgp1
  ip -n "$R" addr add 198.51.100.1/24 dev rout
  ip -n "$N" addr add 192.0.2.2/30 dev nbgp
  for l in rbgp1 rout; do ip -n "$R" link set "$l" up; done
  for l in nbgp out0 in0 in0p; do ip -n "$N" link set "$l" up; done
  ip netns exec "$R" bird -c "$CONFS/bird-router.conf" -s "$state/bird-router.ctl" -P "$state/bird-router.pid"
  ip netns exec "$N" bird -c "$CONFS/bird-node.conf" -s "$state/bird-node.ctl" -P "$state/bird-node.pid"
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: bgp-topology.sh up|down STATE_DIR PREFIX" >&2; exit 2 ;;
esac

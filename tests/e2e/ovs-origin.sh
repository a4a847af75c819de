#!/usr/bin/env bash
# The origin side of Moat's end-to-end GRE test, built from scratch and torn
# down again by `mgmt/tests/e2e_gre_origin.rs`:
#
#   ns MOAT_NS                      ns ORIGIN_NS
#   veth-mo  <──── veth pair ────>  veth-or ─ br-phy (OVS, netdev, 192.168.77.2,
#   (tcpreplay of Moat's GRE        own MAC)   GRE endpoint)
#    output, no address)                        │ tunnel pop, key KEY
#                                   br-int (OVS, netdev): gre0 ─► LOCAL tap
#                                   (VIP 203.0.113.10 + 2001:db8::10, UDP server :7777)
#
# The GRE endpoint is Open vSwitch's userspace datapath (the kernel here has
# no GRE module): a private ovsdb-server and ovs-vswitchd run inside ORIGIN_NS
# with every file under STATE_DIR, never the system service.
#
# usage: ovs-origin.sh up   STATE_DIR MOAT_NS ORIGIN_NS BR_PHY_MAC [GRE_KEY]
#        ovs-origin.sh down STATE_DIR MOAT_NS ORIGIN_NS
# `down` is idempotent and never fails: it is the test's cleanup.
set -euo pipefail
# ovs-vswitchd and ovsdb-server live in /usr/sbin, not always on a test's PATH.
export PATH=$PATH:/usr/sbin:/sbin

TUNNEL_LOCAL=192.168.77.2/24
TUNNEL_REMOTE=192.168.77.1
VIP4=203.0.113.10
VIP6=2001:db8::10
UDP_PORT=7777
# br-int's MAC: decapsulated packets are rewritten to it so that the kernel
# takes them as addressed to the tap (otherwise PACKET_OTHERHOST, dropped).
BR_INT_MAC=02:00:00:00:77:fe

cmd=$1 dir=$2 mo=$3 or=$4

# Every OVS tool finds the private daemons through these.
export OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir OVS_SYSCONFDIR=$dir OVS_PKGDATADIR=/usr/share/openvswitch
db=unix:$dir/db.sock
vsctl() { ovs-vsctl --db="$db" --timeout=10 "$@"; }
in_or() { ip netns exec "$or" "$@"; }

# named, stop_pid
. "$(dirname "$0")/lib.sh"

down() {
    stop_pid "$dir/udp-server.pid" udp-server.py
    stop_pid "$dir/ovs-vswitchd.pid" ovs-vswitchd
    stop_pid "$dir/ovsdb-server.pid" ovsdb-server
    ip netns del "$or" 2>/dev/null || true
    ip netns del "$mo" 2>/dev/null || true
}

up() {
    local phy_mac=$1 key=${2:-}
    mkdir -p "$dir"
    ip netns add "$mo"
    ip netns add "$or"
    # Created straight inside the namespaces: no name clash in the host's.
    ip link add veth-mo netns "$mo" type veth peer name veth-or netns "$or"
    for ns in "$mo" "$or"; do
        ip netns exec "$ns" ip link set lo up
        # Decapsulated sources (clients all over the Internet) have no route
        # back here: strict reverse-path filtering would drop them.
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    done
    ip netns exec "$mo" ip link set veth-mo up
    # No address on veth-or: the kernel must not take the GRE frames itself
    # (it would answer "protocol unreachable"); OVS reads them off the veth.
    in_or ip link set veth-or up

    ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    in_or ovsdb-server "$dir/conf.db" --remote=punix:"$dir/db.sock" --unixctl="$dir/ovsdb-server.ctl" \
        --pidfile="$dir/ovsdb-server.pid" --log-file="$dir/ovsdb-server.log" -vconsole:warn --detach --no-chdir
    vsctl --no-wait init
    in_or ovs-vswitchd "$db" --unixctl="$dir/ovs-vswitchd.ctl" --pidfile="$dir/ovs-vswitchd.pid" \
        --log-file="$dir/ovs-vswitchd.log" -vconsole:warn --detach --no-chdir

    # br-phy owns the veth and the tunnel address. Its own MAC (Moat's
    # origin `mac`), not the veth's: see veth-or above.
    vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev other-config:hwaddr="$phy_mac" \
        -- add-port br-phy veth-or
    in_or ip addr add "$TUNNEL_LOCAL" dev br-phy
    in_or ip link set br-phy up

    # br-int: the GRE port. Moat sends IP in GRE (protocol type 0x0800 or
    # 0x86DD, RFC 2784 §2.4), not Ethernet in GRE, hence legacy_l3.
    local keyopt=()
    [ -n "$key" ] && keyopt=(options:key="$key")
    vsctl add-br br-int -- set bridge br-int datapath_type=netdev other-config:hwaddr="$BR_INT_MAC" \
        -- add-port br-int gre0 -- set interface gre0 type=gre options:remote_ip="$TUNNEL_REMOTE" \
        options:packet_type=legacy_l3 "${keyopt[@]}"
    in_or ip addr add "$VIP4/32" dev br-int
    in_or ip addr add "$VIP6/128" dev br-int nodad
    in_or ip link set br-int up
    # Inner packets come out of gre0 with a dummy Ethernet header: address
    # them to the tap so the kernel delivers them to the VIP.
    ovs-ofctl del-flows br-int
    ovs-ofctl add-flow br-int "in_port=gre0,actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"

    # Ready when OVS listens for GRE on the tunnel address behind br-phy's
    # MAC (it learns addresses from netlink, asynchronously).
    local want="eth(dst=$phy_mac),eth_type(0x0800),ipv4(dst=${TUNNEL_LOCAL%/*},proto=47"
    for _ in $(seq 100); do
        ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" && break
        sleep 0.1
    done
    ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" ||
        { echo "OVS does not listen for GRE on $want" >&2; return 1; }

    # The real server: logs "<source> <port> <payload hex>" per datagram and
    # writes its own pid file (python3 may be a wrapper script that forks).
    in_or python3 "$(dirname "$0")/udp-server.py" "$VIP4" "$VIP6" "$UDP_PORT" "$dir/udp-server.log" \
        "$dir/udp-server.pid" </dev/null >"$dir/udp-server.out" 2>&1 &
    for _ in $(seq 100); do
        grep -qs '^ready' "$dir/udp-server.out" && return 0
        sleep 0.1
    done
    echo "udp-server.py did not start:" >&2
    cat "$dir/udp-server.out" >&2
    return 1
}

case $cmd in
up) up "${@:5}" ;;
down) down ;;
*) echo "usage: $0 up|down STATE_DIR MOAT_NS ORIGIN_NS [BR_PHY_MAC [GRE_KEY]]" >&2; exit 2 ;;
esac

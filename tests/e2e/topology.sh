#!/usr/bin/env bash
# The live end-to-end topology of `mgmt/tests/e2e_live.rs`: three network
# namespaces, Moat's two ports with no kernel address, a real GRE endpoint,
# real servers at the origin and a direct-server-return link.
#
#  ns PREFIXinet                 ns PREFIXmoat                ns PREFIXorigin
#  client   10.10.0.2/24         (moat run, AF_PACKET)         or0 ─ br-phy (OVS netdev, own MAC,
#  attacker 10.10.0.3/24         out0, in0: no address,            192.168.77.2/24, GRE endpoint)
#  client2  10.10.0.4/24         no IPv6
#  client3  10.10.0.5/24
#  client6  2001:db8:10::2/64
#  inet0 ◄──── veth ────────────► out0                               │ tunnel pop (gre0, legacy_l3)
#                                in0 ◄──────── veth ───────────► or0  br-int (OVS netdev): gre0 ─► LOCAL
#  203.0.113.0/24 via 10.10.0.1                                    tap with VIPs 203.0.113.10, .11,
#  2001:db8::/64 via 2001:db8:10::1                                2001:db8::10: HTTP :80, UDP :7777
#  (Moat answers its ARP and ND)
#  dsr0 10.20.0.2/30 ◄──────── veth (direct server return) ──────► dsr0 10.20.0.1/30
#       fd00:20::2/64                                                   fd00:20::1/64
#                                                                  10.10.0.0/24 via 10.20.0.2
#                                                                  2001:db8:10::/64 via fd00:20::2
#
# br-int counts decapsulated packets by source in OpenFlow rules (all
# deliver to the kernel): cookie 0x1 for the clients 10.10.0.2, 10.10.0.4,
# 10.10.0.5 and 2001:db8:10::2 (one rule each), cookie 0x2 (lower priority)
# for every other source. `ovs-ofctl dump-flows br-int` with
# OVS_RUNDIR=STATE_DIR reads them.
#
# IPv6 is on only where the IPv6 client's traffic goes: inet0 and both dsr0
# ends, and the origin's br-int (the VIP). Each of them is configured before
# IPv6 is enabled on it so that its kernel sends no router solicitation and
# runs no duplicate address detection (accept_ra=0, router_solicitations=0,
# dad_transmits=0, accept_dad=0); what inet0's kernel still sends Moat
# (MLD reports, neighbour solicitations for 2001:db8:10::1) is dropped as
# no_service / answered by Moat, and counted under reasons no scenario
# before (g) asserts on.
#
# The GRE endpoint is Open vSwitch's userspace datapath (the CI kernel has no
# GRE module): a private ovsdb-server and ovs-vswitchd run inside the origin
# namespace with every file under STATE_DIR, never the system service.
#
# usage: topology.sh up   STATE_DIR PREFIX [GRE_KEY]
#        topology.sh down STATE_DIR PREFIX
# `down` is idempotent and never fails: it is the test's cleanup. Files under
# STATE_DIR after `up`: www/index.html (the served file), http-server.log
# ("<client> <port> <method> <path>" per request), udp-server.log
# ("<source> <port> <payload hex>" per datagram), the OVS logs.
set -euo pipefail
# ovs-vswitchd, ovsdb-server, ip, ethtool live in /usr/sbin.
export PATH=$PATH:/usr/sbin:/sbin

CLIENT=10.10.0.2/24
ATTACKER=10.10.0.3/24
# A second client: SYN authentication verifies a source for a while, so each
# SYN-auth mode needs a client of its own to be seen at work.
CLIENT2=10.10.0.4/24
# A third client, first seen during the SYN flood (challenged under attack).
CLIENT3=10.10.0.5/24
MOAT_OUTSIDE=10.10.0.1
VIP_NET=203.0.113.0/24
# .12 serves the load test's service without SYN authentication
# (mgmt/tests/loadtest.rs); e2e_live does not use it.
VIPS=(203.0.113.10 203.0.113.11 203.0.113.12)
TUNNEL_LOCAL=192.168.77.2/24
TUNNEL_REMOTE=192.168.77.1
DSR_ORIGIN=10.20.0.1/30
DSR_INET=10.20.0.2
CLIENT_NET=10.10.0.0/24
CLIENT6=2001:db8:10::2/64
MOAT_OUTSIDE6=2001:db8:10::1
VIP6_NET=2001:db8::/64
VIP6=2001:db8::10
DSR6_ORIGIN=fd00:20::1/64
DSR6_INET=fd00:20::2
CLIENT6_NET=2001:db8:10::/64
UDP_PORT=7777
HTTP_PORT=80
# br-phy's own MAC (not the veth's: see or0 below) and br-int's (decapsulated
# packets are rewritten to it so the kernel takes them as addressed to the
# tap, not PACKET_OTHERHOST).
BR_PHY_MAC=02:00:00:00:77:02
BR_INT_MAC=02:00:00:00:77:fe

cmd=${1:-} dir=${2:-} prefix=${3:-}
[ -n "$dir" ] && [ -n "$prefix" ] || {
    echo "usage: $0 up|down STATE_DIR PREFIX [GRE_KEY]" >&2
    exit 2
}
inet=${prefix}inet moat=${prefix}moat origin=${prefix}origin

export OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir OVS_SYSCONFDIR=$dir OVS_PKGDATADIR=/usr/share/openvswitch
db=unix:$dir/db.sock
vsctl() { ovs-vsctl --db="$db" --timeout=10 "$@"; }
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# named, stop_pid
. "$(dirname "$0")/lib.sh"

down() {
    stop_pid "$dir/http-server.pid" http-server.py
    stop_pid "$dir/udp-server.pid" udp-server.py
    stop_pid "$dir/ovs-vswitchd.pid" ovs-vswitchd
    stop_pid "$dir/ovsdb-server.pid" ovsdb-server
    # Deleting a namespace deletes its veth ends, and with them their peers.
    for ns in "$inet" "$moat" "$origin"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Turns IPv6 on for interface $2 of namespace $1, quietly: no router
# solicitations, no RA processing, no duplicate address detection (set
# before IPv6 comes up, so that not even the link-local address is probed).
ipv6_quiet() {
    local ns=$1 ifc=$2
    in_ns "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_ra=0" "net.ipv6.conf.$ifc.router_solicitations=0" \
        "net.ipv6.conf.$ifc.dad_transmits=0" "net.ipv6.conf.$ifc.accept_dad=0" \
        "net.ipv6.conf.$ifc.disable_ipv6=0"
}

# Waits up to 10 s for "ready" in file $1 (a server's stdout).
wait_ready() {
    for _ in $(seq 100); do
        grep -qs '^ready' "$1" && return 0
        sleep 0.1
    done
    echo "$1: server did not start:" >&2
    cat "$1" >&2
    return 1
}

up() {
    local key=${1:-}
    mkdir -p "$dir/www"
    for ns in "$inet" "$moat" "$origin"; do
        ip netns add "$ns"
        in_ns "$ns" ip link set lo up
        # Asymmetric paths everywhere (direct server return, decapsulated
        # sources with no route back through the tunnel): no reverse-path
        # filtering. Set before the links exist so that they inherit it.
        in_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    done
    # Moat's ports carry no kernel address and no IPv6: the kernel of the
    # Moat namespace sends nothing on its own (no router solicitations, no
    # MLD reports), so every frame on them is Moat's.
    in_ns "$moat" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

    # Created straight inside the namespaces: no name clash in the host's.
    ip link add inet0 netns "$inet" type veth peer name out0 netns "$moat"
    ip link add in0 netns "$moat" type veth peer name or0 netns "$origin"
    ip link add dsr0 netns "$origin" type veth peer name dsr0 netns "$inet"

    # Offloads off on both ends of every veth: AF_PACKET readers (Moat, OVS)
    # would otherwise see unfinished checksums and unsegmented super-frames.
    local ns ifc
    for pair in "$inet:inet0" "$moat:out0" "$moat:in0" "$origin:or0" "$origin:dsr0" "$inet:dsr0"; do
        ns=${pair%%:*} ifc=${pair#*:}
        in_ns "$ns" ethtool -K "$ifc" rx off tx off tso off gso off gro off >/dev/null 2>&1 ||
            in_ns "$ns" ethtool -K "$ifc" rx off tx off tso off gso off >/dev/null
        in_ns "$ns" sysctl -qw "net.ipv4.conf.$ifc.rp_filter=0"
    done
    for ifc in out0 in0; do
        in_ns "$moat" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
        in_ns "$moat" ip link set "$ifc" up
    done
    # The origin's veth toward Moat speaks IPv4 only (the tunnel is IPv4);
    # the IPv6 client's path is quiet IPv6 (see the header).
    in_ns "$origin" sysctl -qw net.ipv6.conf.or0.disable_ipv6=1
    ipv6_quiet "$inet" inet0
    ipv6_quiet "$inet" dsr0
    ipv6_quiet "$origin" dsr0

    # inet: the client and the attacker on one link, the VIPs behind Moat.
    in_ns "$inet" ip addr add "$CLIENT" dev inet0
    in_ns "$inet" ip addr add "$ATTACKER" dev inet0
    in_ns "$inet" ip addr add "$CLIENT2" dev inet0
    in_ns "$inet" ip addr add "$CLIENT3" dev inet0
    in_ns "$inet" ip link set inet0 up
    in_ns "$inet" ip route add "$VIP_NET" via "$MOAT_OUTSIDE" dev inet0 src "${CLIENT%/*}"
    in_ns "$inet" ip -6 addr add "$CLIENT6" dev inet0 nodad
    # The next hop is Moat's ip6: the kernel resolves it by neighbour
    # discovery, which Moat answers.
    in_ns "$inet" ip -6 route add "$VIP6_NET" via "$MOAT_OUTSIDE6" dev inet0 src "${CLIENT6%/*}"
    in_ns "$inet" ip addr add "$DSR_INET/30" dev dsr0
    in_ns "$inet" ip -6 addr add "$DSR6_INET/64" dev dsr0 nodad
    in_ns "$inet" ip link set dsr0 up

    # origin: answers the client straight back over the return link.
    in_ns "$origin" ip addr add "$DSR_ORIGIN" dev dsr0
    in_ns "$origin" ip link set dsr0 up
    in_ns "$origin" ip route add "$CLIENT_NET" via "$DSR_INET" dev dsr0
    in_ns "$origin" ip -6 addr add "$DSR6_ORIGIN" dev dsr0 nodad
    in_ns "$origin" ip -6 route add "$CLIENT6_NET" via "$DSR6_INET" dev dsr0
    # No address on or0: the kernel must not take the GRE frames itself (it
    # would answer "protocol unreachable"); OVS reads them off the veth. Nor
    # may it answer ARP there: with the default arp_ignore=0 it answers for
    # br-phy's address with or0's MAC (before br-phy does), and Moat would
    # send the tunnel to the kernel instead of OVS.
    in_ns "$origin" sysctl -qw net.ipv4.conf.or0.arp_ignore=8
    in_ns "$origin" ip link set or0 up

    ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    in_ns "$origin" ovsdb-server "$dir/conf.db" --remote=punix:"$dir/db.sock" \
        --unixctl="$dir/ovsdb-server.ctl" --pidfile="$dir/ovsdb-server.pid" \
        --log-file="$dir/ovsdb-server.log" -vconsole:warn --detach --no-chdir
    vsctl --no-wait init
    in_ns "$origin" ovs-vswitchd "$db" --unixctl="$dir/ovs-vswitchd.ctl" \
        --pidfile="$dir/ovs-vswitchd.pid" --log-file="$dir/ovs-vswitchd.log" \
        -vconsole:warn --detach --no-chdir

    # br-phy owns the veth and the tunnel address, behind its own MAC (OVS
    # would give it the veth's, and the kernel would take the GRE frames).
    vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev \
        other-config:hwaddr="$BR_PHY_MAC" -- add-port br-phy or0
    in_ns "$origin" sysctl -qw net.ipv6.conf.br-phy.disable_ipv6=1 net.ipv4.conf.br-phy.rp_filter=0
    in_ns "$origin" ip addr add "$TUNNEL_LOCAL" dev br-phy
    in_ns "$origin" ip link set br-phy up

    # br-int: the GRE port. Moat sends IP in GRE (protocol type 0x0800,
    # RFC 2784 §2.4), not Ethernet in GRE, hence legacy_l3.
    local keyopt=()
    [ -n "$key" ] && keyopt=(options:key="$key")
    vsctl add-br br-int -- set bridge br-int datapath_type=netdev other-config:hwaddr="$BR_INT_MAC" \
        -- add-port br-int gre0 -- set interface gre0 type=gre options:remote_ip="$TUNNEL_REMOTE" \
        options:packet_type=legacy_l3 "${keyopt[@]}"
    in_ns "$origin" sysctl -qw net.ipv4.conf.br-int.rp_filter=0
    ipv6_quiet "$origin" br-int
    for vip in "${VIPS[@]}"; do
        in_ns "$origin" ip addr add "$vip/32" dev br-int
    done
    in_ns "$origin" ip -6 addr add "$VIP6/128" dev br-int nodad
    in_ns "$origin" ip link set br-int up
    # Inner packets come out of gre0 with a dummy Ethernet header: address
    # them to the tap so the kernel delivers them to the VIPs. Two rules so
    # that a test can count what reached the origin by source; nothing else
    # (the tap's own packets) goes anywhere.
    ovs-ofctl del-flows br-int
    for c in "${CLIENT%/*}" "${CLIENT2%/*}" "${CLIENT3%/*}"; do
        ovs-ofctl add-flow br-int \
            "cookie=0x1,priority=200,in_port=gre0,ip,nw_src=$c,actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"
    done
    ovs-ofctl add-flow br-int \
        "cookie=0x1,priority=200,in_port=gre0,ipv6,ipv6_src=${CLIENT6%/*},actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"
    ovs-ofctl add-flow br-int \
        "cookie=0x2,priority=100,in_port=gre0,actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"

    # Ready when OVS listens for GRE on the tunnel address behind br-phy's
    # MAC (it learns addresses from netlink, asynchronously).
    local want="eth(dst=$BR_PHY_MAC),eth_type(0x0800),ipv4(dst=${TUNNEL_LOCAL%/*},proto=47"
    for _ in $(seq 100); do
        ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" && break
        sleep 0.1
    done
    ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" ||
        { echo "OVS does not listen for GRE on $want" >&2; return 1; }

    # The real servers. Each writes its own pid file: python3 may be a
    # wrapper script that forks, so `$!` would not be the server.
    local here
    here=$(cd "$(dirname "$0")" && pwd)
    printf 'Moat e2e origin: the page behind the moat.\n' >"$dir/www/index.html"
    : >"$dir/http-server.log"
    : >"$dir/udp-server.log"
    setsid ip netns exec "$origin" python3 "$here/http-server.py" "$dir/www" "$HTTP_PORT" \
        "$dir/http-server.log" "$dir/http-server.pid" "${VIPS[@]}" "$VIP6" \
        </dev/null >"$dir/http-server.out" 2>&1 &
    # udp-server.py binds one IPv4 and one IPv6 address: the VIP and ::1.
    setsid ip netns exec "$origin" python3 "$here/udp-server.py" "${VIPS[0]}" ::1 "$UDP_PORT" \
        "$dir/udp-server.log" "$dir/udp-server.pid" </dev/null >"$dir/udp-server.out" 2>&1 &
    wait_ready "$dir/http-server.out"
    wait_ready "$dir/udp-server.out"
}

case $cmd in
up) up "${@:4}" ;;
down) down ;;
*)
    echo "usage: $0 up|down STATE_DIR PREFIX [GRE_KEY]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The multi-node cluster topology of `mgmt/tests/cluster.rs`: an upstream
# router doing ECMP toward the VIP prefix over eBGP, two Moat nodes (each
# with its own BIRD and nats-server), the GRE origin behind both, clients.
#
#  ns PREFIXinet                 ns PREFIXrtr (router, BIRD AS 65000)
#  clients 10.10.0.2..          ri0 10.10.0.1/24 ── inet0
#  inet0 10.10.0.0/24 ───────►  203.0.113.0/24 by BGP: ECMP over the nodes
#  203.0.113.0/24 via 10.10.0.1  (kernel multipath, merge paths, L4 hash)
#                               o1 10.10.1.254/24 ─────────── out0 (ns PREFIXn1: Moat answers 10.10.1.1)
#                               o2 10.10.2.254/24 ─────────── out0 (ns PREFIXn2: Moat answers 10.10.2.1)
#                               br-mgmt 10.30.0.254/24: m1 ── mgmt0 10.30.0.1 (n1: BIRD AS 65001, NATS)
#                                                       m2 ── mgmt0 10.30.0.2 (n2: BIRD AS 65002, NATS)
#                               nats-server 10.30.0.254 (third JetStream server: quorum)
#                               dsr0 10.20.0.2/30 ◄── direct server return ── dsr0 10.20.0.1/30 (origin)
#
#  ns PREFIXn1 / PREFIXn2 (Moat on AF_PACKET; out0 and in0 carry no kernel address)
#    out0: Moat's outside port, point to point to the router (no bridge: an
#          unknown unicast frame would reach both nodes)
#    in0:  Moat's inside port, 192.168.77.1 (n1) / 192.168.77.3 (n2), both on the
#          origin's OVS br-phy
#    mgmt0: the kernel's: BGP session to 10.30.0.254, NATS cluster routes
#    moat0: the TAP Moat holds open (BIRD's liveness interface; not created here)
#    BIRD: static protocol `moat_vips` (disabled; Moat enables it),
#          `route 203.0.113.0/24 via "moat0"` with `check link`; exported with
#          bgp_next_hop = Moat's outside address (10.10.1.1 / 10.10.2.1)
#    nats-server: clients on 127.0.0.1:4222, cluster on mgmt0:6222, JetStream
#
#  ns PREFIXorigin: or1 (n1's in0), or2 (n2's in0) ─ br-phy (OVS netdev,
#    192.168.77.2, GRE endpoint) ─ tunnel pop: gre1 (remote .1), gre2 (remote
#    .3) ─ br-int (OVS netdev) ─ LOCAL tap with the VIPs 203.0.113.10, .11:
#    HTTP :80 (www/, with big.bin), UDP :7777. Replies go back over dsr0.
#
# br-int counts decapsulated packets per tunnel in OpenFlow rules: cookie 0x1
# from gre1 (node 1), cookie 0x2 from gre2 (node 2) (`ovs-ofctl dump-flows
# br-int` with OVS_RUNDIR=STATE_DIR).
#
# The BGP session runs on mgmt0 while the announced next hop is on the
# router's o1/o2: BIRD's default `gateway direct` for an eBGP session accepts
# a next hop on any directly connected network of the router.
#
# The JetStream cluster has three servers (a JetStream cluster of two has no
# quorum once one is gone): one per node namespace and one in the router's.
#
# usage: topology.sh up    STATE_DIR PREFIX     (network, origin, BIRD, NATS)
#        topology.sh down  STATE_DIR PREFIX     (idempotent, never fails)
#        topology.sh nats-stop  STATE_DIR PREFIX   (stops the three nats-servers)
#        topology.sh nats-start STATE_DIR PREFIX   (starts them again, same storage)
# Files under STATE_DIR after `up`: www/ (index.html, big.bin), http-server.log,
# udp-server.log, OVS logs; rtr/, n1/, n2/: bird.conf, bird.ctl (birdc -s),
# bird.log, nats/ (JetStream storage), nats.log.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
# The daemons started here must not inherit a lock the caller holds (`flock
# /tmp/moat-netns.lock cargo test ...` leaves its descriptor open to every
# child): a daemon that outlived its test would hold it. Every inherited
# descriptor above stderr is closed (255 is bash's own, reading this file).
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    case $fd in
    0 | 1 | 2 | 255) ;;
    *) eval "exec $fd>&-" 2>/dev/null || true ;;
    esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
E2E=$HERE/../e2e
VIP_NET=203.0.113.0/24
VIPS=(203.0.113.10 203.0.113.11)
TUNNEL_LOCAL=192.168.77.2/24
NODE_INSIDE=(192.168.77.1 192.168.77.3)
NODE_OUTSIDE=(10.10.1.1 10.10.2.1)
NODE_MGMT=(10.30.0.1 10.30.0.2)
NODE_AS=(65001 65002)
RTR_MGMT=10.30.0.254
RTR_AS=65000
CLIENT_NET=10.10.0.0/24
# Client addresses on inet0: .2 to .29 (the test picks among them).
CLIENTS=$(seq 2 29)
UDP_PORT=7777
HTTP_PORT=80
BR_PHY_MAC=02:00:00:00:77:02
BR_INT_MAC=02:00:00:00:77:fe
# The big file of the slow transfers: bytes, and a deterministic content.
BIG_SIZE=${MOAT_CLUSTER_BIG_SIZE:-1500000}

cmd=${1:-} dir=${2:-} prefix=${3:-}
[ -n "$dir" ] && [ -n "$prefix" ] || {
    echo "usage: $0 up|down|nats-stop|nats-start STATE_DIR PREFIX" >&2
    exit 2
}
inet=${prefix}inet rtr=${prefix}rtr origin=${prefix}origin
nodes=("${prefix}n1" "${prefix}n2")

export OVS_RUNDIR=$dir OVS_DBDIR=$dir OVS_LOGDIR=$dir OVS_SYSCONFDIR=$dir OVS_PKGDATADIR=/usr/share/openvswitch
db=unix:$dir/db.sock
vsctl() { ovs-vsctl --db="$db" --timeout=10 "$@"; }
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# named, stop_pid
. "$E2E/lib.sh"

nats_stop() {
    local d
    for d in rtr n1 n2; do
        stop_pid "$dir/$d/nats.pid" nats-server
        rm -f "$dir/$d/nats.pid"
    done
}

down() {
    nats_stop
    local d
    for d in rtr n1 n2; do
        stop_pid "$dir/$d/bird.pid" bird
        # tap-hold.py, where a check by hand started it (see its header).
        stop_pid "$dir/$d/tap.pid" tap-hold.py
    done
    stop_pid "$dir/http-server.pid" http-server.py
    stop_pid "$dir/udp-server.pid" udp-server.py
    stop_pid "$dir/ovs-vswitchd.pid" ovs-vswitchd
    stop_pid "$dir/ovsdb-server.pid" ovsdb-server
    for ns in "$inet" "$rtr" "$origin" "${nodes[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
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

# A veth pair: $1:$2 <-> $3:$4, offloads off (AF_PACKET readers would see
# unfinished checksums and super-frames), no reverse-path filtering, up.
veth() {
    local ns1=$1 if1=$2 ns2=$3 if2=$4 pair ns ifc
    ip link add "$if1" netns "$ns1" type veth peer name "$if2" netns "$ns2"
    for pair in "$ns1:$if1" "$ns2:$if2"; do
        ns=${pair%%:*} ifc=${pair#*:}
        in_ns "$ns" ethtool -K "$ifc" rx off tx off tso off gso off gro off >/dev/null 2>&1 ||
            in_ns "$ns" ethtool -K "$ifc" rx off tx off tso off gso off >/dev/null
        in_ns "$ns" sysctl -qw "net.ipv4.conf.$ifc.rp_filter=0"
        in_ns "$ns" ip link set "$ifc" up
    done
}

# nats-server $1 (rtr, n1, n2) in namespace $2, cluster address $3, routes to
# the other two servers; JetStream storage under $dir/$1/nats.
nats_start_one() {
    local name=$1 ns=$2 addr=$3 r routes=()
    for r in "$RTR_MGMT" "${NODE_MGMT[@]}"; do
        [ "$r" = "$addr" ] || routes+=("nats://$r:6222")
    done
    mkdir -p "$dir/$name/nats"
    # A fresh log per start (readiness is read from it); the last one kept.
    [ -f "$dir/$name/nats.log" ] && cat "$dir/$name/nats.log" >>"$dir/$name/nats.log.old"
    : >"$dir/$name/nats.log"
    cat >"$dir/$name/nats.conf" <<EOF
server_name: $name
listen: 0.0.0.0:4222
jetstream {
  store_dir: "$dir/$name/nats"
  max_memory_store: 64MB
  max_file_store: 256MB
}
cluster {
  name: moat-test
  listen: $addr:6222
  routes: [$(
        IFS=,
        echo "${routes[*]}"
    )]
  connect_retries: 120
}
EOF
    setsid ip netns exec "$ns" nats-server -c "$dir/$name/nats.conf" -P "$dir/$name/nats.pid" \
        -l "$dir/$name/nats.log" </dev/null >/dev/null 2>&1 &
}

nats_start() {
    nats_start_one rtr "$rtr" "$RTR_MGMT"
    nats_start_one n1 "${nodes[0]}" "${NODE_MGMT[0]}"
    nats_start_one n2 "${nodes[1]}" "${NODE_MGMT[1]}"
    # Ready when every server answers on its monitoring-free client port and
    # the JetStream meta group has a leader (logged by the servers). After
    # `nats-stop`, the three restart with their old Raft state, and the
    # election has taken 32 s on a loaded 2-core CI machine: up to 90 s.
    local i d
    for i in $(seq 450); do
        local ok=1
        for d in rtr n1 n2; do
            [ -s "$dir/$d/nats.pid" ] || ok=0
        done
        if [ $ok = 1 ] && cat "$dir"/{rtr,n1,n2}/nats.log 2>/dev/null | grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader"; then
            return 0
        fi
        sleep 0.2
    done
    echo "the NATS cluster did not elect a JetStream leader in 90 s" >&2
    tail -n 20 "$dir"/{rtr,n1,n2}/nats.log >&2 || true
    return 1
}

# BIRD in namespace $1 with config $2/bird.conf, socket $2/bird.ctl.
bird_start() {
    local ns=$1 d=$2
    in_ns "$ns" bird -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid"
    for _ in $(seq 50); do
        [ -S "$d/bird.ctl" ] && return 0
        sleep 0.1
    done
    echo "bird in $ns did not open $d/bird.ctl" >&2
    return 1
}

up() {
    mkdir -p "$dir/www" "$dir/rtr" "$dir/n1" "$dir/n2"
    for ns in "$inet" "$rtr" "$origin" "${nodes[@]}"; do
        ip netns add "$ns"
        in_ns "$ns" ip link set lo up
        in_ns "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        # IPv4 only: no router solicitations, MLD reports or DAD anywhere,
        # so every frame on Moat's ports is traffic of the test.
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    in_ns "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1

    veth "$inet" inet0 "$rtr" ri0
    veth "$origin" dsr0 "$rtr" dsr0
    in_ns "$rtr" ip link add br-mgmt type bridge
    in_ns "$rtr" ip link set br-mgmt up
    local i n
    for i in 0 1; do
        n=$((i + 1))
        veth "${nodes[$i]}" out0 "$rtr" "o$n"
        veth "${nodes[$i]}" in0 "$origin" "or$n"
        veth "${nodes[$i]}" mgmt0 "$rtr" "m$n"
        in_ns "$rtr" ip link set "m$n" master br-mgmt
        in_ns "$rtr" ip addr add "10.10.$n.254/24" dev "o$n"
        in_ns "${nodes[$i]}" ip addr add "${NODE_MGMT[$i]}/24" dev mgmt0
    done
    in_ns "$rtr" ip addr add "$RTR_MGMT/24" dev br-mgmt
    in_ns "$rtr" ip addr add 10.10.0.1/24 dev ri0
    in_ns "$rtr" ip addr add 10.20.0.2/30 dev dsr0
    for i in $CLIENTS; do
        in_ns "$inet" ip addr add "10.10.0.$i/24" dev inet0
    done
    in_ns "$inet" ip route add "$VIP_NET" via 10.10.0.1 dev inet0 src 10.10.0.2
    in_ns "$origin" ip addr add 10.20.0.1/30 dev dsr0
    in_ns "$origin" ip route add "$CLIENT_NET" via 10.20.0.2 dev dsr0
    # The kernel must neither take the GRE frames off or1/or2 nor answer ARP
    # there (see tests/e2e/topology.sh): OVS's br-phy does.
    for n in 1 2; do
        in_ns "$origin" sysctl -qw "net.ipv4.conf.or$n.arp_ignore=8"
    done

    # The origin's GRE endpoint: Open vSwitch's userspace datapath, private
    # daemons with every file under STATE_DIR.
    ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    in_ns "$origin" ovsdb-server "$dir/conf.db" --remote=punix:"$dir/db.sock" \
        --unixctl="$dir/ovsdb-server.ctl" --pidfile="$dir/ovsdb-server.pid" \
        --log-file="$dir/ovsdb-server.log" -vconsole:warn --detach --no-chdir
    vsctl --no-wait init
    in_ns "$origin" ovs-vswitchd "$db" --unixctl="$dir/ovs-vswitchd.ctl" \
        --pidfile="$dir/ovs-vswitchd.pid" --log-file="$dir/ovs-vswitchd.log" \
        -vconsole:warn --detach --no-chdir
    vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev \
        other-config:hwaddr="$BR_PHY_MAC" -- add-port br-phy or1 -- add-port br-phy or2
    in_ns "$origin" sysctl -qw net.ipv4.conf.br-phy.rp_filter=0
    in_ns "$origin" ip addr add "$TUNNEL_LOCAL" dev br-phy
    in_ns "$origin" ip link set br-phy up
    # One GRE port per node (a port takes packets from its remote_ip only).
    vsctl add-br br-int -- set bridge br-int datapath_type=netdev other-config:hwaddr="$BR_INT_MAC" \
        -- add-port br-int gre1 -- set interface gre1 type=gre options:remote_ip="${NODE_INSIDE[0]}" \
        options:packet_type=legacy_l3 \
        -- add-port br-int gre2 -- set interface gre2 type=gre options:remote_ip="${NODE_INSIDE[1]}" \
        options:packet_type=legacy_l3
    in_ns "$origin" sysctl -qw net.ipv4.conf.br-int.rp_filter=0
    for vip in "${VIPS[@]}"; do
        in_ns "$origin" ip addr add "$vip/32" dev br-int
    done
    in_ns "$origin" ip link set br-int up
    ovs-ofctl del-flows br-int
    ovs-ofctl add-flow br-int "cookie=0x1,priority=100,in_port=gre1,actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"
    ovs-ofctl add-flow br-int "cookie=0x2,priority=100,in_port=gre2,actions=mod_dl_dst:$BR_INT_MAC,output:LOCAL"
    local want="eth(dst=$BR_PHY_MAC),eth_type(0x0800),ipv4(dst=${TUNNEL_LOCAL%/*},proto=47"
    for _ in $(seq 100); do
        ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" && break
        sleep 0.1
    done
    ovs-appctl -t "$dir/ovs-vswitchd.ctl" tnl/ports/show -v | grep -qF "$want" ||
        { echo "OVS does not listen for GRE on $want" >&2; return 1; }

    # The servers: index.html and big.bin (byte i is (i * 7 + i / 251) mod
    # 256: no run of the file repeats at a short period, so a misplaced
    # segment shows).
    printf 'Moat cluster origin: the page behind the moat.\n' >"$dir/www/index.html"
    python3 -c '
import sys
n = int(sys.argv[2])
sys.stdout.buffer.write(bytes((i * 7 + i // 251) & 255 for i in range(n)))
' >"$dir/www/big.bin" big "$BIG_SIZE"
    : >"$dir/http-server.log"
    : >"$dir/udp-server.log"
    # udp-server.py binds an IPv6 address too: the origin's loopback has ::1.
    in_ns "$origin" sysctl -qw net.ipv6.conf.lo.disable_ipv6=0
    setsid ip netns exec "$origin" python3 "$E2E/http-server.py" "$dir/www" "$HTTP_PORT" \
        "$dir/http-server.log" "$dir/http-server.pid" "${VIPS[@]}" \
        </dev/null >"$dir/http-server.out" 2>&1 &
    setsid ip netns exec "$origin" python3 "$E2E/udp-server.py" "${VIPS[0]}" ::1 "$UDP_PORT" \
        "$dir/udp-server.log" "$dir/udp-server.pid" </dev/null >"$dir/udp-server.out" 2>&1 &
    wait_ready "$dir/http-server.out"
    wait_ready "$dir/udp-server.out"

    # BIRD: the router, then each node.
    sed -e "s/@RTR_MGMT@/$RTR_MGMT/g" -e "s/@RTR_AS@/$RTR_AS/g" \
        -e "s/@N1_MGMT@/${NODE_MGMT[0]}/g" -e "s/@N1_AS@/${NODE_AS[0]}/g" \
        -e "s/@N2_MGMT@/${NODE_MGMT[1]}/g" -e "s/@N2_AS@/${NODE_AS[1]}/g" \
        "$HERE/bird-router.conf" >"$dir/rtr/bird.conf"
    bird_start "$rtr" "$dir/rtr"
    for i in 0 1; do
        n=$((i + 1))
        sed -e "s/@MGMT@/${NODE_MGMT[$i]}/g" -e "s/@AS@/${NODE_AS[$i]}/g" \
            -e "s/@OUTSIDE@/${NODE_OUTSIDE[$i]}/g" -e "s/@RTR_MGMT@/$RTR_MGMT/g" \
            -e "s/@RTR_AS@/$RTR_AS/g" "$HERE/bird-node.conf" >"$dir/n$n/bird.conf"
        bird_start "${nodes[$i]}" "$dir/n$n"
    done

    nats_start
}

case $cmd in
up) up ;;
down) down ;;
nats-stop) nats_stop ;;
nats-start) nats_start ;;
*)
    echo "usage: $0 up|down|nats-stop|nats-start STATE_DIR PREFIX" >&2
    exit 2
    ;;
esac

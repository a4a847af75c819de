#!/usr/bin/env python3
"""Writes the seed corpus for every fuzz target into fuzz/corpus/<target>/.

The seeds are small hand-annotated frames (the same shapes as the unit-test
fixtures in classifier/src/parse.rs): frame-level seeds go to `parse`,
`ethernet`, `builders` and `fingerprint`, and each header's bytes go to the
matching view's target. `fp_rules` gets fingerprint and rule texts, `pcap`
hand-made captures (classic pcap in both byte orders and time resolutions,
pcapng with each packet block type), and `classify` record sequences (format
in src/records.rs) toward the fuzzing policy of src/classify.rs; the l7
targets (src/l7.rs) get HTTP requests, ClientHellos made by OpenSSL through
Python's ssl over a memory BIO plus those of classifier/tests/l7_support,
reassembly operation records and A2S queries. Then, unless
--no-rust is given, `cargo run --example seeds` adds the seeds made with the
project's own code: `moat gen`'s traffic profiles for `classify`, a
`PcapWriter` capture for `pcap`.
Generated rather than committed, so the repository holds no binaries.
Usage: python3 fuzz/gen_corpus.py [--no-rust]   (from anywhere)
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(ethertype: int, tags=()) -> bytes:
    h = bytes.fromhex("020000000001 020000000002")
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", ethertype)


def ipv4(proto: int, payload: bytes, ttl=64, df=True, ident=0x1C46, options=b"") -> bytes:
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, 0x4000 if df else 0,
                    ttl, proto, 0, bytes([192, 0, 2, 1]), bytes([198, 51, 100, 10])) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(nh: int, payload: bytes, hop=64) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    return struct.pack("!IHBB", 0x6 << 28, len(payload), nh, hop) + src + dst + payload


def tcp(flags=0x02, opts=b"", window=64240, payload=b"") -> bytes:
    doff = 5 + len(opts) // 4
    return struct.pack("!HHIIBBHHH", 50000, 80, 0x6F5E4D3C, 0, doff << 4, flags, window, 0, 0) + opts + payload


LINUX_OPTS = bytes.fromhex("020405b4 0402 080a000a8b2c00000000 01 030307")
WIN_OPTS = bytes.fromhex("020405b4 01 030308 01 01 0402")
UDP = struct.pack("!HHHH", 53, 5353, 12, 0) + b"\xde\xad\xbe\xef"
ICMP = bytes.fromhex("0800 06fa 1234 0001") + b"ping"
ICMP6 = bytes.fromhex("8000 0000 0007 0002") + b"hi"
ARP = bytes.fromhex("0001 0800 06 04 0001 020000000002 c0000201 000000000000 c000020a")
HBH_FRAG_UDP = bytes.fromhex("2c00010400000000 1100000100000009") + UDP
GRE_KEYED = bytes.fromhex("2000 0800 0000002a")

l4 = {
    "tcp": [tcp(opts=LINUX_OPTS), tcp(opts=WIN_OPTS), tcp(window=512), tcp(0x12, bytes.fromhex("020405b4")),
            tcp(opts=bytes.fromhex("0000000000000000")), tcp(0x18, payload=b"GET / HTTP/1.1\r\n")],
    "udp": [UDP],
    "icmp": [ICMP, ICMP6],
}
l3 = {
    "ipv4": [ipv4(6, tcp(opts=LINUX_OPTS)), ipv4(17, UDP, options=bytes.fromhex("94040000")), ipv4(1, ICMP)],
    "ipv6": [ipv6(6, tcp(opts=LINUX_OPTS)), ipv6(0, HBH_FRAG_UDP), ipv6(58, ICMP6)],
    "arp": [ARP],
    "gre": [GRE_KEYED + ipv4(6, tcp()), bytes.fromhex("8000 86dd 0000 0000") + ipv6(59, b"")],
}
frames = [
    eth(0x0800) + l3["ipv4"][0],
    eth(0x0800) + ipv4(6, tcp(window=512), df=False) + b"\0" * 6,
    eth(0x86DD, [(0x8100, 42)]) + l3["ipv6"][1],
    eth(0x0806, [(0x88A8, 100), (0x8100, 200)]) + ARP,
    eth(0x0800, [(0x8100, 7)]) + ipv4(1, ICMP),
    eth(0x86DD) + ipv6(58, ICMP6),
    eth(0x0800) + ipv4(47, l3["gre"][0], ttl=63),
]


def neighbor_solicit(src: bytes, target: bytes, slla=True) -> bytes:
    """A Neighbor Solicitation (RFC 4861 §4.3) from src for target, to its
    solicited-node address (ff02::1:ffXX:XXXX), hop limit 255, checksum filled
    in; with the source link-layer address option unless from ::."""
    dst = bytes.fromhex("ff0200000000000000000001ff") + target[13:]
    msg = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + (bytes.fromhex("0101 020000000002") if slla else b"")
    pseudo = src + dst + struct.pack("!I3xB", len(msg), 58)
    msg = msg[:2] + struct.pack("!H", csum(pseudo + msg)) + msg[4:]
    ip = struct.pack("!IHBB", 0x6 << 28, len(msg), 58, 255) + src + dst + msg
    return eth(0x86DD) + ip


LINK_LOCAL = bytes.fromhex("fe80000000000000 505400fffe123456")
NS = neighbor_solicit(LINK_LOCAL, bytes.fromhex("20010db8000000000000000000000002"))
DAD = neighbor_solicit(bytes(16), bytes.fromhex("20010db8000000000000000000000002"), slla=False)
frames += [NS, DAD]
corpus = {"parse": frames, "ethernet": frames, "builders": frames, "fingerprint": frames, **l3, **l4}
corpus["tcp"] += [LINUX_OPTS, WIN_OPTS]
# Full-size packets (1500 bytes of IP), above the tunnel MTU: the inputs of
# icmp_too_big (IPv6 needs more than the 1280-byte minimum MTU).
corpus["builders"] = frames + [
    eth(0x0800, [(0x8100, 42)]) + ipv4(6, tcp(0x18, payload=bytes(1460))),
    eth(0x86DD) + ipv6(6, tcp(0x18, payload=bytes(1440))),
]

# fp_rules: fingerprints as reports print them, rules with each wildcard form.
corpus["fp_rules"] = [t.encode() for t in [
    "4:64:0:1460:64240,7:mss,sok,ts,nop,ws:df,id+",
    "4:128:0:1460:64240,8:mss,nop,ws,nop,nop,sok:df,id+",
    "6:64:0:1440:mss*20,7:mss,sok,ts,nop,ws:",
    "*:255:*:-:*,*::*",
    "4:64:4:1460:512,-:mss,eol+3,?42:ecn,seq-,ack+,uptr+,urgf+,pushf+,ts1-,ts2+,opt+,exws,bad",
    "udp:4:46:53:3f2a91c0",
    "icmp6:6:*:128:*",
    "47:*:0:*:811c9dc5",
]]


def pcap_classic(records, big=False, nanos=False, snaplen=65535, link=1) -> bytes:
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)
    for i, f in enumerate(records):
        out += struct.pack(e + "IIII", 1767225600 + i, 1000 * i, len(f), len(f)) + f
    return out


def ng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def ng_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng(records, tsresol=None) -> bytes:
    shb = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts = ng_option(9, bytes([tsresol])) + ng_option(0, b"")
    idb = ng_block(1, struct.pack("<HHI", 1, 0, 0) + opts)
    out = shb + idb
    for i, f in enumerate(records):
        ts = (1767225600 + i) * 1_000_000
        if i % 3 == 0:  # Enhanced Packet Block
            out += ng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
        elif i % 3 == 1:  # Simple Packet Block
            out += ng_block(3, struct.pack("<I", len(f)) + f)
        else:  # obsolete Packet Block
            out += ng_block(2, struct.pack("<HHIIII", 0, 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


corpus["pcap"] = [
    pcap_classic(frames),
    pcap_classic(frames[:3], big=True, nanos=True),
    pcap_classic(frames[:2], snaplen=0),
    pcap_classic(frames[:1], link=113),
    pcapng(frames),
    pcapng(frames[:3], tsresol=9),
    pcapng(frames[:3], tsresol=0x80 | 10),
]

# classify: the fuzzing policy's IPv4 service (src/classify.rs).
VIP4 = bytes([203, 0, 113, 10])
TRUSTED = bytes([192, 0, 2, 1])  # in the ACL's allow list
DENIED = bytes([198, 51, 100, 7])  # in the ACL's deny list


def ipv4_to(proto: int, payload: bytes, src: bytes, dst=VIP4, ttl=64) -> bytes:
    h = ipv4(proto, payload, ttl=ttl)
    h = h[:12] + src + dst + h[20:]
    h = h[:10] + b"\0\0" + h[12:]
    return h[:10] + struct.pack("!H", csum(h[:20])) + h[12:]


def l4_csum(src: bytes, dst: bytes, proto: int, seg: bytes, at: int) -> bytes:
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg))
    seg = seg[:at] + b"\0\0" + seg[at + 2:]
    return seg[:at] + struct.pack("!H", csum(pseudo + seg)) + seg[at + 2:]


def to_vip(proto: int, seg: bytes, src=TRUSTED) -> bytes:
    at = 16 if proto == 6 else 6
    return eth(0x0800) + ipv4_to(proto, l4_csum(src, VIP4, proto, seg, at), src)


def records(pairs) -> bytes:
    """(µs since the previous record, frame) pairs in src/records.rs's format."""
    return b"".join(struct.pack("!HH", len(f), min(us, 0x3FFF)) + f for us, f in pairs)


OWN_IP6 = bytes.fromhex("20010db80000000000000000000000fe")
GAME = struct.pack("!HHHH", 40000, 7777, 16, 0) + b"GAME\x01\x00xx"
ARP_OWN = bytes.fromhex("0001 0800 06 04 0001 020000000002 c0000201 000000000000 cb007101")
corpus["classify"] = [
    records([(0, to_vip(6, tcp(opts=LINUX_OPTS))), (100, to_vip(6, tcp(0x10))), (100, to_vip(6, tcp(0x18, payload=b"GET /"))),
             (100, to_vip(6, tcp(0x11)))]),
    records([(0, to_vip(17, GAME)), (10, to_vip(17, GAME, src=DENIED)), (10, to_vip(1, ICMP))]),
    records([(0, eth(0x0806) + ARP_OWN), (5, eth(0x0806, [(0x8100, 5)]) + ARP_OWN)]),
    # Neighbour solicitations for the node's own IPv6 address (OWN_IP6).
    records([(0, neighbor_solicit(LINK_LOCAL, OWN_IP6)), (5, neighbor_solicit(bytes(16), OWN_IP6, slla=False))]),
    records([(1, to_vip(6, tcp(opts=WIN_OPTS), src=bytes([100, 64, 1, 2])))] * 12),
]

# l7 targets (src/l7.rs). `http`: requests as clients send them, and cut.
REQ = (b"GET /login?next=%2F HTTP/1.1\r\nHost: www.example.com:8080\r\nUser-Agent: curl/7.88.1\r\n"
       b"Accept: */*\r\n\r\n")
corpus["http"] = [REQ, REQ[:30], b"POST /api HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
                  b"\r\nGET http://h.example/x HTTP/1.1\nHost: [2001:db8::1]:80\n\n",
                  b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"CONNECT h.example:443 HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n"]


def openssl_hello(sni=None, alpn=None, tls12=False) -> bytes:
    """A ClientHello made by OpenSSL (Python's ssl over a memory BIO)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    out = ssl.MemoryBIO()
    conn = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def refragment(rec: bytes, n: int) -> bytes:
    msg = rec[5:]
    return b"".join(b"\x16\x03\x03" + struct.pack("!H", len(msg[i:i + n])) + msg[i:i + n] for i in range(0, len(msg), n))


SUPPORT = os.path.join(HERE, "..", "classifier", "tests", "l7_support")
hellos = [openssl_hello("www.example.com", ["h2", "http/1.1"]), openssl_hello(), openssl_hello("a.example", ["http/1.1"], True),
          openssl_hello("b" * 60 + ".example", [f"proto-{i}" for i in range(60)])]
for name in ("curl-7.88-sni.hex", "openssl-3.0-padded-2135.hex"):
    with open(os.path.join(SUPPORT, name)) as f:
        hellos.append(bytes.fromhex("".join(f.read().split())))
corpus["tls"] = hellos + [refragment(hellos[0], 100), hellos[0][:200]]

# `reassembly`: records of key | flags | offset(2) | len/3 | dt (src/l7.rs):
# in order, out of order, a corrupted overlap, a removal, a wild offset.
corpus["reassembly"] = [
    b"".join(struct.pack("!BBHBB", 1, 0, off, 50, 1) for off in range(0, 600, 150)),
    b"".join(struct.pack("!BBHBB", k, 0, off, 40, 0) for k in (2, 3) for off in (240, 120, 0)),
    struct.pack("!BBHBB", 4, 0, 0, 30, 1) + struct.pack("!BBHBB", 4, 3, 45, 30, 1) + struct.pack("!BBHBB", 4, 0x80, 0, 0, 1),
    struct.pack("!BBHBB", 5, 0x40, 10, 30, 255) + b"".join(struct.pack("!BBHBB", k, 0, 0, 3, 200) for k in range(8)),
]

# `l7_rules`: requests that match the target's rules and not, hellos, junk.
corpus["l7_rules"] = [b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n", REQ, b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
                      b"\x00\x17\x03 game", hellos[0], hellos[0][:100]]

# `a2s`: each query, with and without challenges.
A2S = b"\xff\xff\xff\xff"
corpus["a2s"] = [A2S + b"TSource Engine Query\0", A2S + b"TSource Engine Query\0\x78\x56\x34\x12",
                 A2S + b"U\xff\xff\xff\xff", A2S + b"V\x01\x02\x03\x04", A2S + b"W"]

# `redirect` (src/auth.rs): 9 bytes (address kind and bytes, milliseconds)
# then a first segment.
corpus["redirect"] = [b"\0\xc6\x33\x64\x07\0\0\x10\0" + REQ,
                      b"\x01\x01\x02\0\0\0\x01\0\0" + b"GET /a?x=1&moat_token=00112233445566aa HTTP/1.1\r\n\r\n",
                      b"\0\x0a\0\0\x01\0\0\0\0" + b"GET /" + b"a" * 420 + b" HTTP/1.1\r\n\r\n"]

# `auth_classify` (src/auth.rs): the http-redirect handshake, A2S queries
# and the first-packet init packet twice, from an unverified source.
CLIENT = bytes([100, 64, 1, 2])
A2S_INFO = b"\xff\xff\xff\xffTSource Engine Query\0"
def udp_to(dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", 27005, dport, 8 + len(payload), 0) + payload
corpus["auth_classify"] = [
    records([(0, to_vip(6, tcp(opts=LINUX_OPTS), src=CLIENT)), (100, to_vip(6, tcp(0x10), src=CLIENT)),
             (100, to_vip(6, tcp(0x18, payload=REQ), src=CLIENT)), (100, to_vip(6, tcp(0x11), src=CLIENT))]),
    records([(0, to_vip(17, udp_to(27015, A2S_INFO), src=CLIENT)),
             (100, to_vip(17, udp_to(27015, A2S_INFO + b"\x01\x02\x03\x04"), src=CLIENT)),
             (100, to_vip(17, udp_to(27015, b"\xff\xff\xff\xffW"), src=CLIENT))]),
    # Raw dt fields: scale 1 (ms) | count (src/records.rs).
    b"".join(struct.pack("!HH", len(f), dt) + f for dt, f in [
        (0, to_vip(17, udp_to(7777, b"\xde\xad hello"), src=CLIENT)),
        (1 << 14 | 300, to_vip(17, udp_to(7777, b"\xde\xad hello"), src=CLIENT)),
        (1 << 14 | 10, to_vip(17, udp_to(7777, b"play"), src=CLIENT))]),
]

for target, seeds in corpus.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
            f.write(s)
    print(f"{target}: {len(seeds)} seeds")

if "--no-rust" not in sys.argv[1:]:
    subprocess.run(["cargo", "run", "--quiet", "--example", "seeds", "--", os.path.join(HERE, "corpus")],
                   cwd=HERE, check=True)

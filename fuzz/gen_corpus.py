#!/usr/bin/env python3
"""Writes the seed corpus for every fuzz target into fuzz/corpus/<target>/.

The seeds are small hand-annotated frames (the same shapes as the unit-test
fixtures in classifier/src/parse.rs): frame-level seeds go to `parse` and
`ethernet`, and each header's bytes go to the matching view's target.
Generated rather than committed, so the repository holds no binaries.
Usage: python3 fuzz/gen_corpus.py   (from anywhere)
"""
import os
import struct

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
corpus = {"parse": frames, "ethernet": frames, **l3, **l4}
corpus["tcp"] += [LINUX_OPTS, WIN_OPTS]

for target, seeds in corpus.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
            f.write(s)
    print(f"{target}: {len(seeds)} seeds")

//! Reflection/amplification floods: answers from a few hundred open DNS, NTP
//! and memcached servers to requests the attacker sent with the VIP as
//! spoofed source. Destination ports are whatever the attacker spoofed
//! (random); payloads follow each protocol's wire format:
//! - DNS (source port 53): a response to an `ANY` query (RFC 1035 §4.1)
//!   with many records and an EDNS0 OPT record (RFC 6891), 500 to 1472
//!   payload bytes so that each answer fits one 1500-byte packet;
//! - NTP (source port 123): mode 7 `MON_GETLIST_1` (monlist) responses,
//!   6 entries of 72 bytes after the 8-byte header: 440 payload bytes, a
//!   468-byte IP packet (the "482 bytes on the wire" of CVE-2013-5211
//!   reports), in bursts with the "more" bit set on all but the last;
//! - memcached (source port 11211): a large `VALUE key flags bytes` answer
//!   split over UDP datagrams of at most 1400 bytes, each with memcached's
//!   8-byte UDP frame header (request id, sequence, total).

use std::io::Write;

use classifier::time::Nanos;
use rand::Rng;

use super::sched::Sched;
use super::wire::{self, Net};
use super::{Ctx, Profile};

const NANOS_10US: Nanos = 10_000;

/// Reflector `i` of pool `pool` answering toward the VIP.
fn from_reflector(ctx: &mut Ctx, pool: usize) -> Net {
    let i = ctx.rng.gen_range(0..ctx.reflectors[pool].len());
    // A reflector keeps its initial TTL (64, 128, 255) and distance.
    let ttl = [64u8, 128, 255][i % 3] - (5 + (i % 20) as u8);
    Net::V4 {
        src: ctx.reflectors[pool][i],
        dst: ctx.cfg.vip,
        ttl,
        df: ctx.rng.gen_bool(0.5),
        id: ctx.rng.gen(),
    }
}

const DOMAINS: [&str; 5] = ["isc.org", "ripe.net", "cpsc.gov", "example.com", "dnssec-tools.org"];

/// A DNS response to `<domain> ANY`, `target` bytes or a little less,
/// written over `m`.
fn dns_answer(rng: &mut impl Rng, m: &mut Vec<u8>, target: usize) {
    m.clear();
    m.extend_from_slice(&rng.gen::<u16>().to_be_bytes());
    // QR, RD, RA; one question, answers counted below, one additional (OPT).
    m.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 1]);
    for label in DOMAINS[rng.gen_range(0..DOMAINS.len())].split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 255, 0, 1]); // root, QTYPE ANY, QCLASS IN
    const RR: usize = 12; // name pointer 2, type 2, class 2, TTL 4, RDLENGTH 2
    const OPT: usize = 11;
    let mut answers: u16 = 0;
    while m.len() + RR + OPT + 4 <= target {
        // A, NS, MX, TXT, RRSIG, DNSKEY: what ANY answers of signed zones hold.
        let rtype: u16 = [1, 2, 15, 16, 46, 48][rng.gen_range(0..6)];
        let want = if rtype == 1 { 4 } else { rng.gen_range(20..=260) };
        let len = want.min(target - m.len() - RR - OPT);
        m.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question's name
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&rng.gen_range(300u32..=86_400).to_be_bytes());
        m.extend_from_slice(&(len as u16).to_be_bytes());
        m.extend((0..len).map(|_| rng.gen::<u8>()));
        answers += 1;
    }
    m[6..8].copy_from_slice(&answers.to_be_bytes());
    // OPT: root name, type 41, UDP payload size 4096, no extended flags.
    m.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0]);
}

pub(crate) fn dns(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let net = from_reflector(ctx, 0);
    let target = ctx.rng.gen_range(520..=1472);
    dns_answer(&mut ctx.rng, &mut ctx.payload, target);
    let dport = ctx.rng.gen_range(1024..=65535);
    let mut f = q.buf();
    wire::udp(&mut f, &ctx.macs(), &net, 53, dport, &ctx.payload);
    q.push(at, Profile::DnsReflection, f);
}

/// Monlist entries per response packet and their size (`struct info_monitor_1`).
const MON_ITEMS: usize = 6;
const MON_ITEM_LEN: usize = 72;

/// A monlist response packet, written over `m`.
fn monlist(rng: &mut impl Rng, m: &mut Vec<u8>, seq: u8, more: bool) {
    m.clear();
    // Response bit, "more" bit, version 2, mode 7 (private).
    m.push(0x80 | if more { 0x40 } else { 0 } | (2 << 3) | 7);
    m.push(seq & 0x7f);
    m.push(3); // implementation: IMPL_XNTPD
    m.push(42); // request code: MON_GETLIST_1
    m.extend_from_slice(&(MON_ITEMS as u16).to_be_bytes()); // err 0, nitems
    m.extend_from_slice(&(MON_ITEM_LEN as u16).to_be_bytes()); // mbz 0, item size
    for _ in 0..MON_ITEMS {
        let mut item = [0u8; MON_ITEM_LEN];
        rng.fill(&mut item[..28]); // avg_int, last_int, restr, count, addr, daddr, flags
        item[28..30].copy_from_slice(&123u16.to_be_bytes()); // port
        item[30] = 3; // mode: client
        item[31] = 4; // version
        m.extend_from_slice(&item); // v6_flag 0, unused, addr6 and daddr6 zero
    }
}

pub(crate) fn ntp(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let net = from_reflector(ctx, 1);
    let dport = ctx.rng.gen_range(1024..=65535);
    let burst = ctx.rng.gen_range(1..=4u8);
    for seq in 0..burst {
        monlist(&mut ctx.rng, &mut ctx.payload, seq, seq + 1 < burst);
        let t = at.saturating_add(NANOS_10US * u64::from(seq));
        let net = net.with_id(ctx.rng.gen());
        let mut f = q.buf();
        wire::udp(&mut f, &ctx.macs(), &net, 123, dport, &ctx.payload);
        q.push(t, Profile::NtpReflection, f);
    }
}

/// Largest memcached UDP datagram payload (memcached's `UDP_MAX_PAYLOAD_SIZE`).
const MEMCACHED_DGRAM: usize = 1400;

pub(crate) fn memcached(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let net = from_reflector(ctx, 2);
    let dport = ctx.rng.gen_range(1024..=65535);
    let request_id: u16 = ctx.rng.gen();
    let value_len = ctx.rng.gen_range(2_000..=10_000usize);
    let key = ctx.rng.gen::<u32>();
    let mut body = std::mem::take(&mut ctx.l4);
    let mut payload = std::mem::take(&mut ctx.payload);
    body.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(body, "VALUE k{key:08x} 0 {value_len}\r\n");
    body.extend((0..value_len).map(|_| ctx.rng.gen_range(b'a'..=b'z')));
    body.extend_from_slice(b"\r\nEND\r\n");
    let chunk = MEMCACHED_DGRAM - 8;
    let total = body.len().div_ceil(chunk);
    for (i, part) in body.chunks(chunk).enumerate() {
        payload.clear();
        payload.extend_from_slice(&request_id.to_be_bytes());
        payload.extend_from_slice(&(i as u16).to_be_bytes());
        payload.extend_from_slice(&(total as u16).to_be_bytes());
        payload.extend_from_slice(&[0, 0]);
        payload.extend_from_slice(part);
        let t = at.saturating_add(NANOS_10US * i as u64);
        let net = net.with_id(ctx.rng.gen());
        let mut f = q.buf();
        wire::udp(&mut f, &ctx.macs(), &net, 11211, dport, &payload);
        q.push(t, Profile::MemcachedReflection, f);
    }
    ctx.l4 = body;
    ctx.payload = payload;
}

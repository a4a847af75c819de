//! Fragments: whole fragmented IPv4 datagrams (first fragment with the UDP or
//! TCP header, then the rest), lone non-first IPv4 fragments (the bulk of a
//! fragment flood: nothing to reassemble, no ports to check), and fragmented
//! IPv6 datagrams (RFC 8200 §4.5 Fragment header). Fragments are cut for a
//! 1500-byte MTU: 1480 data bytes per IPv4 fragment, 1448 per IPv6 one (both
//! multiples of 8, as offsets count 8-byte units, RFC 791 §3.1).

use core::net::{Ipv4Addr, Ipv6Addr};

use classifier::time::Nanos;
use etherparse::IpNumber;
use rand::Rng;

use super::sched::Sched;
use super::wire::{self, Net, Seg, ACK, PSH};
use super::{Ctx, Profile};

const V4_CHUNK: usize = 1480;
const V6_CHUNK: usize = 1448;
/// Fragments of one datagram leave back to back, 1 µs apart.
const GAP: Nanos = 1_000;

pub(crate) fn event(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    match ctx.rng.gen_range(0..10) {
        0..=3 => v4_datagram(ctx, q, at),
        4..=6 => v4_lone(ctx, q, at),
        _ => v6_datagram(ctx, q, at),
    }
}

/// A datagram's random payload, written over the context's payload buffer.
fn payload(ctx: &mut Ctx) {
    let len = ctx.rng.gen_range(1500..=4000);
    ctx.payload.clear();
    ctx.payload.extend((0..len).map(|_| ctx.rng.gen::<u8>()));
}

/// Queues `l4` (a transport header and payload) cut into fragments, one
/// every [`GAP`] from `at`, built by `fragment(out, offset, more, chunk)`.
fn queue_fragments(
    ctx: &Ctx,
    q: &mut Sched,
    at: Nanos,
    chunk_len: usize,
    fragment: impl Fn(&mut Vec<u8>, &wire::Macs, u16, bool, &[u8]),
) {
    let l4 = &ctx.l4;
    let n = l4.len().div_ceil(chunk_len);
    for (i, chunk) in l4.chunks(chunk_len).enumerate() {
        let offset = (i * chunk_len / 8) as u16;
        let mut f = q.buf();
        fragment(&mut f, &ctx.macs(), offset, i + 1 < n, chunk);
        q.push(at.saturating_add(GAP * i as u64), Profile::Frag, f);
    }
}

fn v4_datagram(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let (src, dst) = (Ipv4Addr::from(ctx.rng.gen::<u32>()), ctx.cfg.vip);
    let ttl = 64 - ctx.rng.gen_range(4..=24);
    let id = ctx.rng.gen();
    let net = Net::V4 {
        src,
        dst,
        ttl,
        df: false,
        id,
    };
    payload(ctx);
    ctx.l4.clear();
    let proto = if ctx.rng.gen_ratio(7, 10) {
        let dport = if ctx.rng.gen_bool(0.5) {
            ctx.cfg.udp_port
        } else {
            ctx.rng.gen()
        };
        let sport = ctx.rng.gen();
        wire::udp_bytes(&mut ctx.l4, &net, sport, dport, &ctx.payload);
        IpNumber::UDP
    } else {
        let rng = &mut ctx.rng;
        let seg = Seg {
            sport: rng.gen(),
            dport: ctx.cfg.tcp_port,
            seq: rng.gen(),
            ack: rng.gen(),
            flags: PSH | ACK,
            window: rng.gen(),
            options: &[],
        };
        wire::tcp_bytes(&mut ctx.l4, &net, &seg, &ctx.payload);
        IpNumber::TCP
    };
    queue_fragments(ctx, q, at, V4_CHUNK, |out, macs, offset, more, chunk| {
        wire::ipv4_fragment(out, macs, (src, dst, ttl, id), proto, offset, more, chunk);
    });
}

fn v4_lone(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let rng = &mut ctx.rng;
    let (src, ttl, id) = (Ipv4Addr::from(rng.gen::<u32>()), 64 - rng.gen_range(4..=24), rng.gen());
    let offset = rng.gen_range(1..=8000u16);
    let more = rng.gen_bool(0.5);
    // Only a last fragment may hold a length that is not a multiple of 8.
    let mut len = rng.gen_range(8..=V4_CHUNK);
    if more {
        len &= !7;
    }
    ctx.payload.clear();
    ctx.payload.extend((0..len).map(|_| rng.gen::<u8>()));
    let mut f = q.buf();
    wire::ipv4_fragment(
        &mut f,
        &ctx.macs(),
        (src, ctx.cfg.vip, ttl, id),
        IpNumber::UDP,
        offset,
        more,
        &ctx.payload,
    );
    q.push(at, Profile::Frag, f);
}

fn v6_datagram(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let src = Ipv6Addr::from(ctx.rng.gen::<u128>() & !(7u128 << 125) | (1u128 << 125));
    let dst = ctx.cfg.vip6;
    let hops = 64 - ctx.rng.gen_range(4..=24);
    let id = ctx.rng.gen();
    payload(ctx);
    let net = Net::V6 {
        src,
        dst,
        hops,
        flow: 0,
    };
    let dport = if ctx.rng.gen_bool(0.5) {
        ctx.cfg.udp_port
    } else {
        ctx.rng.gen()
    };
    let sport = ctx.rng.gen();
    ctx.l4.clear();
    wire::udp_bytes(&mut ctx.l4, &net, sport, dport, &ctx.payload);
    queue_fragments(ctx, q, at, V6_CHUNK, |out, macs, offset, more, chunk| {
        wire::ipv6_fragment(out, macs, (src, dst, hops, id), IpNumber::UDP, offset, more, chunk);
    });
}

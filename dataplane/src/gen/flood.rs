//! Spoofed floods toward the VIP: SYN, ACK, RST and UDP.
//!
//! Sources are uniform over the IPv4 space (nothing excluded: real spoofers
//! do not bother) or over 2000::/3 for IPv6, ports random. SYN floods are
//! half hping3-like (`hping3 -S --flood --rand-source`: no options, window
//! 512, TTL 64, no DF) and half Mirai-like (`attack_tcp_syn`: mss 1460,
//! sackOK, timestamps, nop, wscale 6, random window, DF). Observed TTLs are
//! the initial TTL minus 4..=24 hops.

use core::net::{Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayVec;
use classifier::time::Nanos;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::sched::Sched;
use super::wire::{self, Net, Seg, ACK, PSH, RST, SYN};
use super::{Ctx, Profile};

/// A spoofed source and the VIP, IPv4 or IPv6 as `ipv6_share` says.
fn spoofed(ctx: &mut Ctx, ittl: u8, df: bool) -> Net {
    let ttl = ittl - ctx.rng.gen_range(4..=24);
    if ctx.pick_v6() {
        let src = Ipv6Addr::from(ctx.rng.gen::<u128>() & !(7u128 << 125) | (1u128 << 125));
        Net::V6 {
            src,
            dst: ctx.cfg.vip6,
            hops: ttl,
            flow: ctx.rng.gen_range(0..=0xf_ffff),
        }
    } else {
        let src = Ipv4Addr::from(ctx.rng.gen::<u32>());
        Net::V4 {
            src,
            dst: ctx.cfg.vip,
            ttl,
            df,
            id: ctx.rng.gen(),
        }
    }
}

/// Replaces `buf`'s contents with `len` random bytes (one draw each).
fn random_bytes(rng: &mut ChaCha8Rng, buf: &mut Vec<u8>, len: usize) {
    buf.clear();
    buf.extend((0..len).map(|_| rng.gen::<u8>()));
}

pub(crate) fn syn(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let mirai = ctx.rng.gen_bool(0.5);
    let net = spoofed(ctx, 64, mirai);
    let rng = &mut ctx.rng;
    let mut opts = ArrayVec::<u8, 40>::new();
    let window = if mirai {
        opts.extend([2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
        opts.extend(rng.gen::<u32>().to_be_bytes());
        opts.extend([0, 0, 0, 0, 1, 3, 3, 6]);
        rng.gen()
    } else {
        512
    };
    let seg = Seg {
        sport: rng.gen(),
        dport: ctx.cfg.tcp_port,
        seq: rng.gen(),
        ack: 0,
        flags: SYN,
        window,
        options: &opts,
    };
    let mut f = q.buf();
    wire::tcp(&mut f, &ctx.macs(), &net, &seg, &[]);
    q.push(at, Profile::SynFlood, f);
}

pub(crate) fn ack(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let ittl = if ctx.rng.gen_bool(0.5) { 64 } else { 128 };
    let df = ctx.rng.gen_bool(0.5);
    let net = spoofed(ctx, ittl, df);
    // Half carry data (Mirai's ACK flood sends 512 random bytes by default).
    let (flags, len) = if ctx.rng.gen_bool(0.5) {
        (PSH | ACK, ctx.rng.gen_range(1..=1400))
    } else {
        (ACK, 0)
    };
    random_bytes(&mut ctx.rng, &mut ctx.payload, len);
    let rng = &mut ctx.rng;
    let seg = Seg {
        sport: rng.gen(),
        dport: ctx.cfg.tcp_port,
        seq: rng.gen(),
        ack: rng.gen(),
        flags,
        window: rng.gen(),
        options: &[],
    };
    let mut f = q.buf();
    wire::tcp(&mut f, &ctx.macs(), &net, &seg, &ctx.payload);
    q.push(at, Profile::AckFlood, f);
}

pub(crate) fn rst(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let net = spoofed(ctx, 64, false);
    let rng = &mut ctx.rng;
    let with_ack = rng.gen_bool(0.5);
    let (flags, ack) = if with_ack { (RST | ACK, rng.gen()) } else { (RST, 0) };
    let seg = Seg {
        sport: rng.gen(),
        dport: ctx.cfg.tcp_port,
        seq: rng.gen(),
        ack,
        flags,
        window: 0,
        options: &[],
    };
    let mut f = q.buf();
    wire::tcp(&mut f, &ctx.macs(), &net, &seg, &[]);
    q.push(at, Profile::RstFlood, f);
}

pub(crate) fn udp(ctx: &mut Ctx, q: &mut Sched, at: Nanos) {
    let net = spoofed(ctx, 64, false);
    let rng = &mut ctx.rng;
    let dport = if rng.gen_bool(0.5) { ctx.cfg.udp_port } else { rng.gen() };
    let len = rng.gen_range(0..=1400);
    let payload = &mut ctx.payload;
    random_bytes(rng, payload, len);
    let magic = &ctx.cfg.game_magic;
    // Flood payloads must not pass the game's payload rule by chance.
    if !magic.is_empty() && payload.starts_with(magic) {
        payload[0] = !magic[0];
    }
    let sport = ctx.rng.gen();
    let mut f = q.buf();
    wire::udp(&mut f, &ctx.macs(), &net, sport, dport, &ctx.payload);
    q.push(at, Profile::UdpFlood, f);
}

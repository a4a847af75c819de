//! The PACKET_FANOUT_CBPF program that spreads one port's traffic over the
//! workers by source address only (DESIGN.md, "Threading and memory model"):
//! every packet of one source reaches the same worker, so everything about
//! that source lives on one core.
//!
//! The kernel runs the program on each received packet and delivers it to
//! the group member at index `ret % members`, members counted in join order
//! (`fanout_demux_bpf`, `__fanout_link` in `net/packet/af_packet.c`). The
//! program already returns `hash(src) % workers`, so worker `i` is the
//! `i`-th socket to join.
//!
//! At fanout time `skb->data` points at the network header on receive, so
//! every load is relative to the link-layer header (`SKF_LL_OFF`), which
//! holds on receive and transmit alike. The kernel has usually moved an
//! 802.1Q tag out of the frame into metadata by then; a tag still in the
//! frame (the inner one of QinQ) is skipped too.
//!
//! | frame        | hashed word                                        |
//! |--------------|----------------------------------------------------|
//! | IPv4         | source address, bytes 26..30                       |
//! | IPv6         | xor of the source's four words, bytes 22..38       |
//! | 802.1Q + IP  | the same, 4 bytes further                          |
//! | anything else (ARP, truncated) | none: worker 0                   |
//!
//! [`worker_for`] computes the same function in Rust, for tests and for
//! anyone who must predict a source's worker.

use libc::sock_filter;
use std::net::IpAddr;

// Classic BPF opcodes (`include/uapi/linux/filter.h`, `bpf_common.h`).
const LD_H_ABS: u16 = 0x28;
const LD_W_IND: u16 = 0x40;
const LDX_IMM: u16 = 0x01;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const JEQ_K: u16 = 0x15;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const TAX: u16 = 0x07;
const RSH_K: u16 = 0x74;
const XOR_X: u16 = 0xac;
const MUL_K: u16 = 0x24;
const MOD_K: u16 = 0x94;

/// Loads at `SKF_LL_OFF + n` read byte `n` of the link-layer frame.
const LL: u32 = libc::SKF_LL_OFF as u32;

const ETH_P_8021Q: u32 = 0x8100;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;

/// Multiplier of the finaliser (a 32-bit integer hash with good avalanche:
/// xor-shift, multiply, xor-shift).
const MIX: u32 = 0x045d_9f3b;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The fanout program for `workers` (>= 1) sockets. Jump offsets count
/// instructions after the jump; the listing's indices are in the comments.
pub fn program(workers: usize) -> Vec<sock_filter> {
    assert!(workers >= 1, "fanout over zero workers");
    vec![
        /* 0 */ insn(LDX_IMM, 0, 0, 0), // X: 0, or 4 past an 802.1Q tag
        /* 1 */ insn(LD_H_ABS, 0, 0, LL.wrapping_add(12)),
        /* 2 */ insn(JEQ_K, 0, 2, ETH_P_8021Q),
        /* 3 */ insn(LDX_IMM, 0, 0, 4),
        /* 4 */ insn(LD_H_ABS, 0, 0, LL.wrapping_add(16)),
        /* 5 */ insn(JEQ_K, 2, 0, ETH_P_IP), // -> 8
        /* 6 */ insn(JEQ_K, 3, 0, ETH_P_IPV6), // -> 10
        /* 7 */ insn(RET_K, 0, 0, 0),
        /* 8 */ insn(LD_W_IND, 0, 0, LL.wrapping_add(26)),
        /* 9 */ insn(JA, 0, 0, 13), // -> 23
        /* 10 */ insn(LD_W_IND, 0, 0, LL.wrapping_add(22)),
        /* 11 */ insn(ST, 0, 0, 0),
        /* 12 */ insn(LD_W_IND, 0, 0, LL.wrapping_add(26)),
        /* 13 */ insn(ST, 0, 0, 1),
        /* 14 */ insn(LD_W_IND, 0, 0, LL.wrapping_add(30)),
        /* 15 */ insn(ST, 0, 0, 2),
        /* 16 */ insn(LD_W_IND, 0, 0, LL.wrapping_add(34)),
        /* 17 */ insn(LDX_MEM, 0, 0, 0),
        /* 18 */ insn(XOR_X, 0, 0, 0),
        /* 19 */ insn(LDX_MEM, 0, 0, 1),
        /* 20 */ insn(XOR_X, 0, 0, 0),
        /* 21 */ insn(LDX_MEM, 0, 0, 2),
        /* 22 */ insn(XOR_X, 0, 0, 0),
        /* 23 */ insn(TAX, 0, 0, 0),
        /* 24 */ insn(RSH_K, 0, 0, 16),
        /* 25 */ insn(XOR_X, 0, 0, 0),
        /* 26 */ insn(MUL_K, 0, 0, MIX),
        /* 27 */ insn(TAX, 0, 0, 0),
        /* 28 */ insn(RSH_K, 0, 0, 16),
        /* 29 */ insn(XOR_X, 0, 0, 0),
        /* 30 */ insn(MOD_K, 0, 0, workers as u32),
        /* 31 */ insn(RET_A, 0, 0, 0),
    ]
}

/// A program that drops everything: attached to each socket between its
/// bind and the moment the whole group has joined, so that no packet lands
/// on a worker that its source does not belong to.
pub fn drop_all() -> Vec<sock_filter> {
    vec![insn(RET_K, 0, 0, 0)]
}

fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(MIX);
    h ^ (h >> 16)
}

/// The worker that [`program`] sends packets from `src` to.
pub fn worker_for(src: IpAddr, workers: usize) -> usize {
    let word = match src {
        IpAddr::V4(a) => u32::from_be_bytes(a.octets()),
        IpAddr::V6(a) => {
            let o = a.octets();
            o.chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |acc, w| acc ^ w)
        }
    };
    (mix(word) % workers as u32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A classic-BPF interpreter for the opcodes above, with the kernel's
    /// rule that a load out of bounds ends the program with 0. The frame is
    /// the link-layer frame, so `SKF_LL_OFF + n` reads byte `n`.
    fn run(prog: &[sock_filter], frame: &[u8]) -> u32 {
        let load = |off: u32, size: usize| -> Option<u32> {
            let n = off.wrapping_sub(LL) as usize;
            let b = frame.get(n..n.checked_add(size)?)?;
            Some(b.iter().fold(0, |acc, &x| (acc << 8) | u32::from(x)))
        };
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_H_ABS => match load(i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_W_IND => match load(x.wrapping_add(i.k), 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_IMM => x = i.k,
                LDX_MEM => x = mem[i.k as usize],
                ST => mem[i.k as usize] = a,
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JA => pc += i.k as usize,
                RET_K => return i.k,
                RET_A => return a,
                TAX => x = a,
                RSH_K => a >>= i.k,
                XOR_X => a ^= x,
                MUL_K => a = a.wrapping_mul(i.k),
                MOD_K => a %= i.k,
                c => panic!("opcode {c:#x} not interpreted"),
            }
        }
    }

    fn eth(ty: u16, vlan: bool, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        h
    }

    fn ipv6(src: Ipv6Addr) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        h
    }

    #[test]
    fn ipv4_source_picks_the_worker_tagged_or_not() {
        for workers in 1..=5 {
            let prog = program(workers);
            for i in 0..300u32 {
                let src = Ipv4Addr::from(0x0a00_0000 ^ i.wrapping_mul(0x9e37_79b9));
                let want = worker_for(src.into(), workers) as u32;
                let l3 = ipv4(src, Ipv4Addr::new(192, 0, 2, (i % 7) as u8));
                assert_eq!(run(&prog, &eth(0x0800, false, &l3)), want, "{src}");
                assert_eq!(run(&prog, &eth(0x0800, true, &l3)), want, "{src} tagged");
            }
        }
    }

    #[test]
    fn ipv6_source_picks_the_worker_tagged_or_not() {
        let prog = program(3);
        for i in 0..300u128 {
            let src = Ipv6Addr::from(0x2001_0db8_u128 << 96 | i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let want = worker_for(src.into(), 3) as u32;
            assert_eq!(run(&prog, &eth(0x86dd, false, &ipv6(src))), want, "{src}");
            assert_eq!(run(&prog, &eth(0x86dd, true, &ipv6(src))), want, "{src}");
        }
    }

    #[test]
    fn destination_does_not_matter() {
        let prog = program(4);
        let src = Ipv4Addr::new(198, 51, 100, 7);
        let want = run(&prog, &eth(0x0800, false, &ipv4(src, Ipv4Addr::new(1, 1, 1, 1))));
        for d in 0..=255 {
            let l3 = ipv4(src, Ipv4Addr::new(203, 0, 113, d));
            assert_eq!(run(&prog, &eth(0x0800, false, &l3)), want);
        }
    }

    #[test]
    fn non_ip_and_truncated_frames_go_to_worker_zero() {
        let prog = program(4);
        let arp = eth(0x0806, false, &[0; 28]);
        assert_eq!(run(&prog, &arp), 0);
        let short = eth(0x0800, false, &[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0]);
        assert_eq!(run(&prog, &short), 0);
        assert_eq!(run(&prog, &[0u8; 10]), 0);
        assert_eq!(run(&drop_all(), &arp), 0);
    }

    #[test]
    fn sources_spread_over_every_worker() {
        for workers in 2..=8 {
            let mut seen = vec![0usize; workers];
            for i in 0..=255u8 {
                seen[worker_for(Ipv4Addr::new(10, 0, 0, i).into(), workers)] += 1;
            }
            assert!(seen.iter().all(|&n| n > 256 / workers / 2), "{seen:?}");
        }
    }
}

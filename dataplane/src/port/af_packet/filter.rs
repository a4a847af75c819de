//! Socket filters (classic BPF, `SO_ATTACH_FILTER`) for packet sockets
//! that share an interface without a fanout group: each takes only its own
//! part of the traffic, in the kernel, before anything is copied into its
//! ring.
//!
//! [`ipv4_dst_share`] is the load tester's (`crate::loadtest`): every core
//! opens its own sockets on the same interfaces and keeps the IPv4 frames
//! addressed to its share of the clients' source range, the addresses
//! `first + i` with `i % cores == core`. Loads are relative to the
//! link-layer header (`SKF_LL_OFF`), as in [`super::fanout`].

use libc::sock_filter;
use std::net::Ipv4Addr;

// Classic BPF opcodes (`include/uapi/linux/filter.h`, `bpf_common.h`).
const LD_H_ABS: u16 = 0x28;
const LD_W_ABS: u16 = 0x20;
const SUB_K: u16 = 0x14;
const MOD_K: u16 = 0x94;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

const LL: u32 = libc::SKF_LL_OFF as u32;
const ETH_P_IP: u32 = 0x0800;
/// Offset of the IPv4 destination address in an untagged frame.
const IPV4_DST: u32 = 14 + 16;
/// What an accepting filter returns: the whole frame (the kernel cuts it
/// to the ring's slot anyway).
const ACCEPT: u32 = 0x0004_0000;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Accepts untagged IPv4 frames whose destination is `first + i` for
/// `i < count` and `i % cores == core`; drops everything else. `cores`
/// must be at least 1 (a modulo by zero is refused by the kernel).
pub fn ipv4_dst_share(first: Ipv4Addr, count: u32, cores: u32, core: u32) -> Vec<sock_filter> {
    assert!(cores >= 1, "a share of zero cores");
    vec![
        /* 0 */ insn(LD_H_ABS, 0, 0, LL.wrapping_add(12)),
        /* 1 */ insn(JEQ_K, 0, 6, ETH_P_IP), // -> 8
        /* 2 */ insn(LD_W_ABS, 0, 0, LL.wrapping_add(IPV4_DST)),
        /* 3 */ insn(SUB_K, 0, 0, u32::from(first)),
        // Unsigned: an address below `first` wraps to a large index.
        /* 4 */
        insn(JGE_K, 3, 0, count), // -> 8
        /* 5 */ insn(MOD_K, 0, 0, cores),
        /* 6 */ insn(JEQ_K, 0, 1, core), // -> 8
        /* 7 */ insn(RET_K, 0, 0, ACCEPT),
        /* 8 */ insn(RET_K, 0, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the opcodes above (a load out of
    /// bounds ends the program with 0, as in the kernel).
    fn run(prog: &[sock_filter], frame: &[u8]) -> u32 {
        let load = |off: u32, size: usize| -> Option<u32> {
            let n = off.wrapping_sub(LL) as usize;
            let b = frame.get(n..n.checked_add(size)?)?;
            Some(b.iter().fold(0, |acc, &x| (acc << 8) | u32::from(x)))
        };
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_H_ABS | LD_W_ABS => match load(i.k, if i.code == LD_H_ABS { 2 } else { 4 }) {
                    Some(v) => a = v,
                    None => return 0,
                },
                SUB_K => a = a.wrapping_sub(i.k),
                MOD_K => a %= i.k,
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JGE_K => pc += usize::from(if a >= i.k { i.jt } else { i.jf }),
                RET_K => return i.k,
                c => panic!("opcode {c:#x} not interpreted"),
            }
        }
    }

    fn frame(ty: u16, dst: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 203, 0, 113, 10]);
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&[0; 20]);
        f
    }

    #[test]
    fn each_core_takes_its_share_of_the_range_and_nothing_else() {
        let first = Ipv4Addr::new(10, 10, 0, 100);
        for cores in 1..=4u32 {
            for core in 0..cores {
                let prog = ipv4_dst_share(first, 100, cores, core);
                for last in 0..=255u8 {
                    let dst = Ipv4Addr::new(10, 10, 0, last);
                    let i = u32::from(last).wrapping_sub(100);
                    let want = i < 100 && i % cores == core;
                    assert_eq!(run(&prog, &frame(0x0800, dst)) != 0, want, "{cores} {core} {dst}");
                }
                let own = Ipv4Addr::from(u32::from(first) + core);
                assert_eq!(run(&prog, &frame(0x0806, own)), 0, "ARP");
                assert_eq!(run(&prog, &frame(0x0800, Ipv4Addr::new(10, 11, 0, 100))), 0);
                assert_eq!(run(&prog, &frame(0x0800, own)[..20]), 0, "truncated");
            }
        }
    }
}

//! The software RSS fallback: for ports whose driver cannot hash on the L3
//! source alone (virtual devices, many NICs without
//! `RTE_ETH_RSS_L3_SRC_ONLY`), each worker receives from its own queue,
//! hashes the source address of every frame and hands the frames of other
//! workers' sources to them through a bounded single-producer,
//! single-consumer ring per (from, to) pair. Every worker drains its
//! incoming rings in `rx_burst`, so one source always lands on one worker,
//! whichever queue the device put it in.
//!
//! Contract: [`owner`] depends on the source address only (not the
//! destination, ports or VLAN tags), the same function for IPv4 and IPv6;
//! frames that are not IP (ARP, LLDP) or too short to name a source have no
//! owner and stay with the worker that received them. A full ring drops the
//! frame and counts it (`steer_dropped`), never blocking.

use rtrb::{Consumer, Producer, RingBuffer};

use super::mbuf::DpdkFrame;

const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q and 802.1ad (QinQ) tags; at most two are skipped.
const VLAN_TPIDS: [u16; 2] = [0x8100, 0x88a8];

/// The worker (of `workers`) that owns the frame's source address, or
/// `None` for frames without one.
pub fn owner(frame: &[u8], workers: usize) -> Option<usize> {
    if workers <= 1 {
        return None;
    }
    let h = source_hash(frame)?;
    // Multiply-shift maps the 32-bit hash onto 0..workers without a
    // division (Lemire's fast range reduction).
    Some(((u64::from(h) * workers as u64) >> 32) as usize)
}

/// A 32-bit hash of the frame's L3 source address.
pub fn source_hash(frame: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    for _ in 0..2 {
        if !VLAN_TPIDS.contains(&ethertype) {
            break;
        }
        off += 4;
        ethertype = be16(frame, off)?;
    }
    let l3 = off + 2;
    debug_assert!(l3 >= ETH_HDR);
    let src = match ethertype {
        ETHERTYPE_IPV4 => frame.get(l3 + 12..l3 + 16)?,
        ETHERTYPE_IPV6 => frame.get(l3 + 8..l3 + 24)?,
        _ => return None,
    };
    // Fold the address into 32 bits, then mix (Fibonacci hashing's
    // multiplier, then an xorshift so the high bits depend on every input
    // bit: the range reduction above uses the high bits).
    let folded = src.chunks_exact(4).fold(0u32, |acc, w| {
        acc.rotate_left(5) ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]])
    });
    let mut h = folded.wrapping_mul(0x9e37_79b1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    Some(h)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// One worker's ends of the ring mesh: a producer toward every other
/// worker and a consumer from every other worker (`None` at its own index).
#[derive(Debug)]
pub struct Mesh {
    pub to: Vec<Option<Producer<DpdkFrame>>>,
    pub from: Vec<Option<Consumer<DpdkFrame>>>,
}

/// The mesh of `workers` workers, `capacity` frames per ring (allocated
/// here, once). Frames still in a ring when both ends are dropped are
/// freed by [`DpdkFrame`]'s `Drop`.
pub fn mesh(workers: usize, capacity: usize) -> Vec<Mesh> {
    let mut meshes: Vec<Mesh> = (0..workers)
        .map(|_| Mesh {
            to: (0..workers).map(|_| None).collect(),
            from: (0..workers).map(|_| None).collect(),
        })
        .collect();
    for from in 0..workers {
        for to in 0..workers {
            if from != to {
                let (p, c) = RingBuffer::new(capacity);
                meshes[from].to[to] = Some(p);
                meshes[to].from[from] = Some(c);
            }
        }
    }
    meshes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], sport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f
    }

    fn vlan(f: &[u8], tpid: u16) -> Vec<u8> {
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&[0, 7]);
        v.extend_from_slice(&f[12..]);
        v
    }

    #[test]
    fn one_source_one_owner_whatever_else_differs() {
        let a = ipv4([198, 51, 100, 7], [203, 0, 113, 1], 1000);
        let b = ipv4([198, 51, 100, 7], [203, 0, 113, 9], 4242);
        for w in [2, 3, 4, 7, 16] {
            let o = owner(&a, w).unwrap();
            assert!(o < w);
            assert_eq!(owner(&b, w), Some(o));
            assert_eq!(owner(&vlan(&a, 0x8100), w), Some(o), "802.1Q");
            assert_eq!(owner(&vlan(&vlan(&a, 0x8100), 0x88a8), w), Some(o), "QinQ");
        }
    }

    #[test]
    fn ipv6_sources_hash_over_all_sixteen_bytes() {
        let mut f = vec![0u8; 14 + 40];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[14] = 0x60;
        let h1 = source_hash(&f).unwrap();
        f[14 + 8 + 15] = 1; // last byte of the source
        let h2 = source_hash(&f).unwrap();
        assert_ne!(h1, h2);
        f[14 + 24] = 9; // the destination does not count
        assert_eq!(source_hash(&f), Some(h2));
    }

    #[test]
    fn frames_without_a_source_stay_local() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(owner(&arp, 4), None);
        let short = ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1);
        assert_eq!(owner(&short[..20], 4), None, "cut inside the IPv4 header");
        assert_eq!(owner(&short[..5], 4), None);
        assert_eq!(owner(&[], 4), None);
        assert_eq!(owner(&short, 1), None, "one worker: nothing to steer");
    }

    #[test]
    fn sources_spread_over_workers() {
        let workers = 4;
        let mut n = [0u32; 4];
        for i in 0..4096u32 {
            let src = (0x0a00_0000 + i).to_be_bytes();
            n[owner(&ipv4(src, [1, 1, 1, 1], 1), workers).unwrap()] += 1;
        }
        // 1024 expected per worker; a fair hash stays well within 25 %.
        assert!(n.iter().all(|&c| (768..=1280).contains(&c)), "{n:?}");
    }

    #[test]
    fn mesh_links_every_pair_once() {
        let m = mesh(3, 8);
        for (i, w) in m.iter().enumerate() {
            for j in 0..3 {
                assert_eq!(w.to[j].is_some(), i != j);
                assert_eq!(w.from[j].is_some(), i != j);
            }
        }
    }
}

//! Connection limits and resets (issue 15): the per-source count of
//! concurrent connections behind `src_conns`, the settling of counts when a
//! flow leaves the flow table (FIN/RST, idle, eviction, a reset of Moat's
//! own), and the RSTs that end a connection on both sides (a denied first
//! segment, an empty connection).
//!
//! Counts are exact: a flow that was counted carries the bits that say so
//! ([`Flow::COUNTED_SRC`], [`Flow::COUNTED_DST`]), and every path by which
//! it leaves the table hands it to [`crate::state::WorkerState::flow_gone`],
//! which takes one off each count it is in. The per-source table never
//! needs to evict a live count: it holds an entry only for sources with at
//! least one counted flow, and has as many slots as the flow table.

use crate::parse::{Addr, Parsed, L3, L4};
use crate::state::flow::{Flow, FlowId};
use crate::state::table::{AddrKey, Table};
use crate::wire::{checksum, tcp::flags};

/// Concurrent connections per (source, service): `AddrKey` tagged with the
/// service, a count above zero.
#[derive(Debug)]
pub struct ConnCounts {
    table: Table<AddrKey, u32>,
}

impl ConnCounts {
    /// A table for `cap` sources (the flow table's capacity: enough for
    /// every flow to have a source of its own).
    pub fn with_capacity(cap: usize) -> Self {
        ConnCounts {
            table: Table::with_capacity(cap),
        }
    }

    /// The connections `src` has open toward service `service`.
    #[inline]
    pub fn get(&self, src: AddrKey, service: u16) -> u32 {
        let key = src.with_tag(service);
        self.table
            .probe(&key)
            .ok()
            .and_then(|h| self.table.get(h).copied())
            .unwrap_or(0)
    }

    /// Counts one more connection of `src` toward `service` if it has
    /// fewer than `limit`; `false` (nothing counted) when it has `limit`.
    #[inline]
    pub fn try_add(&mut self, src: AddrKey, service: u16, limit: u32) -> bool {
        let key = src.with_tag(service);
        match self.table.probe(&key) {
            Ok(hit) => match self.table.get_mut(hit) {
                Some(n) if *n < limit => {
                    *n += 1;
                    true
                }
                _ => false,
            },
            Err(miss) => {
                if limit == 0 {
                    return false;
                }
                // Never full of live counts (module docs); an entry at 0
                // does not exist, so there is nothing expired to prefer.
                self.table.insert(miss, key, 1, |&n| n == 0);
                true
            }
        }
    }

    /// One connection of `src` toward `service` ended.
    #[inline]
    pub fn sub(&mut self, src: AddrKey, service: u16) {
        let key = src.with_tag(service);
        if let Ok(hit) = self.table.probe(&key) {
            let left = match self.table.get_mut(hit) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n
                }
                None => return,
            };
            if left == 0 {
                self.table.remove(hit);
            }
        }
    }

    /// Forgets every count.
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// Sources with a connection counted.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Heap bytes reserved (constant after construction).
    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes()
    }
}

/// Rewrites the client's TCP segment in `frame` (parsed `p`) into a RST
/// from the client toward the origin: same addresses, ports, sequence and
/// acknowledgement numbers (the origin expects exactly that sequence
/// number, RFC 5961 §3.2), flags RST+ACK, the payload cut off, lengths and
/// checksums recomputed. Returns the summary of the rewritten packet (the
/// frame's new length is `l3_offset + l3_len`), `None` when `p` is not a
/// whole TCP segment of `frame`.
pub fn reset_in_place(frame: &mut [u8], p: &Parsed) -> Option<Parsed> {
    let L4::Tcp(mut t) = p.l4 else {
        return None;
    };
    let (l3, l4) = (usize::from(p.l3_offset), usize::from(p.l4_offset));
    let hl = usize::from(t.header_len);
    let len = l4 - l3 + hl;
    if frame.len() < l3 + usize::from(p.l3_len) || len > usize::from(p.l3_len) {
        return None;
    }
    t.flags = flags::RST | flags::ACK;
    frame[l4 + 13] = t.flags;
    match p.l3 {
        L3::Ipv4 => {
            frame[l3 + 2..l3 + 4].copy_from_slice(&(len as u16).to_be_bytes());
            let ihl = usize::from(p.ip_header_len);
            frame[l3 + 10..l3 + 12].fill(0);
            let c = checksum::finish(checksum::data(&frame[l3..l3 + ihl]));
            frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        L3::Ipv6 => frame[l3 + 4..l3 + 6].copy_from_slice(&((len - 40) as u16).to_be_bytes()),
        L3::Arp => return None,
    }
    let mut q = *p;
    q.l4 = L4::Tcp(t);
    q.l3_len = len as u16;
    q.payload_len = 0;
    q.payload_offset = (l4 + hl) as u16;
    if !crate::build::complete_l4_checksum(&mut frame[..l3 + len], &q) {
        return None;
    }
    Some(q)
}

/// Longest L2 header [`client_segment`] copies (Ethernet and two VLAN tags).
pub const MAX_L2: usize = 22;

/// Writes into `out` a TCP segment from the client of `id` to the service,
/// after the L2 header `l2` (a client frame's, as received: the frame then
/// looks like one of the client's own): sequence `seq`, acknowledgement
/// `ack`, `flags`, no options, window 0, correct checksums. Returns its
/// length; `None` when `out` is too small or `l2` is not 14 to
/// [`MAX_L2`] bytes. For the RSTs that end a connection Moat saw no packet
/// of (an empty connection): the classifier's [`crate::build::tcp_reply`]
/// makes the one toward the client from it, and the pipeline sends it
/// toward the origin as it is.
pub fn client_segment(l2: &[u8], id: &FlowId, seq: u32, ack: u32, tcp_flags: u8, out: &mut [u8]) -> Option<usize> {
    if !(14..=MAX_L2).contains(&l2.len()) {
        return None;
    }
    let (src, v6) = id.src();
    let dst = id.dst();
    let (sport, dport) = id.ports();
    let ip_len = if v6 { 40 } else { 20 };
    let len = l2.len() + ip_len + 20;
    let out = out.get_mut(..len.max(crate::build::ETH_MIN_FRAME))?;
    out.fill(0);
    out[..l2.len()].copy_from_slice(l2);
    // The EtherType of the innermost header must say the family.
    let et = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    out[l2.len() - 2..l2.len()].copy_from_slice(&et);
    let ip = l2.len();
    if v6 {
        out[ip] = 0x60;
        out[ip + 4..ip + 6].copy_from_slice(&20u16.to_be_bytes());
        out[ip + 6] = 6;
        out[ip + 7] = crate::build::REPLY_TTL;
        out[ip + 8..ip + 24].copy_from_slice(&src.v6_bits().to_be_bytes());
        out[ip + 24..ip + 40].copy_from_slice(&dst.v6_bits().to_be_bytes());
    } else {
        out[ip] = 0x45;
        out[ip + 2..ip + 4].copy_from_slice(&40u16.to_be_bytes());
        out[ip + 6] = 0x40;
        out[ip + 8] = crate::build::REPLY_TTL;
        out[ip + 9] = 6;
        out[ip + 12..ip + 16].copy_from_slice(&src.v4_bits().to_be_bytes());
        out[ip + 16..ip + 20].copy_from_slice(&dst.v4_bits().to_be_bytes());
        let c = checksum::finish(checksum::data(&out[ip..ip + 20]));
        out[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    }
    let tcp = ip + ip_len;
    out[tcp..tcp + 2].copy_from_slice(&sport.to_be_bytes());
    out[tcp + 2..tcp + 4].copy_from_slice(&dport.to_be_bytes());
    out[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
    out[tcp + 8..tcp + 12].copy_from_slice(&ack.to_be_bytes());
    out[tcp + 12] = 5 << 4;
    out[tcp + 13] = tcp_flags;
    let pseudo = if v6 {
        checksum::pseudo_header_v6(src.v6_bits().into(), dst.v6_bits().into(), 6, 20)
    } else {
        checksum::pseudo_header_v4(src.v4_bits().into(), dst.v4_bits().into(), 6, 20)
    };
    let c = checksum::finish(checksum::combine(&[pseudo, checksum::data(&out[tcp..tcp + 20])]));
    out[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
    Some(len.max(crate::build::ETH_MIN_FRAME))
}

/// The flow table's key of a segment built by [`client_segment`] (or any
/// parsed segment): for tests and the sweep.
#[inline]
pub fn flow_of(p: &Parsed) -> Option<FlowId> {
    p.tcp().map(|t| FlowId::of(p, t))
}

/// The source address of a flow, for a [`crate::state::Violation`].
#[inline]
pub fn flow_src_ip(id: &FlowId) -> core::net::IpAddr {
    let (a, v6): (Addr, bool) = id.src();
    a.to_ip(v6)
}

/// What [`crate::state::WorkerState::flow_gone`] needs to know of a flow
/// that ended: its counts ([`Flow::bits`]) and service.
#[inline]
pub const fn counted(f: &Flow) -> bool {
    f.bits & (Flow::COUNTED_SRC | Flow::COUNTED_DST) != 0
}

//! ARP toward next hops (RFC 826): the who-has request Moat broadcasts to
//! resolve a next hop's MAC, and [`arp_sender`], which reads the mapping a
//! received request or reply announces, so that both can be learned.
//!
//! Answering requests for the node's own addresses is
//! [`super::arp_reply`]'s job.

use core::net::Ipv4Addr;

use super::ETH_MIN_FRAME;
use crate::parse::{parse, L3};
use crate::wire::{self, ArpOperation, EtherType};

/// A broadcast ARP request (RFC 826) from `src_mac` / `src_ip` asking for
/// `target`'s MAC, untagged, zero-padded to [`ETH_MIN_FRAME`]. The target
/// hardware address is zero (RFC 826 leaves it open; RFC 5227 §2.1.1 asks
/// for zero). `None` when `out` is shorter than 60 bytes.
pub fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target: Ipv4Addr, out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..ETH_MIN_FRAME)?;
    out.fill(0);
    let (l2, rest) = out.split_at_mut(wire::ethernet::HEADER_LEN);
    let mut eth = wire::EthernetFrame::new_unchecked(l2);
    eth.set_dst_addr([0xff; 6]);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EtherType::Arp); // the buffer is zeroed: no tags
    let mut a = wire::ArpPacket::new_unchecked(&mut rest[..wire::arp::PACKET_LEN]);
    a.set_ethernet_ipv4();
    a.set_operation(ArpOperation::Request);
    a.set_source_hardware_addr(src_mac);
    a.set_source_protocol_addr(src_ip);
    a.set_target_protocol_addr(target);
    Some(ETH_MIN_FRAME)
}

/// What an ARP request or reply tells about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
    /// [`ArpOperation::Request`] or [`ArpOperation::Reply`].
    pub op: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address (0.0.0.0 in an RFC 5227 probe).
    pub sender_ip: Ipv4Addr,
    /// Target protocol address: the address asked about (request) or the
    /// one the reply answers.
    pub target_ip: Ipv4Addr,
    /// VLAN ID of the outermost tag, 0 when untagged.
    pub vlan_id: u16,
}

impl ArpInfo {
    /// Whether the sender mapping may be learned: a unicast, non-zero MAC
    /// and an address of one host. This excludes RFC 5227 probes (sender
    /// 0.0.0.0), which announce no mapping, and forged group addresses.
    pub fn learnable(&self) -> bool {
        let mac_ok = self.sender_mac[0] & 1 == 0 && self.sender_mac != [0; 6];
        let ip = self.sender_ip;
        mac_ok && !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
    }
}

/// The sender, operation and target address of an Ethernet/IPv4 ARP
/// request or reply in `frame` (untagged, 802.1Q or QinQ, as [`parse`]
/// reads them). `None` for anything else, other ARP operations included.
pub fn arp_sender(frame: &[u8]) -> Option<ArpInfo> {
    let p = parse(frame).ok()?;
    if p.l3 != L3::Arp {
        return None;
    }
    let a = wire::ArpPacket::new_checked(p.l3_bytes(frame)).ok()?;
    let op = a.operation();
    if !matches!(op, ArpOperation::Request | ArpOperation::Reply) {
        return None;
    }
    Some(ArpInfo {
        op,
        sender_mac: a.source_hardware_addr(),
        sender_ip: a.source_protocol_addr(),
        target_ip: a.target_protocol_addr(),
        vlan_id: p.vlan_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::arp_reply;
    use crate::parse::fixtures::{LINUX_SYN, QINQ_ARP};

    const MAC: [u8; 6] = [0x02, 0x6d, 0x6f, 0x61, 0x74, 0x01];

    #[test]
    fn request_bytes() {
        let mut out = [0xaau8; 64];
        let n = arp_request(
            MAC,
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(192, 0, 2, 254),
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 60);
        let mut want = [0u8; 60];
        want[..42].copy_from_slice(&[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // broadcast
            0x02, 0x6d, 0x6f, 0x61, 0x74, 0x01, // us
            0x08, 0x06, // ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
            0x02, 0x6d, 0x6f, 0x61, 0x74, 0x01, 192, 0, 2, 2, // sender
            0, 0, 0, 0, 0, 0, 192, 0, 2, 254, // target
        ]);
        assert_eq!(&out[..n], &want[..]);
        assert_eq!(out[60], 0xaa, "nothing written past the frame");
        assert_eq!(
            arp_request(MAC, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &mut out[..59]),
            None
        );
    }

    #[test]
    fn sender_of_a_request_and_a_reply() {
        let req = arp_sender(&QINQ_ARP).unwrap();
        let want = ArpInfo {
            op: ArpOperation::Request,
            sender_mac: [2, 0, 0, 0, 0, 2],
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_ip: Ipv4Addr::new(192, 0, 2, 10),
            vlan_id: 100,
        };
        assert_eq!(req, want);
        assert!(req.learnable());
        let mut out = [0u8; 64];
        let p = parse(&QINQ_ARP).unwrap();
        let n = arp_reply(&QINQ_ARP, &p, MAC, &mut out).unwrap();
        let rep = arp_sender(&out[..n]).unwrap();
        assert_eq!(
            rep,
            ArpInfo {
                op: ArpOperation::Reply,
                sender_mac: MAC,
                sender_ip: want.target_ip,
                target_ip: want.sender_ip,
                vlan_id: 100,
            }
        );
        // Our own request reads back.
        let n = arp_request(MAC, want.target_ip, want.sender_ip, &mut out).unwrap();
        let own = arp_sender(&out[..n]).unwrap();
        assert_eq!((own.op, own.sender_mac, own.vlan_id), (ArpOperation::Request, MAC, 0));
    }

    #[test]
    fn sender_refusals() {
        let mut f = QINQ_ARP;
        f[29] = 3; // RARP request: another operation
        assert_eq!(arp_sender(&f), None);
        assert_eq!(arp_sender(&QINQ_ARP[..49]), None, "truncated");
        assert_eq!(arp_sender(&LINUX_SYN), None, "not ARP");
        let mut f = QINQ_ARP;
        f[24] = 0x86; // protocol type IPv6
        assert_eq!(arp_sender(&f), None);
    }

    #[test]
    fn learnable() {
        let base = arp_sender(&QINQ_ARP).unwrap();
        let probe = ArpInfo {
            sender_ip: Ipv4Addr::UNSPECIFIED,
            ..base
        };
        assert!(!probe.learnable(), "RFC 5227 probe");
        for mac in [[0; 6], [0xff; 6], [0x01, 0, 0x5e, 0, 0, 1]] {
            assert!(
                !ArpInfo {
                    sender_mac: mac,
                    ..base
                }
                .learnable(),
                "{mac:?}"
            );
        }
        for ip in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 1), Ipv4Addr::LOCALHOST] {
            assert!(!ArpInfo { sender_ip: ip, ..base }.learnable(), "{ip}");
        }
    }
}

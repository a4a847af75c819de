//! The pipeline's in-place outcomes: GRE encapsulation into the headroom,
//! ICMP too-big answers within their rate, partial checksums completed
//! before a packet leaves for the origin.

use core::net::{IpAddr, Ipv4Addr};

use classifier::build::GreParams;
use classifier::cookie::CookieSecrets;
use classifier::policy::{Origin, Policy, Service};
use classifier::state::StateConfig;
use classifier::verdict::DropReason;
use dataplane::pipeline::{Outcome, Pipeline};
use dataplane::port::{Csum, Frame, HeapFrame};

const VIP: [u8; 4] = [203, 0, 113, 10];
const CLIENT: [u8; 4] = [198, 51, 100, 7];

fn setup() -> (Policy, Pipeline) {
    let mut p = Policy::new(CookieSecrets::new([1; 16]));
    let o = p.add_origin(Origin {
        name: "web".into(),
        tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
        tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
        key: None,
        mtu: 1476,
    });
    let mut s = Service::new("web", IpAddr::V4(Ipv4Addr::from(VIP)), o);
    s.udp_ports.insert(7777);
    p.add_service(s).unwrap();
    let gre = vec![GreParams {
        src_mac: [2, 0, 0, 0, 1, 1],
        dst_mac: [2, 0, 0, 0, 1, 2],
        tunnel_src: Ipv4Addr::new(192, 168, 77, 1),
        tunnel_dst: Ipv4Addr::new(192, 168, 77, 2),
        key: None,
        ttl: 64,
    }];
    let sizes = StateConfig {
        flows: 1024,
        verified: 1024,
        sources: 1024,
        reassembly: Default::default(),
        bans: 64,
    };
    let pipe = Pipeline::new(&p, gre, &sizes, 1);
    (p, pipe)
}

fn udp(payload_len: usize) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
        .ipv4(CLIENT, VIP, 64)
        .udp(40000, 7777);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x47; payload_len]).unwrap();
    v
}

fn frame(bytes: &[u8]) -> HeapFrame {
    let mut f = HeapFrame::new();
    assert!(f.fill(bytes));
    f
}

#[test]
fn a_datagram_too_big_for_the_tunnel_gets_fragmentation_needed_within_the_rate() {
    let (pol, mut pipe) = setup();
    pipe.set_icmp_rate(1, 1);
    // 20 + 8 + 1472 = 1500 bytes of IP, DF set by etherparse: over 1476.
    let big = udp(1472);
    let mut f = frame(&big);
    let mut parsed = None;
    assert_eq!(pipe.process_frame(&pol, 1, &mut f, &mut parsed), Outcome::Reply);
    let e = etherparse::SlicedPacket::from_ethernet(f.data()).unwrap();
    assert_eq!(&f.data()[..12], &[2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0, 1], "L2 swapped");
    let Some(etherparse::NetSlice::Ipv4(ip)) = e.net else {
        panic!("not IPv4")
    };
    assert_eq!(ip.header().source(), VIP, "from the VIP");
    assert_eq!(ip.header().destination(), CLIENT);
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = e.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1476 }
        )
    );
    // The rate (1/s) is spent: the next one is only dropped.
    let mut g = frame(&big);
    assert_eq!(
        pipe.process_frame(&pol, 2, &mut g, &mut parsed),
        Outcome::Drop(DropReason::TooBig)
    );
    let c = pipe.counters();
    assert_eq!(
        (c.dropped[DropReason::TooBig as usize], c.icmp_too_big, c.replies),
        (2, 1, 1)
    );
    // A datagram that fits goes through, GRE-encapsulated in place.
    let mut ok = frame(&udp(1448));
    assert_eq!(
        pipe.process_frame(&pol, 3, &mut ok, &mut parsed),
        Outcome::Forward { service: 0 }
    );
    assert_eq!(ok.data().len(), 14 + 20 + 4 + 1476);
    assert_eq!(&ok.data()[38..], &udp(1448)[14..]);
}

#[test]
fn a_partial_checksum_is_completed_before_the_packet_leaves() {
    let (pol, mut pipe) = setup();
    let good = udp(32);
    let mut partial = good.clone();
    // What a local sender with checksum offload hands over: the field holds
    // the pseudo-header sum only.
    partial[40..42].copy_from_slice(&[0x12, 0x34]);
    let mut f = frame(&partial);
    f.set_csum(Csum::Partial);
    let mut parsed = None;
    assert_eq!(
        pipe.process_frame(&pol, 1, &mut f, &mut parsed),
        Outcome::Forward { service: 0 }
    );
    assert_eq!(&f.data()[38..], &good[14..], "inner packet with its real checksum");
    assert_eq!(pipe.counters().csum_completed, 1);
    // Without the partial mark the frame is forwarded as it came.
    let mut g = frame(&partial);
    assert_eq!(
        pipe.process_frame(&pol, 2, &mut g, &mut parsed),
        Outcome::Forward { service: 0 }
    );
    assert_eq!(&g.data()[38..], &partial[14..]);
}

#[test]
fn sweep_frees_idle_flows_between_bursts() {
    let (mut pol, mut pipe) = setup();
    let idle = pol.timeouts.flow_idle;
    let s = &mut pol.services[0];
    s.tcp_ports.insert(80);
    s.syn_auth = classifier::policy::SynAuth::Off;
    let mut parsed = None;
    for port in 0..10u16 {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
            .ipv4(CLIENT, VIP, 64)
            .tcp(40000 + port, 80, 1, 64240)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        let mut f = frame(&v);
        assert_eq!(
            pipe.process_frame(&pol, 1, &mut f, &mut parsed),
            Outcome::Forward { service: 0 }
        );
    }
    assert_eq!(pipe.state().flows.len(), 10);
    assert_eq!(pipe.sweep(&pol, 1 + idle / 2, 1 << 20), 0, "nothing idle yet");
    // Flow times are kept in ~1 ms ticks: gone within 3 ms past the idle
    // timeout.
    assert!(pipe.sweep(&pol, 3_000_000 + idle, 1 << 20) >= 10);
    assert_eq!(pipe.state().flows.len(), 0);
}

/// Every packet addressed to the service counts in its figures, whatever
/// became of it; packets for no service count nowhere.
#[test]
fn per_service_counters_cover_every_outcome() {
    let (pol, mut pipe) = setup();
    let mut parsed = None;
    // Passed UDP.
    let ok = udp(10);
    let out = pipe.process_frame(&pol, 1, &mut frame(&ok), &mut parsed);
    assert!(matches!(out, Outcome::Forward { service: 0 }), "{out:?}");
    // Dropped TCP SYN (the service allows no TCP port).
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
        .ipv4(CLIENT, VIP, 64)
        .tcp(40000, 80, 1, 1024)
        .syn();
    let mut syn = Vec::new();
    b.write(&mut syn, &[]).unwrap();
    let out = pipe.process_frame(&pol, 2, &mut frame(&syn), &mut parsed);
    assert_eq!(out, Outcome::Drop(DropReason::PortNotAllowed));
    // Dropped ICMP.
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
        .ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(1, 1);
    let mut ping = Vec::new();
    b.write(&mut ping, &[0; 8]).unwrap();
    let out = pipe.process_frame(&pol, 3, &mut frame(&ping), &mut parsed);
    assert_eq!(out, Outcome::Drop(DropReason::PortNotAllowed));
    // Not a service: counted as a drop, not in the service's figures.
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xfe], [2, 0, 0, 0, 0, 1])
        .ipv4(CLIENT, [203, 0, 113, 99], 64)
        .udp(40000, 7777);
    let mut other = Vec::new();
    b.write(&mut other, &[1]).unwrap();
    let out = pipe.process_frame(&pol, 4, &mut frame(&other), &mut parsed);
    assert_eq!(out, Outcome::Drop(DropReason::NoService));

    let c = pipe.counters().services[0];
    assert_eq!(c.packets, 3);
    assert_eq!(c.bytes as usize, ok.len() + syn.len() + ping.len());
    assert_eq!((c.tcp, c.udp, c.icmp, c.other), (1, 1, 1, 0));
    assert_eq!((c.syns, c.new_flows, c.dropped), (1, 0, 2));
    assert_eq!(pipe.counters().rx_packets, 4);
}

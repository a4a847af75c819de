//! The next hop's MAC by ARP (RFC 826), before the clients start: Moat
//! answers ARP for its own outside address, so the load tester finds it as
//! a client's router would.

use core::net::Ipv4Addr;
use std::time::{Duration, Instant};

use classifier::build::{arp_request, arp_sender, ETH_MIN_FRAME};
use classifier::wire::ArpOperation;

use crate::port::{send_all, Burst, Frame, PortId, Queues};

/// How often the request is repeated while no answer comes.
const RETRY: Duration = Duration::from_millis(200);

/// Asks for `target`'s MAC on the outside port from `our_mac` /
/// `our_ip`, every 200 ms until `timeout`; an error says it got no answer.
/// Whatever else arrives meanwhile is dropped.
pub fn resolve<Q: Queues>(
    q: &mut Q,
    our_mac: [u8; 6],
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
    timeout: Duration,
) -> Result<[u8; 6], String> {
    let start = Instant::now();
    let mut asked: Option<Instant> = None;
    let mut rx: Burst<Q::Frame> = Burst::new();
    let mut out: Burst<Q::Frame> = Burst::new();
    while start.elapsed() < timeout {
        if asked.is_none_or(|t| t.elapsed() >= RETRY) {
            let mut f = q.alloc().ok_or("no frame buffer for the ARP request")?;
            if f.set_len(ETH_MIN_FRAME) && arp_request(our_mac, our_ip, target, f.data_mut()).is_some() {
                out.push(f);
                send_all(q, PortId::Outside, &mut out);
            } else {
                q.free(f);
            }
            asked = Some(Instant::now());
        }
        q.rx_burst(PortId::Outside, &mut rx, 64);
        let mut found = None;
        for f in rx.drain(..) {
            if let Some(a) = arp_sender(f.data()) {
                if a.op == ArpOperation::Reply && a.sender_ip == target && a.learnable() {
                    found = Some(a.sender_mac);
                }
            }
            q.free(f);
        }
        if let Some(mac) = found {
            return Ok(mac);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!(
        "no ARP answer for {target} in {:.1} s (is it the service's next hop, e.g. Moat's outside address?)",
        timeout.as_secs_f64()
    ))
}

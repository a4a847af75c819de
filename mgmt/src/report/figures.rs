//! One service's traffic figures over one interval, from two snapshots of
//! the workers' per-service counters: what a report's timeline records,
//! what detection judges and what the REST API shows as a service's rates.

use dataplane::pipeline::ServiceCounters;
use serde::{Deserialize, Serialize};

/// Rates over one interval, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    pub pps: f64,
    /// Bits per second as received (whole frames).
    pub bps: f64,
    pub syn_pps: f64,
    /// New flows (passed SYNs) per second.
    pub flows_ps: f64,
    pub tcp_pps: f64,
    pub udp_pps: f64,
    pub icmp_pps: f64,
    pub other_pps: f64,
    pub drop_pps: f64,
}

impl Figures {
    /// The rates between `prev` and `now`, `secs` apart. Counters never go
    /// backwards; a smaller value (a restarted worker) counts as 0.
    pub fn between(now: &ServiceCounters, prev: &ServiceCounters, secs: f64) -> Figures {
        let secs = secs.max(1e-3);
        let r = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        Figures {
            pps: r(now.packets, prev.packets),
            bps: r(now.bytes, prev.bytes) * 8.0,
            syn_pps: r(now.syns, prev.syns),
            flows_ps: r(now.new_flows, prev.new_flows),
            tcp_pps: r(now.tcp, prev.tcp),
            udp_pps: r(now.udp, prev.udp),
            icmp_pps: r(now.icmp, prev.icmp),
            other_pps: r(now.other, prev.other),
            drop_pps: r(now.dropped, prev.dropped),
        }
    }

    /// The mean of `self` and `o` weighted `n` to 1 (timeline coarsening).
    pub fn merge(&self, o: &Figures, n: f64) -> Figures {
        let m = |a: f64, b: f64| (a * n + b) / (n + 1.0);
        Figures {
            pps: m(self.pps, o.pps),
            bps: m(self.bps, o.bps),
            syn_pps: m(self.syn_pps, o.syn_pps),
            flows_ps: m(self.flows_ps, o.flows_ps),
            tcp_pps: m(self.tcp_pps, o.tcp_pps),
            udp_pps: m(self.udp_pps, o.udp_pps),
            icmp_pps: m(self.icmp_pps, o.icmp_pps),
            other_pps: m(self.other_pps, o.other_pps),
            drop_pps: m(self.drop_pps, o.drop_pps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_deltas() {
        let prev = ServiceCounters {
            packets: 100,
            bytes: 10_000,
            ..Default::default()
        };
        let now = ServiceCounters {
            packets: 2100,
            bytes: 260_000,
            syns: 1000,
            new_flows: 10,
            tcp: 1500,
            udp: 400,
            icmp: 100,
            other: 0,
            dropped: 900,
        };
        let f = Figures::between(&now, &prev, 2.0);
        assert_eq!(f.pps, 1000.0);
        assert_eq!(f.bps, 1_000_000.0);
        assert_eq!((f.syn_pps, f.flows_ps, f.drop_pps), (500.0, 5.0, 450.0));
        assert_eq!((f.tcp_pps, f.udp_pps, f.icmp_pps), (750.0, 200.0, 50.0));
        // A counter that went backwards counts as nothing.
        assert_eq!(Figures::between(&prev, &now, 1.0).pps, 0.0);
    }
}

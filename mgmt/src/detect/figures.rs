//! The metrics that thresholds and the baseline judge, read from a
//! service's [`Figures`] (the rates themselves are the reports' data:
//! [`crate::report::figures`]).

use crate::config::Thresholds;
pub use crate::report::figures::Figures;

/// What a threshold or the baseline is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Pps,
    Mbps,
    Flows,
    SynPps,
    UdpPps,
    IcmpPps,
    DropPps,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Pps,
        Metric::Mbps,
        Metric::Flows,
        Metric::SynPps,
        Metric::UdpPps,
        Metric::IcmpPps,
        Metric::DropPps,
    ];
    /// The metrics a learned baseline judges (packet rates).
    pub const BASELINE: [Metric; 4] = [Metric::Pps, Metric::SynPps, Metric::UdpPps, Metric::IcmpPps];

    /// The config key of its threshold.
    pub const fn threshold_key(self) -> &'static str {
        match self {
            Metric::Pps => "threshold_pps",
            Metric::Mbps => "threshold_mbps",
            Metric::Flows => "threshold_flows",
            Metric::SynPps => "threshold_syn_pps",
            Metric::UdpPps => "threshold_udp_pps",
            Metric::IcmpPps => "threshold_icmp_pps",
            Metric::DropPps => "threshold_drop_pps",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Pps => "pps",
            Metric::Mbps => "mbps",
            Metric::Flows => "flows",
            Metric::SynPps => "syn_pps",
            Metric::UdpPps => "udp_pps",
            Metric::IcmpPps => "icmp_pps",
            Metric::DropPps => "drop_pps",
        }
    }

    /// Its value in `f`, in the threshold's unit.
    pub fn of(self, f: &Figures) -> f64 {
        match self {
            Metric::Pps => f.pps,
            Metric::Mbps => f.bps / 1e6,
            Metric::Flows => f.flows_ps,
            Metric::SynPps => f.syn_pps,
            Metric::UdpPps => f.udp_pps,
            Metric::IcmpPps => f.icmp_pps,
            Metric::DropPps => f.drop_pps,
        }
    }

    /// Its threshold in `t` (0 or absent: none).
    pub fn limit(self, t: &Thresholds) -> Option<u64> {
        let v = match self {
            Metric::Pps => t.threshold_pps,
            Metric::Mbps => t.threshold_mbps,
            Metric::Flows => t.threshold_flows,
            Metric::SynPps => t.threshold_syn_pps,
            Metric::UdpPps => t.threshold_udp_pps,
            Metric::IcmpPps => t.threshold_icmp_pps,
            Metric::DropPps => t.threshold_drop_pps,
        };
        v.filter(|v| *v > 0)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_in_threshold_units() {
        let f = Figures {
            pps: 1000.0,
            bps: 1_000_000.0,
            flows_ps: 5.0,
            drop_pps: 450.0,
            ..Figures::default()
        };
        assert_eq!(Metric::Mbps.of(&f), 1.0);
        assert_eq!((Metric::Flows.of(&f), Metric::DropPps.of(&f)), (5.0, 450.0));
        let t = Thresholds {
            threshold_pps: Some(0),
            threshold_mbps: Some(10),
            ..Thresholds::default()
        };
        assert_eq!(Metric::Pps.limit(&t), None, "0 is no threshold");
        assert_eq!(Metric::Mbps.limit(&t), Some(10));
    }
}

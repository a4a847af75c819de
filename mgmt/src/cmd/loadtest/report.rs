//! What `moat loadtest run` reports: the generated clients' totals and
//! per-client figures, the flood's, curl's; as a summary for people and as
//! JSON for `sweep` and scripts.

use std::net::Ipv4Addr;

use dataplane::loadtest::{ClientStats, Failure, Totals};
use serde_json::{json, Value};

/// The flood beside the clients.
#[derive(Debug, Clone)]
pub struct FloodReport {
    pub profile: String,
    /// 0: as fast as the interface took them.
    pub target_pps: u64,
    pub sent: u64,
    pub bytes: u64,
    pub errors: u64,
    pub secs: f64,
}

impl FloodReport {
    pub fn pps(&self) -> f64 {
        rate(self.sent, self.secs)
    }
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub clients: u32,
    pub cores: u32,
    pub src: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub duration_secs: f64,
    pub elapsed_secs: f64,
    pub generated: Totals,
    pub per_client: Vec<(Ipv4Addr, ClientStats)>,
    pub flood: Option<FloodReport>,
    pub curl: Option<Totals>,
    /// TCP segments the host's kernel sent meanwhile (`Tcp: OutSegs` of
    /// /proc/net/snmp): curl's, for telling the flood apart in Moat's
    /// counters.
    pub kernel_tcp_out_segs: Option<u64>,
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Completed over ended (completed + failed); `None` when none ended.
pub fn success_rate(t: &Totals) -> Option<f64> {
    let ended = t.c.completed + t.c.failed_total();
    (ended > 0).then(|| t.c.completed as f64 / ended as f64)
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Tried, completed, failed by reason, success rate, TTFB quantiles.
pub fn outcome_json(t: &Totals) -> Value {
    let failed: serde_json::Map<String, Value> = Failure::ALL
        .iter()
        .map(|f| (f.as_str().to_string(), json!(t.c.failed(*f))))
        .collect();
    let ttfb = if t.ttfb.is_empty() {
        Value::Null
    } else {
        json!({
            "p50": t.ttfb_ms(0.5), "p90": t.ttfb_ms(0.9), "p99": t.ttfb_ms(0.99),
            "max": t.ttfb.max() as f64 / 1000.0, "mean": t.ttfb.mean() / 1000.0,
        })
    };
    json!({
        "tried": t.c.tried,
        "completed": t.c.completed,
        "failed": failed,
        "success_rate": success_rate(t),
        "ttfb_ms": ttfb,
    })
}

impl RunReport {
    pub fn json(&self) -> Value {
        let c = &self.generated.c;
        let mut generated = outcome_json(&self.generated);
        generated["tcp"] = json!({
            "handshakes": c.handshakes, "challenge_rsts": c.challenge_rsts,
            "syn_retransmits": c.syn_retransmits, "data_retransmits": c.data_retransmits,
            "resets_received": c.resets_received, "reconnects": c.reconnects,
            "tx_frames": c.tx_frames, "tx_dropped": c.tx_dropped,
            "rx_frames": c.rx_frames, "rx_stray": c.rx_stray, "rx_out_of_order": c.rx_out_of_order,
        });
        let per_client: Vec<Value> = self
            .per_client
            .iter()
            .map(|(addr, s)| {
                json!({
                    "addr": addr.to_string(), "tried": s.tried, "completed": s.completed,
                    "failed": s.failed.iter().sum::<u64>(),
                    "ttfb_mean_ms": (s.completed > 0).then(|| ms(s.ttfb_sum) / s.completed as f64),
                    "ttfb_max_ms": ms(s.ttfb_max),
                })
            })
            .collect();
        let flood = self.flood.as_ref().map(|f| {
            json!({
                "profile": f.profile, "target_pps": f.target_pps, "sent": f.sent, "bytes": f.bytes,
                "errors": f.errors, "secs": f.secs, "pps": f.pps(),
            })
        });
        json!({
            "clients": self.clients,
            "cores": self.cores,
            "src": self.src,
            "vip": self.vip.to_string(),
            "port": self.port,
            "duration_secs": self.duration_secs,
            "elapsed_secs": self.elapsed_secs,
            "generated": generated,
            "per_client": per_client,
            "flood": flood,
            "curl": self.curl.as_ref().map(outcome_json),
            "kernel_tcp_out_segs": self.kernel_tcp_out_segs,
        })
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} generated client(s) on {} core(s) from {} to {}:{} for {:.1} s ({:.1} s with the last connections)\n",
            self.clients, self.cores, self.src, self.vip, self.port, self.duration_secs, self.elapsed_secs
        );
        s.push_str(&line("generated", &self.generated));
        let c = &self.generated.c;
        s.push_str(&format!(
            "  tcp: {} handshakes, {} challenge RSTs, {} SYN retransmits, {} request retransmits, {} resets, {} reconnects\n",
            c.handshakes, c.challenge_rsts, c.syn_retransmits, c.data_retransmits, c.resets_received, c.reconnects
        ));
        let starved = self
            .per_client
            .iter()
            .filter(|(_, s)| s.tried > 0 && s.completed == 0)
            .count();
        s.push_str(&format!(
            "  clients with no completed connection: {starved} of {}\n",
            self.per_client.len()
        ));
        if let Some(t) = &self.curl {
            s.push_str(&line("curl", t));
        }
        if let Some(f) = &self.flood {
            s.push_str(&format!(
                "flood {}: {} packets in {:.1} s ({:.0} pps, target {}), {} errors\n",
                f.profile,
                f.sent,
                f.secs,
                f.pps(),
                if f.target_pps == 0 {
                    "max".to_string()
                } else {
                    f.target_pps.to_string()
                },
                f.errors
            ));
        }
        s
    }
}

fn line(who: &str, t: &Totals) -> String {
    let q = |x: f64| t.ttfb_ms(x).map_or("-".to_string(), |v| format!("{v:.1}"));
    format!(
        "{who}: tried {}, completed {}, failed {} (timeout {}, reset {}, bad answer {}), success {}; TTFB ms p50 {} p99 {}\n",
        t.c.tried,
        t.c.completed,
        t.c.failed_total(),
        t.c.failed(Failure::Timeout),
        t.c.failed(Failure::Reset),
        t.c.failed(Failure::BadAnswer),
        success_rate(t).map_or("-".to_string(), |r| format!("{:.1} %", r * 100.0)),
        q(0.5),
        q(0.99),
    )
}

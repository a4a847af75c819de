//! Real Linux clients beside the generated ones: `curl` from one of the
//! host's own addresses, one fetch at a time, so that the host's TCP stack
//! meets Moat's SYN authentication and the origin exactly as the generated
//! clients do. Counted like them ([`Totals`]): tried, completed (a 2xx
//! answer), failed by reason, time to first byte (`%{time_starttransfer}`:
//! from the start of the fetch, SYN retransmissions included).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use classifier::time::SECOND;
use dataplane::loadtest::{Failure, Totals};

/// curl's exit codes that mean the connection was refused or reset (7
/// couldn't connect, 35 SSL connect, 52 empty reply, 55 send error, 56
/// receive error); 28 is its timeout.
const RESET_EXITS: [i32; 5] = [7, 35, 52, 55, 56];
const TIMEOUT_EXIT: i32 = 28;

/// Running figures for the live line: (tried, completed).
#[derive(Debug, Default)]
pub struct CurlLive {
    pub tried: AtomicU64,
    pub completed: AtomicU64,
}

/// Fetches `url` from `src` until `until` (no fetch starts later), `think`
/// apart, each bounded by `timeout` seconds.
pub fn fetch_loop(src: Ipv4Addr, url: &str, until: Instant, think: Duration, timeout: f64, live: &CurlLive) -> Totals {
    let mut t = Totals::default();
    while Instant::now() < until {
        t.c.tried += 1;
        live.tried.fetch_add(1, Relaxed);
        match fetch(src, url, timeout) {
            Ok(ttfb) => {
                t.completed(ttfb);
                live.completed.fetch_add(1, Relaxed);
            }
            Err(why) => t.failed(why),
        }
        std::thread::sleep(think);
    }
    t
}

/// One fetch: its time to first byte in nanoseconds, or why it failed.
fn fetch(src: Ipv4Addr, url: &str, timeout: f64) -> Result<u64, Failure> {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", &format!("{timeout}")])
        .args(["--interface", &src.to_string()])
        .args(["-w", "%{http_code} %{time_starttransfer}"])
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|_| Failure::BadAnswer)?;
    match out.status.code() {
        Some(0) => {}
        Some(TIMEOUT_EXIT) => return Err(Failure::Timeout),
        Some(c) if RESET_EXITS.contains(&c) => return Err(Failure::Reset),
        _ => return Err(Failure::BadAnswer),
    }
    parse_write_out(&String::from_utf8_lossy(&out.stdout))
}

/// `-w "%{http_code} %{time_starttransfer}"`: a 2xx code and the seconds.
fn parse_write_out(s: &str) -> Result<u64, Failure> {
    let mut f = s.split_whitespace();
    let code: u16 = f.next().and_then(|c| c.parse().ok()).ok_or(Failure::BadAnswer)?;
    let secs: f64 = f.next().and_then(|c| c.parse().ok()).ok_or(Failure::BadAnswer)?;
    if !(200..300).contains(&code) || !secs.is_finite() || secs < 0.0 {
        return Err(Failure::BadAnswer);
    }
    Ok((secs * SECOND as f64) as u64)
}

/// Whether `curl` can be run.
pub fn available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_out_is_read() {
        assert_eq!(parse_write_out("200 0.001500"), Ok(1_500_000));
        assert_eq!(parse_write_out("204 1.25\n"), Ok(1_250_000_000));
        assert_eq!(parse_write_out("503 0.01"), Err(Failure::BadAnswer));
        assert_eq!(parse_write_out("000 0.000000"), Err(Failure::BadAnswer));
        assert_eq!(parse_write_out(""), Err(Failure::BadAnswer));
    }
}

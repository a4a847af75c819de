//! systemd's service notification protocol (`sd_notify(3)`, through the
//! `sd-notify` crate) for a `Type=notify` unit: `READY=1` once the workers
//! and the API run, `STATUS=` lines, `WATCHDOG=1` while every worker makes
//! progress, `STOPPING=1` when shutdown begins. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call does nothing.
//!
//! The watchdog is fed by the management thread, and only when each
//! worker's poll counter (busy plus idle polls, published every
//! millisecond by the worker itself) advanced since the previous check
//! ([`all_advanced`]): a worker stuck in a loop or a driver call stops the
//! pings, and systemd restarts the node after `WatchdogSec`.

use std::time::Duration;

use sd_notify::NotifyState;

/// The notifications of one node.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives a service (`NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let mut usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Notifier {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog,
        }
    }

    /// The watchdog timeout systemd set, if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled)
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::debug!("sd_notify: {e}");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`, when systemd watches this process.
    pub fn keepalive(&self) {
        if self.watchdog().is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    /// `STOPPING=1`.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

/// Did every worker poll since the previous check? `prev` and `now`: each
/// worker's busy plus idle polls at the two checks.
pub fn all_advanced(prev: &[u64], now: &[u64]) -> bool {
    !now.is_empty() && prev.len() == now.len() && prev.iter().zip(now).all(|(p, n)| n > p)
}

/// The progress check between two calls of [`Progress::check`].
#[derive(Debug, Default)]
pub struct Progress {
    last: Vec<u64>,
}

impl Progress {
    /// True when every worker advanced since the previous call (false on
    /// the first call: there is nothing to compare yet).
    pub fn check(&mut self, polls: Vec<u64>) -> bool {
        let ok = all_advanced(&self.last, &polls);
        self.last = polls;
        ok
    }

    /// Each worker's polls at the last check.
    pub fn last(&self) -> &[u64] {
        &self.last
    }

    /// The workers that did not advance at the last check.
    pub fn stalled(prev: &[u64], now: &[u64]) -> Vec<usize> {
        now.iter()
            .enumerate()
            .filter(|(i, n)| prev.get(*i).is_some_and(|p| p >= n))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_fed_only_while_every_worker_polls() {
        assert!(all_advanced(&[1, 5], &[2, 9]));
        assert!(!all_advanced(&[1, 5], &[2, 5]), "worker 1 stalled");
        assert!(!all_advanced(&[1, 5], &[1, 6]), "worker 0 stalled");
        assert!(!all_advanced(&[], &[]), "no workers, no progress");
        assert!(!all_advanced(&[1], &[2, 3]), "a different worker set is no evidence");
        let mut p = Progress::default();
        assert!(!p.check(vec![10, 10]), "the first check has nothing to compare");
        assert!(p.check(vec![11, 12]));
        assert!(!p.check(vec![12, 12]));
        assert!(p.check(vec![13, 13]), "a worker that polls again feeds it again");
        assert_eq!(Progress::stalled(&[3, 4, 5], &[4, 4, 6]), [1]);
    }

    #[test]
    fn outside_systemd_nothing_is_sent() {
        let n = Notifier {
            enabled: false,
            watchdog: Some(Duration::from_secs(10)),
        };
        assert_eq!(n.watchdog(), None);
        n.ready("x");
        n.keepalive();
        n.stopping();
    }
}

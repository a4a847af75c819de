//! Whether the node should announce its VIPs: a pure state machine driven
//! by `(now, health)`, so that tests drive time (the BIRD side is
//! [`super::bgp`]'s).
//!
//! - `Withdrawn` → `Announced` once the node has been healthy for
//!   `hold_down` without a break, at start too (a node that just came up,
//!   or flaps, does not draw traffic it may not keep);
//! - `Announced` → `Withdrawn` at the first failing health check;
//! - any → `Draining` on [`Announcer::drain`], for good: a draining node
//!   never announces again, whatever its health.
//!
//! Every transition is counted and keeps its reason and time.

use std::time::{Duration, Instant};

/// Where the announcement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Withdrawn,
    Announced,
    Draining,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Withdrawn => "withdrawn",
            State::Announced => "announced",
            State::Draining => "draining",
        }
    }
}

/// The announcement's state machine (see the module doc).
#[derive(Debug, Clone)]
pub struct Announcer {
    hold_down: Duration,
    state: State,
    since: Instant,
    reason: String,
    /// Start of the current healthy stretch.
    healthy_since: Option<Instant>,
    changes: u64,
}

impl Announcer {
    /// Withdrawn at `now`, waiting for `hold_down` of health.
    pub fn new(now: Instant, hold_down: Duration) -> Announcer {
        Announcer {
            hold_down,
            state: State::Withdrawn,
            since: now,
            reason: "starting: not announced before the hold-down".into(),
            healthy_since: None,
            changes: 0,
        }
    }

    /// Takes the health seen at `now` (`Err`: what fails); true when the
    /// state changed.
    pub fn observe(&mut self, now: Instant, health: Result<(), String>) -> bool {
        if self.state == State::Draining {
            return false;
        }
        match health {
            Ok(()) => {
                let since = *self.healthy_since.get_or_insert(now);
                let held = now.saturating_duration_since(since);
                if self.state == State::Withdrawn && held >= self.hold_down {
                    let why = format!(
                        "healthy for {:.1} s (hold-down {} s)",
                        held.as_secs_f64(),
                        self.hold_down.as_secs()
                    );
                    self.set(now, State::Announced, why);
                    return true;
                }
                false
            }
            Err(failing) => {
                self.healthy_since = None;
                let why = format!("health failing: {failing}");
                match self.state {
                    State::Announced => {
                        self.set(now, State::Withdrawn, why);
                        true
                    }
                    // Still withdrawn: the reason says what it waits for.
                    _ => {
                        self.reason = why;
                        false
                    }
                }
            }
        }
    }

    /// Withdraws for good (`moat drain`, SIGTERM); true when the state
    /// changed (false: it was draining already).
    pub fn drain(&mut self, now: Instant, why: &str) -> bool {
        if self.state == State::Draining {
            return false;
        }
        self.set(now, State::Draining, why.to_string());
        true
    }

    fn set(&mut self, now: Instant, state: State, reason: String) {
        self.state = state;
        self.since = now;
        self.reason = reason;
        self.changes += 1;
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether BIRD's protocol should be enabled.
    pub fn wants_enabled(&self) -> bool {
        self.state == State::Announced
    }

    /// When the state last changed (or the machine started).
    pub fn since(&self) -> Instant {
        self.since
    }

    /// Why it is in its state.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// State changes so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// While withdrawn and healthy: how long until the announcement.
    pub fn announce_in(&self, now: Instant) -> Option<Duration> {
        let since = self.healthy_since?;
        (self.state == State::Withdrawn).then(|| self.hold_down.saturating_sub(now.saturating_duration_since(since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(5);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn fail() -> Result<(), String> {
        Err("port/outside (eth0: admin down)".into())
    }

    #[test]
    fn announces_only_after_the_hold_down() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, HOLD);
        assert_eq!(a.state(), State::Withdrawn);
        assert!(!a.observe(t0, Ok(())));
        assert!(!a.observe(at(t0, 4999), Ok(())));
        assert_eq!(a.announce_in(at(t0, 4000)), Some(Duration::from_secs(1)));
        assert!(!a.wants_enabled());
        assert!(a.observe(at(t0, 5000), Ok(())));
        assert_eq!(a.state(), State::Announced);
        assert!(a.wants_enabled());
        assert_eq!(a.since(), at(t0, 5000));
        assert!(a.reason().contains("healthy for 5.0 s"), "{}", a.reason());
        assert_eq!(a.announce_in(at(t0, 6000)), None);
        assert_eq!(a.changes(), 1);
    }

    #[test]
    fn withdraws_at_the_first_failure_and_holds_down_again() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, HOLD);
        a.observe(t0, Ok(()));
        a.observe(at(t0, 5000), Ok(()));
        assert!(a.observe(at(t0, 7000), fail()));
        assert_eq!(a.state(), State::Withdrawn);
        assert!(a.reason().contains("port/outside"), "{}", a.reason());
        // Healthy again at 8 s: announced at 13 s, not before.
        assert!(!a.observe(at(t0, 8000), Ok(())));
        assert!(!a.observe(at(t0, 12_999), Ok(())));
        assert!(a.observe(at(t0, 13_000), Ok(())));
        assert_eq!(a.changes(), 3);
    }

    #[test]
    fn a_flap_restarts_the_hold_down() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, HOLD);
        a.observe(t0, Ok(()));
        a.observe(at(t0, 4000), Ok(()));
        // One failing check inside the hold-down: it starts over.
        assert!(!a.observe(at(t0, 4500), fail()));
        assert!(
            a.reason().contains("port/outside"),
            "withdrawn, and why: {}",
            a.reason()
        );
        a.observe(at(t0, 4600), Ok(()));
        assert!(!a.observe(at(t0, 9500), Ok(())), "only 4.9 s healthy");
        assert!(a.observe(at(t0, 9600), Ok(())));
        assert_eq!(a.changes(), 1, "never announced during the flap");
    }

    #[test]
    fn zero_hold_down_announces_at_the_first_healthy_check() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, Duration::ZERO);
        assert!(!a.observe(t0, fail()));
        assert!(a.observe(at(t0, 100), Ok(())));
    }

    #[test]
    fn draining_is_final() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, HOLD);
        a.observe(t0, Ok(()));
        a.observe(at(t0, 5000), Ok(()));
        assert!(a.drain(at(t0, 6000), "moat drain"));
        assert_eq!(a.state(), State::Draining);
        assert!(!a.wants_enabled());
        assert!(!a.drain(at(t0, 6100), "SIGTERM"), "already draining");
        assert_eq!(a.reason(), "moat drain");
        // Health no longer matters.
        assert!(!a.observe(at(t0, 20_000), Ok(())));
        assert!(!a.observe(at(t0, 20_100), fail()));
        assert_eq!(a.state(), State::Draining);
        assert_eq!(a.announce_in(at(t0, 20_000)), None);
        assert_eq!(a.changes(), 2);
    }

    #[test]
    fn draining_before_any_announcement() {
        let t0 = Instant::now();
        let mut a = Announcer::new(t0, HOLD);
        assert!(a.drain(at(t0, 100), "SIGTERM"));
        assert!(!a.observe(at(t0, 10_000), Ok(())));
        assert!(!a.wants_enabled());
    }
}

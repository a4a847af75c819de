//! The per-packet pipeline around [`classifier::classify`]: parse, classify,
//! then carry out the verdict — MSS clamping and GRE encapsulation of clean
//! packets toward their origin, replies out the receiving port, drops counted
//! by reason. One `Pipeline` per worker; it owns the worker's state and
//! counters. The offline scrubber runs exactly this code.

use classifier::build::{self, GreParams};
use classifier::parse::{self, Parsed};
use classifier::policy::Policy;
use classifier::state::{StateConfig, WorkerState};
use classifier::time::Nanos;
use classifier::verdict::{DropReason, Verdict};

/// Largest frame the pipeline handles (jumbo frames included).
pub const MAX_FRAME: usize = 9216;
/// Room for a reply frame (the largest is a SYN-ACK with MSS over IPv6 and
/// two VLAN tags: 14 + 8 + 40 + 24 = 86 bytes).
pub const REPLY_ROOM: usize = 128;

/// Per-worker counters; plain integers, owned by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Packets re-injected, per service index.
    pub passed: Vec<u64>,
    pub passed_bytes: u64,
    pub replies: u64,
    pub mss_clamped: u64,
    pub dropped: [u64; DropReason::COUNT],
}

impl Counters {
    fn new(services: usize) -> Self {
        Counters {
            rx_packets: 0,
            rx_bytes: 0,
            passed: vec![0; services],
            passed_bytes: 0,
            replies: 0,
            mss_clamped: 0,
            dropped: [0; DropReason::COUNT],
        }
    }

    /// Total drops over every reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// What the caller must do with the frame it gave to [`Pipeline::process`].
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this GRE-encapsulated frame out the inside port.
    Forward { service: u16, frame: &'a [u8] },
    /// Send this reply out the port the packet came in on.
    Reply(&'a [u8]),
    /// Nothing to send; the drop was counted.
    Drop(DropReason),
}

/// One worker's pipeline.
#[derive(Debug)]
pub struct Pipeline {
    state: WorkerState,
    gre: Vec<GreParams>,
    counters: Counters,
    out: Box<[u8]>,
}

impl Pipeline {
    /// `gre[i]` are the encapsulation parameters of `policy.origins[i]`.
    pub fn new(policy: &Policy, gre: Vec<GreParams>, sizes: &StateConfig, workers: u32) -> Self {
        assert_eq!(gre.len(), policy.origins.len(), "one GreParams per origin");
        Pipeline {
            state: WorkerState::new(sizes, policy, workers),
            gre,
            counters: Counters::new(policy.services.len()),
            out: vec![0; MAX_FRAME + build::gre_overhead(true)].into_boxed_slice(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn state(&self) -> &WorkerState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut WorkerState {
        &mut self.state
    }

    /// Processes one frame received at `now`. `frame` may be modified (MSS
    /// clamping of passed SYNs). `parsed` receives the parse summary when the
    /// frame parsed (for reports), so callers never parse twice.
    pub fn process<'a>(
        &'a mut self,
        policy: &Policy,
        now: Nanos,
        frame: &mut [u8],
        parsed: &mut Option<Parsed>,
    ) -> Action<'a> {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += frame.len() as u64;
        let p = match parse::parse(frame) {
            Ok(p) => p,
            Err(r) => return self.drop(r, parsed, None),
        };
        *parsed = Some(p);
        let (reply, rest) = self.out.split_at_mut(REPLY_ROOM);
        match classifier::classify::classify_parsed(&mut self.state, policy, now, frame, &p, reply) {
            Verdict::Drop(r) => {
                self.counters.dropped[r as usize] += 1;
                Action::Drop(r)
            }
            Verdict::Reply { len } => {
                self.counters.replies += 1;
                Action::Reply(&self.out[..len])
            }
            Verdict::Pass(pass) => {
                let svc = &policy.services[usize::from(pass.service)];
                let origin = &policy.origins[usize::from(svc.origin)];
                if pass.syn && build::clamp_mss(frame, &p, origin.mss_for(p.src.is_ipv6())) {
                    self.counters.mss_clamped += 1;
                }
                let start = usize::from(pass.l3_offset);
                let inner = &frame[start..start + usize::from(p.l3_len)];
                let Some(len) = build::gre_encap(inner, &self.gre[usize::from(svc.origin)], rest) else {
                    self.counters.dropped[DropReason::TooBig as usize] += 1;
                    return Action::Drop(DropReason::TooBig);
                };
                self.counters.passed[usize::from(pass.service)] += 1;
                self.counters.passed_bytes += len as u64;
                Action::Forward {
                    service: pass.service,
                    frame: &self.out[REPLY_ROOM..REPLY_ROOM + len],
                }
            }
        }
    }

    fn drop<'a>(&mut self, r: DropReason, parsed: &mut Option<Parsed>, p: Option<Parsed>) -> Action<'a> {
        *parsed = p;
        self.counters.dropped[r as usize] += 1;
        Action::Drop(r)
    }
}

//! One client's TCP connection, sans I/O: segments in, segments out
//! through a [`Tx`], a timer the engine polls. The client behaves as the
//! Linux stack under `curl` does, so that Moat's SYN authentication sees
//! what it sees from real clients:
//!
//! - **challenge-ack**: Moat answers the SYN with a SYN-ACK whose
//!   acknowledgement number is not ISN + 1. In SYN-SENT that segment is
//!   unacceptable, and the stack answers `<SEQ=SEG.ACK><CTL=RST>`
//!   (RFC 9293 §3.10.7.3, Linux `tcp_rcv_synsent_state_process` →
//!   `tcp_v4_send_reset`: no ACK bit, no options, window 0) and stays in
//!   SYN-SENT. Since Linux 5.10 the stack then retransmits the SYN almost at
//!   once: when the SYN has not been retransmitted yet, the timer is re-armed
//!   to `TCP_TIMEOUT_MIN`, two jiffies (8 ms at HZ=250, 2 ms at HZ=1000;
//!   "Previous FIN/ACK or RST/ACK might be ignored" in
//!   `tcp_rcv_synsent_state_process`). [`Timing::challenge_retry`] is that
//!   time; 0 is the older kernels' behaviour, where the SYN waits for its
//!   RTO (1 s, RFC 6298 §2). Later SYNs follow the RTO, doubling each time.
//! - **cookie-reset**: Moat's SYN-ACK acknowledges ISN + 1, so the
//!   connection is established: the client ACKs it and sends its request at
//!   once, Moat resets the connection (`<SEQ=SEG.ACK><CTL=RST>`, in the
//!   client's window), and the client application connects again from a
//!   new port, as `curl --retry` does (a bounded number of times).
//! - **off**: the origin's own SYN-ACK comes back by direct server return.
//!
//! A *connection* here is what the application asks for: one GET and its
//! response, over one or more TCP attempts (the reconnects above), within
//! one timeout. It ends completed (a 2xx response read whole) or failed:
//! timeout, reset (a RST after the reconnects are spent, or after the
//! response began), or bad answer (not HTTP, not 2xx, or cut short).

use classifier::time::{Nanos, MILLISECOND};
use classifier::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};

use super::frames::{Endpoints, Options, Segment, RCV_WINDOW, SYN_WINDOW, WSCALE};
use super::http::{Progress, Response};
use super::stats::{ClientStats, Failure, Totals};

/// Timers and limits of every connection of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The SYN's first retransmission timeout (Linux: 1 s); doubles after
    /// each retransmission.
    pub syn_rto: Nanos,
    /// When an unacceptable SYN-ACK (a challenge-ack) arrives before any
    /// retransmission of the SYN, the SYN goes again this long after it
    /// (Linux 5.10+: two jiffies); 0: at its RTO, as before 5.10.
    pub challenge_retry: Nanos,
    /// The retransmission timeout of the request and the FIN (Linux's
    /// minimum, 200 ms, is what a low-RTT path gets); doubles too.
    pub data_rto: Nanos,
    /// From the first SYN to the last byte of the response, all attempts
    /// together.
    pub timeout: Nanos,
    /// New attempts after a reset before the first response byte.
    pub reconnects: u32,
    /// Pause before such a new attempt.
    pub reconnect_delay: Nanos,
    /// How long a finished connection waits for the server's FIN and the
    /// ACK of its own.
    pub linger: Nanos,
    /// Pause between one connection's end and the client's next.
    pub think: Nanos,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            syn_rto: 1000 * MILLISECOND,
            challenge_retry: 8 * MILLISECOND,
            data_rto: 200 * MILLISECOND,
            timeout: 5000 * MILLISECOND,
            reconnects: 3,
            reconnect_delay: 0,
            linger: 1000 * MILLISECOND,
            think: 500 * MILLISECOND,
        }
    }
}

/// Where a new TCP attempt starts: its source port (the engine picks it so
/// that it can find the connection from it), ISN, first IP ID and
/// timestamp offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub sport: u16,
    pub isn: u32,
    pub ip_id: u16,
    pub ts_base: u32,
}

/// Where segments go: the engine builds and sends the frame.
pub trait Tx {
    fn send(&mut self, ep: &Endpoints, seg: &Segment);
}

/// A received TCP segment, as far as the client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegIn<'a> {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
    /// The timestamp option's TSval, when present.
    pub tsval: Option<u32>,
    /// Whether the segment carries a window scale option.
    pub wscale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between connections: `timer` starts the next one.
    Idle,
    /// Reset before the response: `timer` starts a new attempt.
    Reconnect,
    SynSent,
    Established,
    /// Our FIN is sent: waiting for its ACK and the server's FIN.
    Closing,
}

/// Everything one call needs besides the connection.
#[derive(Debug)]
pub struct Ctx<'a, T: Tx> {
    pub now: Nanos,
    pub timing: &'a Timing,
    pub request: &'a [u8],
    pub tx: &'a mut T,
    pub totals: &'a mut Totals,
}

/// One client: its connection's state and its own counters.
#[derive(Debug, Clone)]
pub struct Conn {
    pub ep: Endpoints,
    pub stats: ClientStats,
    state: State,
    /// When the engine should call [`Conn::on_timer`].
    timer: Nanos,
    started: Nanos,
    deadline: Nanos,
    first_byte: Option<Nanos>,
    attempts: u32,
    /// Retransmissions of this attempt's SYN.
    syn_retx: u32,
    rto: Nanos,
    isn: u32,
    irs: u32,
    snd_una: u32,
    snd_nxt: u32,
    rcv_nxt: u32,
    ip_id: u16,
    ts_base: u32,
    /// The server's last TSval, when both sides use timestamps.
    ts_recent: Option<u32>,
    scaled: bool,
    fin_in: bool,
    response: Response,
    close_by: Nanos,
}

/// `a` is after `b` in sequence space (RFC 9293 §3.4).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Conn {
    /// A client that starts its first connection at `start`.
    pub fn new(ep: Endpoints, start: Nanos) -> Conn {
        Conn {
            ep,
            stats: ClientStats::default(),
            state: State::Idle,
            timer: start,
            started: 0,
            deadline: 0,
            first_byte: None,
            attempts: 0,
            syn_retx: 0,
            rto: 0,
            isn: 0,
            irs: 0,
            snd_una: 0,
            snd_nxt: 0,
            rcv_nxt: 0,
            ip_id: 0,
            ts_base: 0,
            ts_recent: None,
            scaled: false,
            fin_in: false,
            response: Response::default(),
            close_by: 0,
        }
    }

    /// When [`Conn::on_timer`] is due.
    pub fn timer(&self) -> Nanos {
        self.timer
    }

    /// Between connections (nothing in flight).
    pub fn idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Starts no new connection any more (the run is ending).
    pub fn park(&mut self) {
        if self.state == State::Idle {
            self.timer = Nanos::MAX;
        }
    }

    /// The timer fired. `fresh` gives a new attempt's port and numbers.
    pub fn on_timer<T: Tx>(&mut self, c: &mut Ctx<T>, fresh: impl FnOnce(&Endpoints) -> Attempt) {
        let now = c.now;
        match self.state {
            State::Idle => {
                c.totals.c.tried += 1;
                self.stats.tried += 1;
                self.started = now;
                self.deadline = now.saturating_add(c.timing.timeout);
                self.first_byte = None;
                self.attempts = 0;
                self.attempt(c, fresh(&self.ep));
            }
            _ if now >= self.deadline && self.state != State::Closing => self.fail(c, Failure::Timeout),
            State::Reconnect => self.attempt(c, fresh(&self.ep)),
            State::SynSent => {
                c.totals.c.syn_retransmits += 1;
                self.syn_retx += 1;
                self.send_syn(c);
                self.backoff(now, self.deadline);
            }
            State::Established => {
                if self.snd_una != self.snd_nxt {
                    c.totals.c.data_retransmits += 1;
                    let seq = self.snd_una;
                    self.send(c, PSH | ACK, seq, c.request);
                    self.backoff(now, self.deadline);
                } else {
                    self.timer = self.deadline;
                }
            }
            State::Closing => {
                if now >= self.close_by {
                    self.finish(c);
                } else {
                    // Our FIN is not acknowledged yet (`timer` is pushed to
                    // `close_by` once it is).
                    let seq = self.snd_nxt.wrapping_sub(1);
                    self.send(c, FIN | ACK, seq, &[]);
                    self.backoff(now, self.close_by);
                }
            }
        }
    }

    /// A segment of this connection arrived.
    pub fn on_segment<T: Tx>(&mut self, c: &mut Ctx<T>, s: &SegIn) {
        match self.state {
            State::SynSent => self.syn_sent(c, s),
            State::Established => self.established(c, s),
            State::Closing => self.closing(c, s),
            State::Idle | State::Reconnect => c.totals.c.rx_stray += 1,
        }
    }

    fn attempt<T: Tx>(&mut self, c: &mut Ctx<T>, a: Attempt) {
        self.ep.sport = a.sport;
        self.isn = a.isn;
        self.snd_una = a.isn;
        self.snd_nxt = a.isn.wrapping_add(1);
        self.ip_id = a.ip_id;
        self.ts_base = a.ts_base;
        self.ts_recent = None;
        self.scaled = false;
        self.fin_in = false;
        self.response = Response::default();
        self.state = State::SynSent;
        self.syn_retx = 0;
        self.rto = c.timing.syn_rto;
        self.send_syn(c);
        self.timer = c.now.saturating_add(self.rto).min(self.deadline);
    }

    /// Doubles the RTO (RFC 6298 §5.5) and sets the timer, at most `limit`.
    fn backoff(&mut self, now: Nanos, limit: Nanos) {
        self.rto = self.rto.saturating_mul(2);
        self.timer = now.saturating_add(self.rto).min(limit);
    }

    fn syn_sent<T: Tx>(&mut self, c: &mut Ctx<T>, s: &SegIn) {
        let acks_syn = s.flags & ACK != 0 && s.ack == self.isn.wrapping_add(1);
        if s.flags & RST != 0 {
            // Refused (RFC 9293 §3.10.7.3: a RST counts only if its ACK
            // acknowledges the SYN).
            if acks_syn {
                self.reset(c);
            }
            return;
        }
        if s.flags & (SYN | ACK) != SYN | ACK {
            return;
        }
        if !acks_syn {
            // Moat's challenge-ack, or any SYN-ACK for another SYN.
            c.totals.c.challenge_rsts += 1;
            self.segment(c, RST, s.ack, 0, Options::None, 0, &[]);
            if self.syn_retx == 0 && c.timing.challenge_retry > 0 {
                self.timer = c.now.saturating_add(c.timing.challenge_retry).min(self.deadline);
            }
            return;
        }
        c.totals.c.handshakes += 1;
        self.irs = s.seq;
        self.rcv_nxt = s.seq.wrapping_add(1);
        self.snd_una = self.snd_nxt;
        self.ts_recent = s.tsval;
        self.scaled = s.wscale;
        self.state = State::Established;
        let seq = self.snd_nxt;
        self.send(c, ACK, seq, &[]);
        self.send(c, PSH | ACK, seq, c.request);
        self.snd_nxt = seq.wrapping_add(c.request.len() as u32);
        self.rto = c.timing.data_rto;
        self.timer = c.now.saturating_add(self.rto).min(self.deadline);
    }

    fn established<T: Tx>(&mut self, c: &mut Ctx<T>, s: &SegIn) {
        if s.flags & RST != 0 {
            if s.seq.wrapping_sub(self.rcv_nxt) < RCV_WINDOW {
                self.reset(c);
            }
            return;
        }
        if s.flags & SYN != 0 {
            // The SYN-ACK again: our ACK was lost.
            if s.seq == self.irs {
                let seq = self.snd_nxt;
                self.send(c, ACK, seq, &[]);
            }
            return;
        }
        self.take_ack(s);
        if self.snd_una == self.snd_nxt && self.timer < self.deadline {
            self.timer = self.deadline;
        }
        let (fresh, progress) = self.take_data(c, s);
        if !fresh {
            return;
        }
        let progress = match progress {
            Progress::More if self.fin_in => self.response.finish(),
            p => p,
        };
        match progress {
            Progress::More => {
                let seq = self.snd_nxt;
                self.send(c, ACK, seq, &[]);
            }
            Progress::Complete => {
                if (200..300).contains(&self.response.status().unwrap_or(0)) {
                    self.complete(c);
                } else {
                    self.count_failure(c, Failure::BadAnswer);
                }
                self.close(c);
            }
            Progress::Bad => {
                self.count_failure(c, Failure::BadAnswer);
                self.close(c);
            }
        }
    }

    fn closing<T: Tx>(&mut self, c: &mut Ctx<T>, s: &SegIn) {
        if s.flags & RST != 0 {
            self.finish(c);
            return;
        }
        self.take_ack(s);
        let (fresh, _) = self.take_data(c, s);
        if fresh {
            let seq = self.snd_nxt;
            self.send(c, ACK, seq, &[]);
        }
        if self.snd_una == self.snd_nxt {
            if self.fin_in {
                self.finish(c);
            } else {
                self.timer = self.close_by;
            }
        }
    }

    /// The acknowledgement field of an in-state segment.
    fn take_ack(&mut self, s: &SegIn) {
        if s.flags & ACK != 0 && after(s.ack, self.snd_una) && !after(s.ack, self.snd_nxt) {
            self.snd_una = s.ack;
        }
    }

    /// Data and FIN in order: read, counted, acknowledged by the caller
    /// (true). Out of order or old: a duplicate ACK now (false).
    fn take_data<T: Tx>(&mut self, c: &mut Ctx<T>, s: &SegIn) -> (bool, Progress) {
        let fin = s.flags & FIN != 0;
        if s.payload.is_empty() && !fin {
            return (false, Progress::More);
        }
        if s.seq != self.rcv_nxt || self.fin_in {
            c.totals.c.rx_out_of_order += 1;
            let seq = self.snd_nxt;
            self.send(c, ACK, seq, &[]);
            return (false, Progress::More);
        }
        if s.tsval.is_some() && self.ts_recent.is_some() {
            self.ts_recent = s.tsval;
        }
        let mut progress = Progress::More;
        if !s.payload.is_empty() {
            self.first_byte.get_or_insert(c.now);
            progress = self.response.feed(s.payload);
        }
        self.rcv_nxt = self.rcv_nxt.wrapping_add(s.payload.len() as u32);
        if fin {
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            self.fin_in = true;
        }
        (true, progress)
    }

    fn complete<T: Tx>(&mut self, c: &mut Ctx<T>) {
        let ttfb = self.first_byte.unwrap_or(c.now).saturating_sub(self.started);
        c.totals.completed(ttfb);
        self.stats.completed(ttfb);
    }

    /// Sends our FIN (acknowledging whatever arrived).
    fn close<T: Tx>(&mut self, c: &mut Ctx<T>) {
        let seq = self.snd_nxt;
        self.send(c, FIN | ACK, seq, &[]);
        self.snd_nxt = seq.wrapping_add(1);
        self.state = State::Closing;
        self.close_by = c.now.saturating_add(c.timing.linger);
        self.rto = c.timing.data_rto;
        self.timer = c.now.saturating_add(self.rto).min(self.close_by);
    }

    /// A RST ended the attempt: connect again when allowed, else fail.
    fn reset<T: Tx>(&mut self, c: &mut Ctx<T>) {
        c.totals.c.resets_received += 1;
        if self.first_byte.is_none() && self.attempts < c.timing.reconnects && c.now < self.deadline {
            self.attempts += 1;
            c.totals.c.reconnects += 1;
            self.state = State::Reconnect;
            self.timer = c.now.saturating_add(c.timing.reconnect_delay).min(self.deadline);
            return;
        }
        self.count_failure(c, Failure::Reset);
        self.finish(c);
    }

    /// The connection failed: counted; an established one is aborted
    /// (`<SEQ=SND.NXT><CTL=RST,ACK>`, what closing a socket with unread
    /// data sends) so that the origin lets it go.
    fn fail<T: Tx>(&mut self, c: &mut Ctx<T>, why: Failure) {
        self.count_failure(c, why);
        if self.state == State::Established {
            let seq = self.snd_nxt;
            self.segment(c, RST | ACK, seq, self.rcv_nxt, Options::None, 0, &[]);
        }
        self.finish(c);
    }

    fn count_failure<T: Tx>(&mut self, c: &mut Ctx<T>, why: Failure) {
        c.totals.failed(why);
        self.stats.failed(why);
    }

    fn finish<T: Tx>(&mut self, c: &mut Ctx<T>) {
        self.state = State::Idle;
        self.timer = c.now.saturating_add(c.timing.think);
    }

    fn send_syn<T: Tx>(&mut self, c: &mut Ctx<T>) {
        let tsval = self.tsval(c.now);
        let isn = self.isn;
        self.segment(c, SYN, isn, 0, Options::Syn { tsval }, SYN_WINDOW, &[]);
    }

    /// A segment of the established connection: our window, our
    /// timestamps when agreed, acknowledging everything received.
    fn send<T: Tx>(&mut self, c: &mut Ctx<T>, flags: u8, seq: u32, payload: &[u8]) {
        let options = match self.ts_recent {
            Some(tsecr) => Options::Ts {
                tsval: self.tsval(c.now),
                tsecr,
            },
            None => Options::None,
        };
        let window = if self.scaled {
            (RCV_WINDOW >> WSCALE) as u16
        } else {
            RCV_WINDOW.min(0xffff) as u16
        };
        self.segment(c, flags, seq, self.rcv_nxt, options, window, payload);
    }

    #[allow(clippy::too_many_arguments)]
    fn segment<T: Tx>(
        &mut self,
        c: &mut Ctx<T>,
        flags: u8,
        seq: u32,
        ack: u32,
        options: Options,
        window: u16,
        payload: &[u8],
    ) {
        let seg = Segment {
            seq,
            ack,
            flags,
            window,
            options,
            ip_id: self.ip_id,
            payload,
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        c.tx.send(&self.ep, &seg);
    }

    /// RFC 7323 TSval: a 1 kHz clock from the attempt's offset.
    fn tsval(&self, now: Nanos) -> u32 {
        self.ts_base.wrapping_add((now / MILLISECOND) as u32)
    }
}

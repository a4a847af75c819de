//! The auto-blacklist's management side (`[services.blacklist]`): counts
//! the violations the workers hand over, bans the sources that break a
//! service's limits too often, and keeps every worker's ban table, the
//! state folder and the cluster up to date.
//!
//! Contract:
//! - Workers note a violation only for a source that proved its address
//!   (classifier `WorkerState::violation`) and hand it over through a
//!   bounded ring (a full ring is a counted drop). [`Blacklist::tick`]
//!   (the `moat-blacklist` thread, every [`TICK`]) takes them all, counts
//!   them per (source, service) in a fixed window of `window_secs` that
//!   starts at the first violation, and at `violations` within it bans the
//!   source for `ban_secs`.
//! - A ban reaches the workers as a [`BanOp`] on each one's ban ring (a
//!   worker applies it at its next tick, within a millisecond); a ring that
//!   was full is tried again at the next tick. A ban drops everything the
//!   source sends to any service of the node (`blacklisted`), after the
//!   ACL (an ACL `allow` wins).
//! - Memory is bounded: at most `[dataplane] violation_table_size`
//!   counters (reserved up front; when full, windows that ended are
//!   dropped first, then an arbitrary one, counted as evicted) and
//!   `[dataplane] ban_table_size` bans (when full, the ban that ends
//!   soonest makes room, counted).
//! - Bans survive a restart: [`FILE`] in the state folder, written
//!   atomically (`crate::persist::write_atomic`, mode 0600) at most once
//!   per [`SAVE_EVERY`] after a change; read at start-up, ended bans
//!   skipped.
//! - With a cluster bus, bans made here (by count or by hand) and lifts
//!   are shared ([`Blacklist::take_outgoing`]); a peer's ban applies here
//!   with the time it has left ([`Blacklist::apply_peer`]) and is not
//!   shared again.
//! - The clock is the wall clock (Unix ms), as in the API; the workers get
//!   a duration, which they count on their own clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use classifier::policy::{Policy, ServiceId};
use classifier::state::{Violation, ViolationKind};
use classifier::time::MILLISECOND;
use dataplane::runtime::mailbox::{BanOp, Mailboxes};
use serde::{Deserialize, Serialize};

/// How often violations are taken and bans pushed.
pub const TICK: Duration = Duration::from_millis(20);

/// The bans file under `[node] state_dir`.
pub const FILE: &str = "blacklist.json";

/// Bans are written at most this often.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Lifts and bans waiting for the cluster bus, at most (the oldest are
/// dropped, counted).
const OUTGOING_MAX: usize = 4096;

/// The kind of a ban made through the API.
pub const MANUAL: &str = "manual";

/// One ban, as listed by the API and stored in [`FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ban {
    /// The banned source.
    #[schema(value_type = String, example = "198.51.100.7")]
    pub source: IpAddr,
    /// The service whose limits it broke (empty for a ban by hand without
    /// one).
    pub service: String,
    /// The kind of its last violation (`src_pps`, `src_conns`, ...), or
    /// `manual`.
    pub kind: String,
    /// Violations counted in the window that banned it.
    pub violations: u32,
    /// Unix milliseconds.
    pub banned_at: u64,
    /// Unix milliseconds.
    pub expires_at: u64,
    /// Learnt from another node of the cluster.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub peer: bool,
}

/// A change for the cluster bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Shared {
    /// A ban with the milliseconds it has left when sent.
    Ban { ban: Ban, remaining_ms: u64 },
    /// A lift.
    Unban { source: IpAddr },
}

/// The blacklist's figures (metrics).
#[derive(Debug, Default)]
pub struct BanStats {
    /// Violations taken from the workers, by kind
    /// ([`ViolationKind::ALL`]'s order).
    pub violations: [AtomicU64; ViolationKind::ALL.len()],
    /// Violations of services without a blacklist (not counted toward a
    /// ban).
    pub ignored: AtomicU64,
    /// Bans made here (by count or by hand), and learnt from peers.
    pub bans_total: AtomicU64,
    pub bans_manual: AtomicU64,
    pub bans_peer: AtomicU64,
    /// Bans that ran out, and that were lifted by hand or by a peer.
    pub bans_expired: AtomicU64,
    pub bans_lifted: AtomicU64,
    /// Bans dropped to make room (`ban_table_size` reached).
    pub bans_evicted: AtomicU64,
    /// Counters dropped to make room (`violation_table_size` reached).
    pub counters_evicted: AtomicU64,
    /// Ban changes a worker's ring could not take at once (tried again).
    pub push_retries: AtomicU64,
    /// Changes not shared because [`OUTGOING_MAX`] already waited.
    pub outgoing_dropped: AtomicU64,
    /// The last write of [`FILE`] failed (and is tried again).
    pub save_failed: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    count: u32,
    /// Unix ms of the first violation of the window.
    start: u64,
}

#[derive(Debug)]
struct Inner {
    counters: HashMap<(IpAddr, ServiceId), Counter>,
    bans: HashMap<IpAddr, Ban>,
    /// Sources whose ban change some worker could not take.
    retry: Vec<BanOp>,
    outgoing: Vec<Shared>,
    dirty: bool,
}

/// See the module doc.
#[derive(Debug)]
pub struct Blacklist {
    inner: Mutex<Inner>,
    pub stats: BanStats,
    mail: Arc<Mailboxes>,
    policy: Arc<ArcSwap<Policy>>,
    file: Option<PathBuf>,
    max_bans: usize,
    max_counters: usize,
    share: AtomicBool,
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    dataplane::runtime::wall_clock() / MILLISECOND
}

/// Why a ban request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanError {
    #[error("{0} is out of range 1..={max}", max = crate::config::BlacklistConfig::MAX_BAN_SECS)]
    Duration(u64),
    #[error("no service named \"{0}\"")]
    NoService(String),
}

impl Blacklist {
    /// A blacklist over `mail`'s workers and `policy`'s services, with
    /// room for `max_bans` bans and `max_counters` counters (reserved
    /// now), storing its bans in `state_dir`'s [`FILE`] when given.
    pub fn new(
        mail: Arc<Mailboxes>,
        policy: Arc<ArcSwap<Policy>>,
        state_dir: Option<&Path>,
        max_bans: usize,
        max_counters: usize,
    ) -> Self {
        let (max_bans, max_counters) = (max_bans.max(1), max_counters.max(1));
        Blacklist {
            inner: Mutex::new(Inner {
                counters: HashMap::with_capacity(max_counters),
                bans: HashMap::with_capacity(max_bans),
                retry: Vec::new(),
                outgoing: Vec::new(),
                dirty: false,
            }),
            stats: BanStats::default(),
            mail,
            policy,
            file: state_dir.map(|d| d.join(FILE)),
            max_bans,
            max_counters,
            share: AtomicBool::new(false),
        }
    }

    /// Bytes reserved by the counters and bans at their configured sizes
    /// (hash table slots; the strings of a ban's service and kind come on
    /// top, a few dozen bytes per ban).
    pub fn memory_bytes(&self) -> usize {
        let g = self.lock();
        g.counters.capacity() * (core::mem::size_of::<((IpAddr, ServiceId), Counter)>() + 1)
            + g.bans.capacity() * (core::mem::size_of::<(IpAddr, Ban)>() + 1)
    }

    /// From now on, changes made here are kept for the cluster bus.
    pub fn share_with_cluster(&self) {
        self.share.store(true, Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads [`FILE`] and bans again every source whose ban has time left
    /// (start-up); returns how many. A missing file is no ban; a file that
    /// cannot be read or parsed is an error (the caller logs it and runs
    /// without).
    pub fn load(&self, now: u64) -> anyhow::Result<usize> {
        let Some(path) = &self.file else { return Ok(0) };
        let Some(bytes) = crate::persist::read_optional(path)? else {
            return Ok(0);
        };
        let bans: Vec<Ban> = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut g = self.lock();
        let mut n = 0;
        for b in bans.into_iter().filter(|b| b.expires_at > now) {
            let ttl = b.expires_at - now;
            self.put(&mut g, b, ttl);
            n += 1;
        }
        Ok(n)
    }

    /// Writes [`FILE`] when bans changed since the last write.
    fn save(&self) {
        let Some(path) = &self.file else { return };
        let text = {
            let mut g = self.lock();
            if !g.dirty {
                return;
            }
            g.dirty = false;
            let mut all: Vec<&Ban> = g.bans.values().collect();
            all.sort_by_key(|b| (b.expires_at, b.source));
            serde_json::to_vec_pretty(&all).unwrap_or_default()
        };
        match crate::persist::write_atomic(path, &text, 0o600) {
            Ok(()) => self.stats.save_failed.store(false, Relaxed),
            Err(e) => {
                if !self.stats.save_failed.swap(true, Relaxed) {
                    tracing::warn!("{}: {e} (bans kept in memory, tried again)", path.display());
                }
                self.lock().dirty = true;
            }
        }
    }

    /// One round (see the module doc): violations in, bans out, ended
    /// bans forgotten. `now`: Unix ms.
    pub fn tick(&self, now: u64) {
        let pol = self.policy.load_full();
        let mut taken = Vec::new();
        self.mail.take_violations(usize::MAX, |v| taken.push(v));
        let mut g = self.lock();
        let retry = std::mem::take(&mut g.retry);
        for op in retry {
            self.push(&mut g, op);
        }
        for v in taken {
            self.violation(&mut g, &pol, v, now);
        }
        let before = g.bans.len();
        g.bans.retain(|_, b| b.expires_at > now);
        let ended = before - g.bans.len();
        if ended > 0 {
            self.stats.bans_expired.fetch_add(ended as u64, Relaxed);
            g.dirty = true;
        }
    }

    fn violation(&self, g: &mut Inner, pol: &Policy, v: Violation, now: u64) {
        if let Some(i) = ViolationKind::ALL.iter().position(|k| *k == v.kind) {
            self.stats.violations[i].fetch_add(1, Relaxed);
        }
        let Some((name, rule)) = pol
            .services
            .get(usize::from(v.service))
            .and_then(|s| s.blacklist.map(|r| (s.name.clone(), r)))
        else {
            self.stats.ignored.fetch_add(1, Relaxed);
            return;
        };
        if g.bans.contains_key(&v.src) {
            // Banned meanwhile: its packets in flight still broke limits.
            return;
        }
        let window = rule.window / MILLISECOND;
        let key = (v.src, v.service);
        if !g.counters.contains_key(&key) && g.counters.len() >= self.max_counters {
            self.make_counter_room(g, now, window);
        }
        let c = g.counters.entry(key).or_insert(Counter { count: 0, start: now });
        if now.saturating_sub(c.start) >= window {
            *c = Counter { count: 0, start: now };
        }
        c.count += 1;
        let count = c.count;
        if count < rule.violations {
            return;
        }
        g.counters.remove(&key);
        let ttl = rule.ban / MILLISECOND;
        let ban = Ban {
            source: v.src,
            service: name,
            kind: v.kind.as_str().to_string(),
            violations: count,
            banned_at: now,
            expires_at: now.saturating_add(ttl),
            peer: false,
        };
        tracing::info!(
            "blacklist: banned {} for {} s ({} violations of {} on {})",
            v.src,
            ttl / 1000,
            count,
            ban.kind,
            ban.service
        );
        self.stats.bans_total.fetch_add(1, Relaxed);
        self.share(
            g,
            Shared::Ban {
                ban: ban.clone(),
                remaining_ms: ttl,
            },
        );
        self.put(g, ban, ttl);
    }

    /// Room for one counter: windows that ended go first (at most one
    /// sweep per call), else an arbitrary counter.
    fn make_counter_room(&self, g: &mut Inner, now: u64, window: u64) {
        let before = g.counters.len();
        g.counters.retain(|_, c| now.saturating_sub(c.start) < window);
        if g.counters.len() < before {
            return;
        }
        if let Some(k) = g.counters.keys().next().copied() {
            g.counters.remove(&k);
            self.stats.counters_evicted.fetch_add(1, Relaxed);
        }
    }

    /// Stores `ban` (making room) and sends it to the workers for `ttl` ms.
    fn put(&self, g: &mut Inner, ban: Ban, ttl: u64) {
        if !g.bans.contains_key(&ban.source) && g.bans.len() >= self.max_bans {
            if let Some(k) = g.bans.values().min_by_key(|b| b.expires_at).map(|b| b.source) {
                g.bans.remove(&k);
                self.push(g, BanOp::Unban(k));
                self.stats.bans_evicted.fetch_add(1, Relaxed);
            }
        }
        let ip = ban.source;
        g.counters.retain(|(src, _), _| *src != ip);
        g.bans.insert(ip, ban);
        g.dirty = true;
        self.push(
            g,
            BanOp::Ban {
                ip,
                ttl: ttl * MILLISECOND,
            },
        );
    }

    fn push(&self, g: &mut Inner, op: BanOp) {
        if self.mail.push_ban(op) > 0 {
            // Pushing again is harmless for the workers that took it.
            self.stats.push_retries.fetch_add(1, Relaxed);
            if g.retry.len() < self.max_bans {
                g.retry.push(op);
            }
        }
    }

    fn share(&self, g: &mut Inner, s: Shared) {
        if !self.share.load(Relaxed) {
            return;
        }
        if g.outgoing.len() >= OUTGOING_MAX {
            g.outgoing.remove(0);
            self.stats.outgoing_dropped.fetch_add(1, Relaxed);
        }
        g.outgoing.push(s);
    }

    /// Bans `source` by hand for `secs` seconds (`service`: a service it
    /// is banned for, for the record; the ban applies to every service).
    pub fn ban(&self, source: IpAddr, service: Option<&str>, secs: u64, now: u64) -> Result<Ban, BanError> {
        if secs == 0 || secs > u64::from(crate::config::BlacklistConfig::MAX_BAN_SECS) {
            return Err(BanError::Duration(secs));
        }
        if let Some(s) = service {
            if !self.policy.load().services.iter().any(|x| x.name == s) {
                return Err(BanError::NoService(s.to_string()));
            }
        }
        let ttl = secs * 1000;
        let ban = Ban {
            source,
            service: service.unwrap_or_default().to_string(),
            kind: MANUAL.into(),
            violations: 0,
            banned_at: now,
            expires_at: now + ttl,
            peer: false,
        };
        let mut g = self.lock();
        self.stats.bans_total.fetch_add(1, Relaxed);
        self.stats.bans_manual.fetch_add(1, Relaxed);
        self.share(
            &mut g,
            Shared::Ban {
                ban: ban.clone(),
                remaining_ms: ttl,
            },
        );
        self.put(&mut g, ban.clone(), ttl);
        Ok(ban)
    }

    /// Lifts `source`'s ban on every worker (and, shared, on every node);
    /// returns the ban there was, if any. The workers are told either way.
    pub fn unban(&self, source: IpAddr) -> Option<Ban> {
        let mut g = self.lock();
        let had = g.bans.remove(&source);
        g.counters.retain(|(src, _), _| *src != source);
        self.push(&mut g, BanOp::Unban(source));
        self.share(&mut g, Shared::Unban { source });
        if had.is_some() {
            self.stats.bans_lifted.fetch_add(1, Relaxed);
            g.dirty = true;
        }
        had
    }

    /// A change from another node: applied here, never shared again.
    pub fn apply_peer(&self, s: Shared, now: u64) {
        let mut g = self.lock();
        match s {
            Shared::Ban { mut ban, remaining_ms } => {
                let remaining_ms = remaining_ms.min(u64::from(crate::config::BlacklistConfig::MAX_BAN_SECS) * 1000);
                if remaining_ms == 0 {
                    return;
                }
                ban.peer = true;
                ban.expires_at = now + remaining_ms;
                self.stats.bans_peer.fetch_add(1, Relaxed);
                self.put(&mut g, ban, remaining_ms);
            }
            Shared::Unban { source } => {
                if g.bans.remove(&source).is_some() {
                    self.stats.bans_lifted.fetch_add(1, Relaxed);
                    g.dirty = true;
                }
                self.push(&mut g, BanOp::Unban(source));
            }
        }
    }

    /// Changes waiting for the cluster bus (taken).
    pub fn take_outgoing(&self) -> Vec<Shared> {
        std::mem::take(&mut self.lock().outgoing)
    }

    /// The bans in force at `now`, soonest end first, filtered: `service`
    /// exactly, `q` a prefix or substring of the address's text.
    pub fn list(&self, service: Option<&str>, q: Option<&str>, now: u64) -> Vec<Ban> {
        let g = self.lock();
        let mut v: Vec<Ban> = g
            .bans
            .values()
            .filter(|b| b.expires_at > now)
            .filter(|b| service.is_none_or(|s| b.service == s))
            .filter(|b| q.is_none_or(|q| b.source.to_string().contains(q)))
            .cloned()
            .collect();
        v.sort_by_key(|b| (b.expires_at, b.source));
        v
    }

    /// `source`'s ban in force at `now`.
    pub fn get(&self, source: IpAddr, now: u64) -> Option<Ban> {
        self.lock().bans.get(&source).filter(|b| b.expires_at > now).cloned()
    }

    /// Bans held now (some may have ended since the last tick).
    pub fn active(&self) -> usize {
        self.lock().bans.len()
    }

    /// Counters held now.
    pub fn counters(&self) -> usize {
        self.lock().counters.len()
    }

    /// The workers' figures: violations dropped (ring full), bans evicted
    /// from a worker's table, most bans one worker holds.
    pub fn worker_figures(&self) -> (u64, u64, u64) {
        self.mail.blacklist_figures()
    }

    /// Runs [`Blacklist::tick`] every [`TICK`] and saves every
    /// [`SAVE_EVERY`] on a thread of its own until the handle is stopped.
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<BlacklistThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (Arc::clone(self), Arc::clone(&stop));
        let join = std::thread::Builder::new()
            .name("moat-blacklist".into())
            .spawn(move || {
                let mut saved = Instant::now();
                while !flag.load(Relaxed) {
                    std::thread::sleep(TICK);
                    me.tick(now_ms());
                    if saved.elapsed() >= SAVE_EVERY {
                        saved = Instant::now();
                        me.save();
                    }
                }
                me.save();
            })?;
        Ok(BlacklistThread { stop, join: Some(join) })
    }
}

/// The running `moat-blacklist` thread; stopping (or dropping) it saves
/// the bans one last time.
#[derive(Debug)]
pub struct BlacklistThread {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl BlacklistThread {
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for BlacklistThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;

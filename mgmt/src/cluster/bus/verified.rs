//! The bus connection and the verified-source publisher and subscriber
//! (see the parent module). The connection is `async-nats`'s: it retries
//! the first connection and reconnects forever in the background (every
//! 100 ms to 1 s), and re-subscribes by itself; its events keep
//! [`BusStats::connected`](super::BusStats) and the configuration
//! sync's connection generation up to date.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::{ConnectOptions, Event};
use futures_util::StreamExt;

use super::batch::{Batcher, Offer, BATCH};
use super::mirror::remaining;
use super::{mono, wire, BusState, CATCHUP_RATE, FLUSH};
use crate::config::Config;

/// The client options of `cfg`'s `[cluster]` (credentials read now).
pub(super) fn connect_options(cfg: &Config) -> anyhow::Result<ConnectOptions> {
    let c = &cfg.cluster;
    let mut o = ConnectOptions::new()
        .name(format!("moat {}", cfg.node.name))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .ping_interval(Duration::from_secs(5))
        // Bounded buffers: at most 1,024 received messages (5.4 KB each at
        // most) wait for the subscriber, and 512 commands for the server;
        // past that NATS drops for the slow consumer (an event, logged).
        .subscription_capacity(1024)
        .client_capacity(512)
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).clamp(100, 1000)));
    if let Some(p) = &c.token_file {
        let p = cfg.resolve(p);
        let bytes = crate::config::read_small_file(&p, "cluster.token_file").map_err(anyhow::Error::msg)?;
        o = o.token(String::from_utf8_lossy(&bytes).trim().to_string());
    }
    if let Some(p) = &c.creds_file {
        let p = cfg.resolve(p);
        let text = crate::config::read_small_file(&p, "cluster.creds_file").map_err(anyhow::Error::msg)?;
        let text = String::from_utf8(text).context("cluster.creds_file: not UTF-8")?;
        o = o
            .credentials(&text)
            .with_context(|| format!("cluster.creds_file {}", p.display()))?;
    }
    if let Some(p) = &c.tls_ca_file {
        o = o.add_root_certificates(cfg.resolve(p)).require_tls(true);
    }
    Ok(o)
}

/// The bus thread's whole life: connect, then publish, subscribe and sync
/// the configuration until `stop`. `ready` hears once the bucket was read
/// (or at once when configuration is not shared).
pub(super) async fn run(
    st: Arc<BusState>,
    opts: ConnectOptions,
    stop: tokio::sync::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let (gen_tx, gen_rx) = tokio::sync::watch::channel(0u64);
    let ev = Arc::clone(&st);
    let opts = opts.event_callback(move |e| {
        let (st, gen_tx) = (Arc::clone(&ev), gen_tx.clone());
        async move {
            match e {
                Event::Connected => {
                    st.stats.connected.store(true, Relaxed);
                    st.stats.connects.fetch_add(1, Relaxed);
                    gen_tx.send_modify(|g| *g += 1);
                    tracing::info!("cluster bus: connected");
                }
                Event::Disconnected => {
                    st.stats.connected.store(false, Relaxed);
                    st.stats.synced.store(false, Relaxed);
                    st.note_error("disconnected".into());
                }
                Event::ServerError(e) => st.note_error(format!("server error: {e}")),
                Event::ClientError(e) => st.note_error(format!("client error: {e}")),
                Event::SlowConsumer(_) => st.note_error("slow consumer: verified sources lost".into()),
                _ => {}
            }
        }
    });
    let client = match opts.connect(st.cfg.nats.clone()).await {
        Ok(c) => c,
        Err(e) => {
            st.note_error(format!("cannot connect: {e}"));
            return;
        }
    };
    let mut ready = Some(ready);
    if !st.cfg.share_config {
        ready.take().map(|r| r.send(()));
    }
    let share = st.cfg.share_verified;
    let connects = gen_rx.clone();
    let tasks = async {
        tokio::join!(
            async {
                if share {
                    publish(&st, &client).await;
                }
            },
            async {
                if share {
                    subscribe(&st, &client, connects).await;
                }
            },
            async {
                if st.cfg.share_config {
                    super::sync::run(&st, &client, gen_rx, ready).await;
                }
            },
            async {
                if let Some(bl) = &st.blacklist {
                    super::bans::run(&st, bl, &client).await;
                }
            },
        )
    };
    tokio::select! {
        _ = stop => {}
        _ = tasks => {}
    }
    // Whatever was published gets out before the connection closes.
    let _ = tokio::time::timeout(Duration::from_millis(300), client.flush()).await;
}

/// Every [`FLUSH`]: the workers' outboxes (and hand-verified sources)
/// through the [`Batcher`], out on the bus in batches.
async fn publish(st: &BusState, client: &async_nats::Client) {
    let subject = st.subject();
    let mut batcher = Batcher::new(st.cfg.verified_rate, mono(st));
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut taken = Vec::new();
    let mut buf = Vec::new();
    let mut pruned = mono(st);
    loop {
        tick.tick().await;
        let now = mono(st);
        taken.clear();
        // Everything waiting: at most every ring's size.
        st.mail.take_verified(usize::MAX, |e| taken.push(e));
        taken.extend(st.take_manual());
        st.remember(&taken, now);
        if now.saturating_sub(pruned) >= PRUNE {
            st.mirror().prune(now);
            pruned = now;
        }
        for &e in &taken {
            match batcher.offer(e, now) {
                Offer::Queued => {}
                Offer::Repeat => {
                    st.stats.verified_repeats.fetch_add(1, Relaxed);
                }
                Offer::OverRate => {
                    st.stats.dropped.rate.fetch_add(1, Relaxed);
                }
            }
        }
        for b in batcher.take() {
            let n = b.len() as u64;
            if !st.stats.connected.load(Relaxed) {
                st.stats.dropped.bus_down.fetch_add(n, Relaxed);
                continue;
            }
            buf.clear();
            wire::encode(st.id, &b, &mut buf);
            match client.publish(subject.clone(), buf.clone().into()).await {
                Ok(()) => st.stats.verified_out.fetch_add(n, Relaxed),
                Err(_) => st.stats.dropped.bus_down.fetch_add(n, Relaxed),
            };
        }
    }
}

/// How often the mirror forgets expired sources (ns).
const PRUNE: u64 = 10_000_000_000;

/// Sources sent again per [`FLUSH`] for catch-up: [`CATCHUP_RATE`] per
/// second.
const CATCHUP_PER_FLUSH: usize = (CATCHUP_RATE * FLUSH.as_millis() as u64 / 1000) as usize;

/// Other nodes' batches into every worker's inbox; on every (re)connection
/// a catch-up request out, and other nodes' requests answered.
async fn subscribe(st: &BusState, client: &async_nats::Client, mut connects: tokio::sync::watch::Receiver<u64>) {
    let subject = st.subject();
    let sync = format!("{subject}.sync");
    // Sources (with their expiry) still to send for catch-up: one replay
    // at a time, a new request starts it again from the whole mirror (it
    // goes to every node, so one serves all the nodes joining meanwhile).
    let mut replay: Vec<(IpAddr, u64)> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let subs = async {
            Ok::<_, async_nats::SubscribeError>((
                client.subscribe(subject.clone()).await?,
                client.subscribe(sync.clone()).await?,
            ))
        };
        let (mut sub, mut hellos) = match subs.await {
            Ok(s) => s,
            Err(e) => {
                st.note_error(format!("subscribing to {subject}: {e}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Subscribed: ask now (the connection's subscriptions go to the
        // server before this), and again after every reconnection. And
        // send what this node knows: the others may have come back before
        // it (their requests reached nobody), e.g. after the server
        // restarted, and lack what it verified while the bus was away.
        connects.borrow_and_update();
        let mut ask = true;
        loop {
            if ask && st.stats.connected.load(Relaxed) {
                ask = false;
                replay = st.mirror().live(mono(st));
                let hello = wire::encode_hello(st.id);
                match client.publish(sync.clone(), hello.to_vec().into()).await {
                    Ok(()) => st.stats.catchup_requests_out.fetch_add(1, Relaxed),
                    Err(e) => {
                        st.note_error(format!("catch-up request: {e}"));
                        0
                    }
                };
            }
            tokio::select! {
                m = sub.next() => match m {
                    Some(m) => take_in(st, &m.payload),
                    None => break,
                },
                h = hellos.next() => match h {
                    Some(h) => {
                        if let Some(live) = hello_in(st, &h.payload) {
                            replay = live;
                        }
                    }
                    None => break,
                },
                r = connects.changed() => {
                    if r.is_err() {
                        return;
                    }
                    ask = true;
                }
                _ = tick.tick(), if !replay.is_empty() => catch_up(st, client, &subject, &mut replay).await,
            }
        }
    }
}

/// A catch-up request: the mirror's live sources to send, unless it is
/// this node's own or garbage (counted).
fn hello_in(st: &BusState, payload: &[u8]) -> Option<Vec<(IpAddr, u64)>> {
    match wire::decode_hello(payload) {
        Ok(sender) if sender == st.id => None,
        Ok(_) => {
            st.stats.catchup_requests_in.fetch_add(1, Relaxed);
            Some(st.mirror().live(mono(st)))
        }
        Err(e) => {
            st.stats.bad_messages.fetch_add(1, Relaxed);
            st.note_error(format!("refused a catch-up request: {e}"));
            None
        }
    }
}

/// One [`FLUSH`]'s share of a replay: up to [`CATCHUP_PER_FLUSH`] sources
/// with the TTL they have left, in messages of [`BATCH`]. The bus gone,
/// the replay is dropped (the joiner asks again when it returns).
async fn catch_up(st: &BusState, client: &async_nats::Client, subject: &str, replay: &mut Vec<(IpAddr, u64)>) {
    let now = mono(st);
    let take = replay.len().min(CATCHUP_PER_FLUSH);
    let entries: Vec<_> = replay
        .drain(replay.len() - take..)
        .filter_map(|(ip, until)| remaining(ip, until, now))
        .collect();
    let mut buf = Vec::new();
    for b in entries.chunks(BATCH) {
        if !st.stats.connected.load(Relaxed) {
            replay.clear();
            return;
        }
        buf.clear();
        wire::encode(st.id, b, &mut buf);
        match client.publish(subject.to_string(), buf.clone().into()).await {
            Ok(()) => st.stats.catchup_sent.fetch_add(b.len() as u64, Relaxed),
            Err(_) => {
                replay.clear();
                return;
            }
        };
    }
}

/// One message from the bus: decoded, our own skipped, each source offered
/// to every worker.
fn take_in(st: &BusState, payload: &[u8]) {
    let b = match wire::decode(payload) {
        Ok(b) => b,
        Err(e) => {
            st.stats.bad_messages.fetch_add(1, Relaxed);
            st.note_error(format!("refused a verified-source message: {e}"));
            return;
        }
    };
    if b.sender == st.id {
        return;
    }
    st.remember(&b.entries, mono(st));
    for e in b.entries {
        if st.mail.insert_verified(e) == 0 {
            st.stats.verified_in.fetch_add(1, Relaxed);
        } else {
            st.stats.dropped.inbox_full.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Control;
    use dataplane::runtime::mailbox::{self, Mailboxes, VerifiedEntry};

    /// A bus state over one worker mailbox (whose worker end is returned).
    fn state(dir: &std::path::Path) -> (BusState, mailbox::WorkerMail) {
        let mut cfg = Config::from_toml_str(crate::cmd::demo::DEMO_CONFIG, "demo", std::path::Path::new(".")).unwrap();
        cfg.node.state_dir = dir.to_path_buf();
        let s = Control::load(cfg.clone()).unwrap();
        let policy = Arc::new(arc_swap::ArcSwap::from_pointee(s.config().policy().unwrap()));
        let control = Arc::new(Control::new(
            s,
            policy,
            Arc::new(crate::metrics::Counters::new(Vec::new())),
        ));
        let (m, w) = mailbox::pair();
        let mail = Arc::new(Mailboxes::new(vec![m]));
        (BusState::new(cfg.cluster, control, mail, Default::default()), w)
    }

    #[test]
    fn own_messages_are_skipped_others_go_to_the_workers_garbage_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (st, mut w) = state(dir.path());
        let e = VerifiedEntry {
            ip: "192.0.2.44".parse().unwrap(),
            ttl: 300_000_000_000,
        };
        let mut own = Vec::new();
        wire::encode(st.id, &[e], &mut own);
        take_in(&st, &own);
        let mut peer = Vec::new();
        wire::encode(st.id ^ 1, &[e, e], &mut peer);
        take_in(&st, &peer);
        take_in(&st, b"garbage");
        assert_eq!(st.stats.verified_in.load(Relaxed), 2);
        assert_eq!(st.stats.bad_messages.load(Relaxed), 1);
        let mut table = classifier::state::VerifiedTable::with_capacity(8);
        w.drain(&mut table, 0);
        assert!(table.is_verified(e.ip, 1));
        assert_eq!(table.len(), 1);
        // Learnt from the bus: never offered back.
        assert_eq!(st.mail.take_verified(usize::MAX, |_| {}), 0);
    }
}

//! How many verified sources per second the cluster bus carries end to end
//! on this machine: a worker's outbox ring → the management side's take →
//! the bus message ([`wire`]) → a real `nats-server` → the other node's
//! subscriber → a worker's inbox ring → its verified table, drained per
//! millisecond tick as a worker does (a full inbox is a counted drop, as
//! on the bus). One batch size per run, as the bus
//! uses them ([`batch::BATCH`] is the bus's; 1 shows the cost of not
//! batching).
//!
//! `cargo run --release -p mgmt --example bus_rate` starts its own
//! `nats-server` (PATH, /usr/sbin or /sbin) on a free loopback port, or uses
//! `NATS_URL`. Prints one line per batch size; nothing is asserted.

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use classifier::state::VerifiedTable;
use dataplane::runtime::mailbox::{self, Mailboxes};
use futures_util::StreamExt;
use mgmt::cluster::bus::{batch, wire};

/// Sources sent per batch size.
const SOURCES: u64 = 400_000;
const TTL: u64 = 300_000_000_000;

struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_server() -> (String, Server) {
    if let Ok(u) = std::env::var("NATS_URL") {
        return (u, Server(None));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let bin = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .expect("nats-server not found (apt-get install nats-server), or set NATS_URL");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (format!("nats://127.0.0.1:{port}"), Server(Some(child)))
}

fn source(n: u64) -> IpAddr {
    // 10.0.0.0/8 then 100.64.0.0/10: distinct addresses.
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32)))
}

/// What one run saw.
struct Run {
    /// Sources published, and received by the other node.
    sent: u64,
    got: u64,
    /// Seconds from the first publish to the last source received.
    received: f64,
    /// Sources the receiving worker's inbox had no room for (its drain is
    /// bounded per tick).
    inbox_full: u64,
    messages: u64,
    /// Sources the sending worker's outbox had no room for.
    outbox_full: u64,
}

/// One run at `batch` entries per message.
async fn run(url: &str, batch: usize) -> Run {
    let subject = format!("rate.{batch}.verified");
    let sender = async_nats::connect(url).await.expect("connect");
    let receiver = async_nats::connect(url).await.expect("connect");
    let mut sub = receiver.subscribe(subject.clone()).await.expect("subscribe");
    receiver.flush().await.expect("flush");

    // The receiving node: one worker draining its inbox per 1 ms tick.
    let (m_in, mut w_in) = mailbox::pair();
    let inbox = Arc::new(Mailboxes::new(vec![m_in]));
    let in_table = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (in_table, stop) = (Arc::clone(&in_table), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut t = VerifiedTable::with_capacity(1 << 20);
            while !stop.load(Relaxed) {
                w_in.drain(&mut t, 1);
                in_table.store(t.len() as u64, Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // How many the sender got out (the outbox may drop a few when the
    // filler outruns the take): the receiver stops there.
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let recv = {
        let inbox = Arc::clone(&inbox);
        let target = Arc::clone(&target);
        tokio::spawn(async move {
            let mut got = 0u64;
            let mut full = 0u64;
            let mut last = Instant::now();
            while got < target.load(Relaxed) {
                let m = match tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    // A subscriber that fell behind loses messages (NATS
                    // drops for slow consumers): stop a second after the
                    // last one once everything was sent.
                    Err(_) if target.load(Relaxed) != u64::MAX && last.elapsed() > Duration::from_secs(1) => break,
                    Err(_) => continue,
                };
                last = Instant::now();
                let b = wire::decode(&m.payload).expect("decode");
                for e in b.entries {
                    got += 1;
                    // As the bus does: a full inbox is a counted drop.
                    if inbox.insert_verified(e) != 0 {
                        full += 1;
                    }
                }
            }
            (got, full, last)
        })
    };

    // The sending node: a worker's outbox filled by a thread as fast as
    // the ring takes it; the management side takes it every few ms.
    let (m_out, mut w_out) = mailbox::pair();
    let outbox = Mailboxes::new(vec![m_out]);
    let filler = std::thread::spawn(move || {
        let mut n = 0;
        let mut t = VerifiedTable::with_capacity(16);
        while n < SOURCES {
            // Publishes the outbox's drop count; nothing is dropped here
            // because the filler waits for room.
            w_out.drain(&mut t, 0);
            for _ in 0..mailbox::VERIFIED_RING / 2 {
                if n == SOURCES {
                    break;
                }
                w_out.share_verified(source(n), TTL);
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut messages = 0u64;
    let mut pending = Vec::new();
    let mut buf = Vec::new();
    loop {
        let done = filler.is_finished();
        outbox.take_verified(usize::MAX, |e| pending.push(e));
        if done && pending.is_empty() {
            break;
        }
        for chunk in pending.chunks(batch) {
            buf.clear();
            let n = wire::encode(0xbeef, chunk, &mut buf);
            sender
                .publish(subject.clone(), buf.clone().into())
                .await
                .expect("publish");
            sent += n as u64;
            messages += 1;
        }
        pending.clear();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sender.flush().await.expect("flush");
    filler.join().unwrap();
    target.store(sent, Relaxed);
    let (got, full, last) = recv.await.unwrap();
    let received = last.duration_since(t0).as_secs_f64();
    while in_table.load(Relaxed) < got - full {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, Relaxed);
    worker.join().unwrap();
    Run {
        sent,
        got,
        received,
        inbox_full: full,
        messages,
        outbox_full: outbox.verified_out_dropped(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (url, _server) = start_server();
    println!(
        "{SOURCES} IPv4 sources per run through {url}; the bus batches {} per message",
        batch::BATCH
    );
    for b in [1, 16, batch::BATCH, wire::MAX_ENTRIES] {
        let r = run(&url, b).await;
        println!(
            "batch {b:>3}: {} sources published in {} messages, {:.0} sources/s received ({} lost on the way, \
             {} not taken by the sending outbox), {} not taken by the receiving worker's inbox \
             ({} per 1 ms tick); {:.1} bytes/source on the wire",
            r.sent,
            r.messages,
            r.got as f64 / r.received,
            r.sent - r.got,
            r.outbox_full,
            r.inbox_full,
            mailbox::INBOX_PER_TICK,
            (12.0 + 9.0 * b as f64) / b as f64
        );
    }
}

use super::*;
use classifier::cookie::CookieSecrets;
use classifier::policy::{BanRule, Origin, Service};
use classifier::state::BanTable;
use classifier::time::SECOND;
use dataplane::runtime::mailbox::{pair, WorkerMail};

fn policy(rule: Option<BanRule>) -> Policy {
    let mut p = Policy::new(CookieSecrets::new([7; 16]));
    let origin = p.add_origin(Origin {
        name: "o".into(),
        tunnel_src: "10.0.0.1".parse().unwrap(),
        tunnel_dst: "10.0.0.2".parse().unwrap(),
        key: None,
        mtu: 1476,
    });
    let mut web = Service::new("web", "192.0.2.10".parse().unwrap(), origin);
    web.blacklist = rule;
    p.add_service(web).unwrap();
    p.add_service(Service::new("game", "192.0.2.11".parse().unwrap(), origin))
        .unwrap();
    p
}

const RULE: BanRule = BanRule {
    violations: 3,
    window: 10 * SECOND,
    ban: 5 * SECOND,
};

fn setup(dir: Option<&Path>, bans: usize, counters: usize) -> (Blacklist, WorkerMail) {
    let (m, w) = pair();
    let mail = Arc::new(Mailboxes::new(vec![m]));
    let pol = Arc::new(ArcSwap::from_pointee(policy(Some(RULE))));
    (Blacklist::new(mail, pol, dir, bans, counters), w)
}

fn v(src: &str, service: ServiceId) -> Violation {
    Violation {
        src: src.parse().unwrap(),
        service,
        kind: ViolationKind::SrcPps,
    }
}

/// One violation from the worker, taken by one tick at `now` (ms).
fn feed(bl: &Blacklist, w: &mut WorkerMail, table: &mut BanTable, x: Violation, now: u64) {
    w.share_violation(x);
    // A worker tick: a new coalescing round, bans applied.
    w.drain_bans(table, now * MILLISECOND);
    bl.tick(now);
    w.drain_bans(table, now * MILLISECOND);
}

#[test]
fn violations_in_one_window_ban_and_the_worker_drops_until_the_end() {
    let (bl, mut w) = setup(None, 16, 16);
    let mut table = BanTable::with_capacity(16);
    let a = v("198.51.100.7", 0);
    feed(&bl, &mut w, &mut table, a, 1_000);
    feed(&bl, &mut w, &mut table, a, 2_000);
    assert!(bl.list(None, None, 2_000).is_empty());
    assert_eq!(bl.counters(), 1);
    feed(&bl, &mut w, &mut table, a, 3_000);
    let bans = bl.list(None, None, 3_000);
    assert_eq!(bans.len(), 1);
    let b = &bans[0];
    assert_eq!(
        (b.service.as_str(), b.kind.as_str(), b.violations),
        ("web", "src_pps", 3)
    );
    assert_eq!((b.banned_at, b.expires_at), (3_000, 8_000));
    assert_eq!(bl.counters(), 0, "the counter ends with the ban");
    assert!(table.is_banned(a.src, 3_000 * MILLISECOND));
    assert!(table.is_banned(a.src, 8_000 * MILLISECOND - 1));
    assert!(
        !table.is_banned(a.src, 8_000 * MILLISECOND),
        "the worker's ban ends by itself"
    );
    bl.tick(8_000);
    assert_eq!(bl.active(), 0);
    assert_eq!(bl.stats.bans_expired.load(Relaxed), 1);
    assert_eq!(bl.stats.violations[ViolationKind::ALL.len() - 1].load(Relaxed), 3);
}

#[test]
fn a_window_that_ends_starts_the_count_again_and_services_without_a_blacklist_are_ignored() {
    let (bl, mut w) = setup(None, 16, 16);
    let mut table = BanTable::with_capacity(16);
    let a = v("198.51.100.7", 0);
    feed(&bl, &mut w, &mut table, a, 0);
    feed(&bl, &mut w, &mut table, a, 9_000);
    feed(&bl, &mut w, &mut table, a, 10_000);
    assert_eq!(bl.active(), 0, "the third fell in a new window");
    feed(&bl, &mut w, &mut table, a, 11_000);
    feed(&bl, &mut w, &mut table, a, 12_000);
    assert_eq!(bl.active(), 1);
    // "game" has no blacklist.
    let g = v("198.51.100.8", 1);
    for t in 0..10 {
        feed(&bl, &mut w, &mut table, g, 12_000 + t);
    }
    assert_eq!(bl.active(), 1);
    assert_eq!(bl.stats.ignored.load(Relaxed), 10);
}

#[test]
fn the_same_violation_within_one_worker_tick_is_coalesced() {
    let (bl, mut w) = setup(None, 16, 16);
    let a = v("198.51.100.7", 0);
    for _ in 0..100 {
        w.share_violation(a);
    }
    bl.tick(0);
    assert_eq!(bl.counters(), 1);
    assert_eq!(bl.stats.violations.iter().map(|c| c.load(Relaxed)).sum::<u64>(), 1);
}

#[test]
fn counters_and_bans_are_bounded_and_evictions_counted() {
    let (bl, mut w) = setup(None, 4, 8);
    let bytes = bl.memory_bytes();
    let mut table = BanTable::with_capacity(4);
    for i in 0..1000u32 {
        let x = Violation {
            src: IpAddr::V4(i.into()),
            service: 0,
            kind: ViolationKind::SrcConns,
        };
        feed(&bl, &mut w, &mut table, x, 1_000);
    }
    assert_eq!(bl.counters(), 8);
    assert_eq!(bl.stats.counters_evicted.load(Relaxed), 992);
    // Windows that ended make room first, without an eviction.
    feed(&bl, &mut w, &mut table, v("192.0.2.1", 0), 20_000);
    assert_eq!(bl.counters(), 1);
    assert_eq!(bl.stats.counters_evicted.load(Relaxed), 992);
    for i in 0..10u64 {
        bl.ban(IpAddr::V4(((i as u32 + 1) << 8).into()), None, 10 + i, 30_000)
            .unwrap();
    }
    assert_eq!(bl.active(), 4);
    assert_eq!(bl.stats.bans_evicted.load(Relaxed), 6);
    let kept: Vec<u64> = bl.list(None, None, 30_000).iter().map(|b| b.expires_at).collect();
    assert_eq!(kept, vec![46_000, 47_000, 48_000, 49_000], "the soonest ends made room");
    assert_eq!(bl.memory_bytes(), bytes, "reserved up front");
}

#[test]
fn manual_bans_are_checked_listed_searched_and_lifted_everywhere() {
    let (bl, mut w) = setup(None, 16, 16);
    let mut table = BanTable::with_capacity(16);
    let a: IpAddr = "2001:db8::7".parse().unwrap();
    let b: IpAddr = "198.51.100.9".parse().unwrap();
    assert_eq!(bl.ban(a, None, 0, 0), Err(BanError::Duration(0)));
    assert_eq!(bl.ban(a, None, 2_592_001, 0), Err(BanError::Duration(2_592_001)));
    assert_eq!(bl.ban(a, Some("nope"), 5, 0), Err(BanError::NoService("nope".into())));
    bl.ban(a, Some("game"), 60, 1_000).unwrap();
    bl.ban(b, None, 30, 1_000).unwrap();
    w.drain_bans(&mut table, SECOND);
    assert!(table.is_banned(a, 2 * SECOND) && table.is_banned(b, 2 * SECOND));
    assert_eq!(bl.list(None, None, 2_000).len(), 2);
    assert_eq!(bl.list(Some("game"), None, 2_000)[0].source, a);
    assert_eq!(bl.list(None, Some("db8"), 2_000)[0].source, a);
    assert_eq!(bl.list(None, Some("198.51"), 2_000)[0].source, b);
    assert!(bl.list(None, Some("203."), 2_000).is_empty());
    assert_eq!(bl.get(a, 2_000).unwrap().kind, MANUAL);
    assert!(bl.unban(a).is_some());
    assert!(bl.unban(a).is_none());
    w.drain_bans(&mut table, 2 * SECOND);
    assert!(!table.is_banned(a, 2 * SECOND), "lifted on the worker");
    assert!(table.is_banned(b, 2 * SECOND));
    assert!(bl.get(a, 2_000).is_none());
}

#[test]
fn bans_survive_a_restart_and_ended_ones_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (bl, _w) = setup(Some(dir.path()), 16, 16);
    let a: IpAddr = "198.51.100.1".parse().unwrap();
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    bl.ban(a, Some("web"), 100, 1_000).unwrap();
    bl.ban(b, None, 2, 1_000).unwrap();
    bl.save();
    let path = dir.path().join(FILE);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (again, mut w) = setup(Some(dir.path()), 16, 16);
    assert_eq!(again.load(5_000).unwrap(), 1, "b ended at 3 s");
    assert_eq!(again.list(None, None, 5_000), vec![bl.get(a, 5_000).unwrap()]);
    let mut table = BanTable::with_capacity(16);
    w.drain_bans(&mut table, 0);
    assert!(table.is_banned(a, 95 * SECOND), "the time left: 96 s");
    assert!(!table.is_banned(a, 96 * SECOND));
    // A bad file is an error, not a panic.
    std::fs::write(&path, b"[{\"source\": 1}]").unwrap();
    assert!(again.load(0).is_err());
    // No state folder: nothing to load.
    let (none, _w) = setup(None, 16, 16);
    assert_eq!(none.load(0).unwrap(), 0);
}

#[test]
fn shared_changes_go_out_once_and_peer_bans_apply_with_their_time_left() {
    let (bl, mut w) = setup(None, 16, 16);
    let a: IpAddr = "198.51.100.1".parse().unwrap();
    bl.ban(a, None, 10, 0).unwrap();
    assert!(bl.take_outgoing().is_empty(), "not shared before the bus is on");
    bl.share_with_cluster();
    bl.ban(a, None, 10, 0).unwrap();
    bl.unban(a);
    let out = bl.take_outgoing();
    assert_eq!(out.len(), 2);
    assert!(matches!(
        &out[0],
        Shared::Ban {
            remaining_ms: 10_000,
            ..
        }
    ));
    assert_eq!(out[1], Shared::Unban { source: a });
    // The wire form round-trips.
    let json = serde_json::to_vec(&out[0]).unwrap();
    assert_eq!(serde_json::from_slice::<Shared>(&json).unwrap(), out[0]);
    // A peer's ban: applied with its time left from now, not shared again.
    let (peer, mut pw) = setup(None, 16, 16);
    peer.share_with_cluster();
    peer.apply_peer(out[0].clone(), 50_000);
    assert!(peer.take_outgoing().is_empty());
    let got = peer.get(a, 50_000).unwrap();
    assert!(got.peer);
    assert_eq!(got.expires_at, 60_000);
    let mut table = BanTable::with_capacity(16);
    pw.drain_bans(&mut table, 0);
    assert!(table.is_banned(a, 9 * SECOND));
    peer.apply_peer(out[1].clone(), 51_000);
    assert!(peer.get(a, 51_000).is_none());
    pw.drain_bans(&mut table, SECOND);
    assert!(!table.is_banned(a, 2 * SECOND));
    w.drain_bans(&mut table, 0);
}

#[test]
fn memory_at_the_default_sizes() {
    let d = crate::config::DataplaneConfig::default();
    let (bl, _w) = setup(None, d.ban_table_size as usize, d.violation_table_size as usize);
    let bytes = bl.memory_bytes();
    let worker = BanTable::with_capacity(d.ban_table_size as usize).memory_bytes();
    eprintln!(
        "management side: {bytes} bytes for {} counters and {} bans; a worker's ban table: {worker} bytes",
        d.violation_table_size, d.ban_table_size
    );
    // Reserved up front: at most 64 bytes per counter and 160 per ban.
    assert!(bytes <= 65536 * 2 * 64 + 4096 * 2 * 160, "{bytes}");
    assert!(worker <= 4096 * 80, "{worker}");
}

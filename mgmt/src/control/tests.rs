use std::path::Path;

use super::*;
use crate::cmd::demo::DEMO_CONFIG;

fn file_config(state: &Path) -> Config {
    let mut c = Config::from_toml_str(DEMO_CONFIG, "demo", Path::new(".")).unwrap();
    c.node.state_dir = state.to_path_buf();
    c
}

/// A control over a policy handle started as `node::plan` would.
fn control(state: &Path) -> (Control, Arc<ArcSwap<Policy>>) {
    let s = Control::load(file_config(state)).unwrap();
    let mut p = s.config().policy().unwrap();
    // What only the running snapshot knows.
    p.secrets.generation = 4242;
    p.own_addrs.truncate(1);
    let h = Arc::new(ArcSwap::from_pointee(p));
    let c = Control::new(s, Arc::clone(&h), Arc::new(Counters::new(Vec::new())));
    (c, h)
}

fn game(name: &str, vip: &str) -> ServiceConfig {
    serde_json::from_value(serde_json::json!({
        "name": name, "vip": vip, "origin": "web", "allow": ["udp/7777"], "syn_auth": "off"
    }))
    .unwrap()
}

#[test]
fn service_changes_are_published_persisted_and_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let (c, h) = control(dir.path());
    c.create_service(game("game", "203.0.113.20")).unwrap();
    let p = h.load();
    assert!(p.services.iter().any(|s| s.name == "game"));
    assert_eq!(p.secrets.generation, 4242, "the running secrets are kept");
    assert_eq!(p.own_addrs.len(), 1, "the running own addresses are kept");
    assert_eq!(c.generation(), 1);

    let mut g = game("game", "203.0.113.21");
    g.syn_auth = SynAuth::CookieReset;
    c.update_service("game", g.clone(), None).unwrap();
    c.delete_service("web6", None).unwrap();
    assert_eq!(c.service_names(), ["web", "game"]);
    assert_eq!(h.load().services.len(), 2);

    // A restart: the file plus the stored changes.
    let s = Control::load(file_config(dir.path())).unwrap();
    let names: Vec<_> = s.config().services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "game"]);
    assert_eq!(s.config().services[1], g);
}

#[test]
fn refused_changes_name_the_field_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (c, h) = control(dir.path());
    let mut bad = game("game", "203.0.113.20");
    bad.origin = "nowhere".into();
    let e = c.create_service(bad).unwrap_err();
    assert_eq!(
        e,
        ControlError::Invalid {
            field: "origin".into(),
            reason: "unknown origin \"nowhere\"".into()
        }
    );
    let e = c.create_service(game("game", "203.0.113.10")).unwrap_err();
    assert!(
        matches!(&e, ControlError::Invalid { field, .. } if field == "vip"),
        "{e:?}"
    );
    assert!(matches!(
        c.create_service(game("web", "203.0.113.30")).unwrap_err(),
        ControlError::Exists { .. }
    ));
    let mut rules = c.rules();
    rules.acl.deny.push("198.51.100.0/24".parse().unwrap());
    rules.acl.allow.push("198.51.100.0/24".parse().unwrap());
    let e = c.put_rules(rules, None).unwrap_err();
    assert!(
        matches!(&e, ControlError::Invalid { field, .. } if field.starts_with("acl.")),
        "{e:?}"
    );
    assert_eq!(c.generation(), 0);
    assert_eq!(h.load().services.len(), 2);
    assert!(!dir.path().join(CHANGES_FILE).exists());
}

#[test]
fn stale_if_match_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = control(dir.path());
    let old = etag(&c.service("web").unwrap());
    let mut w = c.service("web").unwrap();
    w.syn_auth = SynAuth::Off;
    c.update_service("web", w.clone(), Some(&old)).unwrap();
    let e = c.update_service("web", w.clone(), Some(&old)).unwrap_err();
    assert_eq!(e, ControlError::Stale { current: etag(&w) });
    assert!(c.delete_service("web", Some(&old)).is_err());
    // An invalid body is refused as such, whatever its If-Match.
    let mut bad = w.clone();
    bad.origin = "nowhere".into();
    assert!(matches!(
        c.update_service("web", bad, Some(&old)),
        Err(ControlError::Invalid { field, .. }) if field == "origin"
    ));
    c.delete_service("web", Some("*")).unwrap();
    let r = etag(&c.rules());
    c.put_rules(Rules::default(), Some(&r)).unwrap();
    assert!(matches!(
        c.put_rules(Rules::default(), Some("\"0\"")),
        Err(ControlError::Stale { .. })
    ));
}

#[test]
fn escalations_merge_over_the_policy_and_are_not_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let (c, h) = control(dir.path());
    let rule: TcpRule = "4:64:0:-:512,-::".parse().unwrap();
    let e = Escalation {
        syn_auth: Some(SynAuth::CookieReset),
        deny_tcp: vec![rule],
        deny_udp: Vec::new(),
        blacklist: true,
    };
    c.set_escalation("web6", Some(e.clone())).unwrap();
    let p = h.load();
    let web6 = p.services.iter().find(|s| s.name == "web6").unwrap();
    assert_eq!(web6.syn_auth, SynAuth::CookieReset);
    assert_eq!(
        web6.blacklist,
        Some(crate::config::BlacklistConfig::default().rule()),
        "on_attack turns the blacklist on"
    );
    assert_eq!(p.tcp_deny, vec![rule]);
    assert_eq!(p.secrets.generation, 4242);
    // Not configuration: neither shown nor stored.
    assert_eq!(c.service("web6").unwrap().syn_auth, SynAuth::ChallengeAck);
    assert!(!dir.path().join(CHANGES_FILE).exists());
    // A configuration change keeps the escalation in force.
    c.create_service(game("game", "203.0.113.20")).unwrap();
    assert_eq!(h.load().tcp_deny, vec![rule]);
    assert_eq!(c.escalations().get("web6"), Some(&e));
    c.set_escalation("web6", None).unwrap();
    let p = h.load();
    assert!(p.tcp_deny.is_empty());
    assert_eq!(p.services.iter().find(|s| s.name == "web6").unwrap().blacklist, None);
    assert_eq!(
        p.services.iter().find(|s| s.name == "web6").unwrap().syn_auth,
        SynAuth::ChallengeAck
    );
    assert!(matches!(
        c.set_escalation("nope", Some(Escalation::default())),
        Err(ControlError::NotFound { .. })
    ));
    // Deleting the service ends its escalation.
    c.set_escalation("game", Some(e)).unwrap();
    c.delete_service("game", None).unwrap();
    assert!(c.escalations().is_empty());
    assert!(h.load().tcp_deny.is_empty());
}

#[test]
fn passed_counts_follow_names_across_service_changes() {
    let mut b = PassedBook::new(vec!["a".into(), "b".into(), "c".into()]);
    assert_eq!(
        b.totals(&[1, 2, 3]),
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]
    );
    // "b" deleted: "c" moves to index 1, whose worker counter holds b's 2.
    b.rebase(&[1, 2, 3], vec!["a".into(), "c".into()]);
    assert_eq!(b.totals(&[1, 2 + 5]), [("a".into(), 1), ("c".into(), 3 + 5)]);
    // A new service at index 2, whose worker counter restarted at zero.
    b.rebase(&[1, 7], vec!["a".into(), "c".into(), "d".into()]);
    assert_eq!(
        b.totals(&[1, 7, 4]),
        [("a".into(), 1), ("c".into(), 8), ("d".into(), 4)]
    );
}

#[test]
fn changes_that_no_longer_fit_the_file_refuse_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = control(dir.path());
    c.create_service(game("game", "203.0.113.20")).unwrap();
    let mut f = file_config(dir.path());
    f.services[0].vip = "203.0.113.20".parse().unwrap();
    let e = Control::load(f).unwrap_err().to_string();
    assert!(e.contains("changes.json") && e.contains("duplicate VIP"), "{e}");
}

/// Cookie key rotation on a running node and an API change: neither
/// undoes the other.
#[test]
fn key_rotation_keeps_api_changes_and_api_changes_keep_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = file_config(dir.path());
    f.dataplane.memory.pps = 1000;
    let s = Control::load(f).unwrap();
    let mut node = crate::lifecycle::start_node(s.config()).unwrap();
    let counters = Counters::of(&node.rt);
    let c = Control::new(s, Arc::clone(&node.rt.policy), counters);
    c.create_service(game("game", "203.0.113.20")).unwrap();
    let before = node.rt.policy.load().secrets.generation;
    let later = dataplane::runtime::wall_clock() + 7200 * classifier::time::SECOND;
    assert!(node.rotate_if_due(later));
    let p = node.rt.policy.load_full();
    assert!(p.secrets.generation > before, "rotated");
    assert!(
        p.services.iter().any(|s| s.name == "game"),
        "the API's service survived the rotation"
    );
    let rotated = p.secrets.clone();
    c.delete_service("game", None).unwrap();
    let p = node.rt.policy.load_full();
    assert_eq!(p.secrets, rotated, "the API change kept the rotated keys");
    assert!(!p.services.iter().any(|s| s.name == "game"));
    node.rt.stop().unwrap();
}

/// Services created and deleted at run time leave nothing behind in the
/// stored overlay; a deleted file service keeps its tombstone.
#[test]
fn the_stored_changes_stay_as_small_as_what_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = control(dir.path());
    let path = dir.path().join(CHANGES_FILE);
    c.delete_service("web6", None).unwrap();
    let one_tombstone = std::fs::metadata(&path).unwrap().len();
    for i in 0..1000u32 {
        let name = format!("g{i}");
        c.create_service(game(&name, &format!("203.0.{}.{}", 114 + i / 250, 1 + i % 250)))
            .unwrap();
        c.delete_service(&name, None).unwrap();
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), one_tombstone);
    let stored = Changes::load(&path).unwrap();
    assert_eq!(stored.services.len(), 1, "{stored:?}");
    assert_eq!(stored.services[0].name, "web6");
    assert_eq!(stored.services[0].service, None);
    // An overlay written by an earlier version, tombstones and all, is
    // compacted when loaded.
    let mut old = stored.clone();
    old.set_service("gone", None);
    old.save(&path).unwrap();
    let s = Control::load(file_config(dir.path())).unwrap();
    assert_eq!(s.changes().services.len(), 1);
}

/// A reload of the file is a change like any other: validated with the
/// runtime changes over it, stored, published; the parts that need a
/// restart keep their running values.
#[test]
fn a_reload_applies_the_live_parts_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (c, h) = control(dir.path());
    c.create_service(game("game", "203.0.113.20")).unwrap();
    let mut f = file_config(dir.path());
    f.services.push(game("extra", "203.0.113.30"));
    f.acl.deny.push("198.51.100.0/24".parse().unwrap());
    f.dataplane.workers = 3;
    let r = c.reload(f.clone()).unwrap();
    assert!(r.changed);
    assert_eq!(r.restart_needed, ["dataplane.workers"]);
    assert_eq!(c.service_names(), ["web", "web6", "extra", "game"]);
    assert_eq!(c.rules().acl.deny.len(), 1);
    assert_eq!(c.config().dataplane.workers, 1, "workers keep their running value");
    assert!(h.load().services.iter().any(|s| s.name == "extra"));
    assert_eq!(h.load().secrets.generation, 4242, "the running secrets are kept");
    // The same file again: nothing to do.
    assert!(!c.reload(f.clone()).unwrap().changed);

    // A file the runtime changes no longer fit (the API's "game" takes a
    // VIP the file now gives another service): refused, nothing changes.
    let generation = c.generation();
    let mut clash = f;
    clash.services.push(game("clash", "203.0.113.20"));
    assert!(c.reload(clash).is_err());
    assert_eq!(c.generation(), generation);
    assert_eq!(c.service_names(), ["web", "web6", "extra", "game"]);
}

/// Records what [`Control`] tells the bus.
#[derive(Debug, Default)]
struct Told(Mutex<Vec<(SharedKey, bool)>>);

impl Sharer for Told {
    fn changed(&self, key: SharedKey, if_match: bool) {
        self.0.lock().unwrap().push((key, if_match));
    }
}

#[test]
fn rest_changes_are_told_to_the_sharer_and_shared_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (c, h) = control(dir.path());
    let told = Arc::new(Told::default());
    c.set_sharer(Arc::clone(&told) as Arc<dyn Sharer>);
    c.create_service(game("game", "203.0.113.20")).unwrap();
    let tag = etag(&c.service("game").unwrap());
    c.update_service("game", game("game", "203.0.113.21"), Some(&tag))
        .unwrap();
    c.delete_service("game", None).unwrap();
    c.put_rules(c.rules(), None).unwrap();
    let game_key = SharedKey::Service("game".into());
    assert_eq!(
        *told.0.lock().unwrap(),
        vec![
            (game_key.clone(), false),
            (game_key.clone(), true),
            (game_key.clone(), false),
            (SharedKey::Rules, false)
        ]
    );
    // Created then deleted at run time: the overlay forgot it, the bus
    // still gets a deletion.
    assert_eq!(
        c.shared_value(&game_key),
        SharedValue::Service(Box::new(changes::ServiceChange {
            name: "game".into(),
            service: None
        }))
    );
    assert_eq!(c.shared_keys(), vec![SharedKey::Rules]);

    // Another node's service: applied, stored, published, not told back.
    told.0.lock().unwrap().clear();
    let g = game("remote", "203.0.113.30");
    let v = SharedValue::Service(Box::new(changes::ServiceChange {
        name: "remote".into(),
        service: Some(g.clone()),
    }));
    let remote = SharedKey::Service("remote".into());
    assert_eq!(c.apply_shared(&remote, Some(v.clone())), Ok(true));
    assert_eq!(
        c.apply_shared(&remote, Some(v)),
        Ok(false),
        "the same value again changes nothing"
    );
    assert!(h.load().services.iter().any(|s| s.name == "remote"));
    assert!(told.0.lock().unwrap().is_empty());
    let s = Control::load(file_config(dir.path())).unwrap();
    assert!(s.config().services.contains(&g), "cached in changes.json");

    // One that does not fit this node (unknown origin): refused, nothing changed.
    let mut bad = game("bad", "203.0.113.31");
    bad.origin = "elsewhere".into();
    let v = SharedValue::Service(Box::new(changes::ServiceChange {
        name: "bad".into(),
        service: Some(bad),
    }));
    assert!(matches!(
        c.apply_shared(&SharedKey::Service("bad".into()), Some(v)),
        Err(ControlError::Invalid { .. })
    ));
    assert!(c.service("bad").is_none());
    // A deletion from another node, and a removed key (back to the file).
    let tomb = SharedValue::Service(Box::new(changes::ServiceChange {
        name: "web6".into(),
        service: None,
    }));
    let web6 = SharedKey::Service("web6".into());
    assert_eq!(c.apply_shared(&web6, Some(tomb)), Ok(true));
    assert!(c.service("web6").is_none());
    assert_eq!(c.apply_shared(&web6, None), Ok(true));
    assert!(c.service("web6").is_some(), "the file's service is back");
}

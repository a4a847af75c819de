//! `moat report REPORT.json --html FILE`: a real attack report (`moat run`
//! on the memory backend with an attack phase, the report read from the
//! state directory) and a real `moat scrub` report (of `moat gen`'s
//! capture) become self-contained pages: no URL, their JSON embedded, the
//! renderer inline. Then headless Chromium opens them from file:// with
//! no network (tests/ui/report_offline.py) and finds the JSON's figures.
//! Bad input: exit status 2 and a message naming the problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "report-test-token-0123456789";

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .env("MOAT_API_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `moat run` until its attack has ended and its report is on disk
/// (state `ended`); the report's path.
fn attack_report(dir: &Path, cfg: &Path) -> PathBuf {
    let attacks = dir.join("state/attacks");
    let mut child = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--duration", "40"])
        .env("MOAT_API_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let ended = || -> Option<PathBuf> {
        for e in std::fs::read_dir(&attacks).ok()? {
            let p = e.ok()?.path();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            if v["state"] == "ended" {
                return Some(p);
            }
        }
        None
    };
    let found = loop {
        if let Some(p) = ended() {
            break Some(p);
        }
        if t0.elapsed() > Duration::from_secs(35) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    found.unwrap_or_else(|| panic!("no ended attack report under {} in 35 s", attacks.display()))
}

/// `moat gen` then `moat scrub`: the scrub report's path.
fn scrub_report(dir: &Path, cfg: &Path) -> PathBuf {
    let pcap = dir.join("mix.pcap");
    let clean = dir.join("clean.pcap");
    let report = dir.join("scrub-report.json");
    ok(
        &moat(&[
            "gen",
            "--out",
            pcap.to_str().unwrap(),
            "--count",
            "20000",
            "--seed",
            "7",
        ]),
        "moat gen",
    );
    ok(
        &moat(&[
            "scrub",
            "-c",
            cfg.to_str().unwrap(),
            "--in",
            pcap.to_str().unwrap(),
            "--out",
            clean.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--quiet",
        ]),
        "moat scrub",
    );
    report
}

/// The page's embedded report, parsed.
fn embedded(page: &str) -> Value {
    let open = "<script type=\"application/json\" id=\"report\">";
    let start = page.find(open).expect("no embedded report") + open.len();
    let end = page[start..].find("</script>").unwrap() + start;
    serde_json::from_str(&page[start..end]).unwrap()
}

/// What every offline page must be: no URL at all, nothing loaded from a
/// file or origin (no src=, href= but the CSP's nothing), the policy that
/// allows no origin, uPlot and the renderer inline, and the JSON as is.
fn self_contained(page: &str, json: &Value) {
    for bad in ["http://", "https://", "src=", "href=", "@import", "url(http"] {
        assert!(!page.contains(bad), "the page contains {bad}");
    }
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'"
    ));
    assert!(page.contains("var uPlot="), "uPlot not inline");
    assert!(
        page.contains("Permission is hereby granted"),
        "uPlot's licence not carried"
    );
    assert!(page.contains("const MoatReport"), "the renderer not inline");
    assert_eq!(&embedded(page), json);
}

#[test]
fn attack_and_scrub_reports_become_offline_pages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::attack_config(dir.path(), "moat-report", (3, 6), true, 2);
    let t0 = Instant::now();
    let attack_json = attack_report(dir.path(), &cfg);
    let attack: Value = serde_json::from_str(&std::fs::read_to_string(&attack_json).unwrap()).unwrap();
    assert!(attack["peak_pps"].as_f64().unwrap() > 1000.0, "{attack}");
    assert!(attack["timeline"]["points"].as_array().unwrap().len() >= 2, "{attack}");
    assert!(!attack["top_sources"].as_array().unwrap().is_empty(), "{attack}");
    eprintln!("attack report after {:?}", t0.elapsed());
    let scrub_json = scrub_report(dir.path(), &cfg);
    let scrub: Value = serde_json::from_str(&std::fs::read_to_string(&scrub_json).unwrap()).unwrap();
    assert!(scrub["dropped_packets"].as_u64().unwrap() > 0, "{scrub}");

    let attack_html = dir.path().join("attack.html");
    let scrub_html = dir.path().join("scrub.html");
    for (json, html) in [(&attack_json, &attack_html), (&scrub_json, &scrub_html)] {
        let o = moat(&["report", json.to_str().unwrap(), "--html", html.to_str().unwrap()]);
        ok(&o, "moat report --html");
        assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
    }
    let page = std::fs::read_to_string(&attack_html).unwrap();
    self_contained(&page, &attack);
    assert!(page.contains(&format!(
        "<title>Moat · attack {}</title>",
        attack["attack_uuid"].as_str().unwrap()
    )));
    // The dashboard's attack page's own markup.
    assert!(page.contains("<div id=\"timeline\" class=\"graphs\"></div>"));
    let page = std::fs::read_to_string(&scrub_html).unwrap();
    self_contained(&page, &scrub);
    assert!(page.contains("<table id=\"services\"></table>"));

    browser(&attack_json, &attack_html, &scrub_json, &scrub_html);
}

/// tests/ui/report_offline.py on both pages; screenshots into
/// $MOAT_UI_ARTIFACTS (default: a temporary folder, kept).
fn browser(attack_json: &Path, attack_html: &Path, scrub_json: &Path, scrub_html: &Path) {
    let why = common::missing_tools(&["chromium", "chromedriver"], "chromium chromium-driver")
        .or_else(|| common::python().err());
    if !common::can_run("offline report browser test", why) {
        return;
    }
    let artifacts = match std::env::var_os("MOAT_UI_ARTIFACTS") {
        Some(d) => PathBuf::from(d),
        None => tempfile::Builder::new()
            .prefix("moat-report-")
            .tempdir()
            .unwrap()
            .keep(),
    };
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = Command::new(common::python().unwrap())
        .arg(common::root().join("tests/ui/report_offline.py"))
        .args([attack_json, attack_html, scrub_json, scrub_html, &artifacts])
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{so}{se}screenshots in {}", artifacts.display());
    assert!(out.status.success(), "report_offline.py failed:\n{so}\n{se}");
    for f in ["report_attack.png", "report_scrub.png"] {
        let len = std::fs::metadata(artifacts.join(f)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{f}: {len} bytes");
    }
}

/// Not JSON, neither kind, an unwritable output, the output the input, a
/// missing input: exit 2, the message names the file and the problem, and
/// nothing is written.
#[test]
fn bad_input_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let not_json = d.join("x.json");
    std::fs::write(&not_json, "no {").unwrap();
    let other = d.join("other.json");
    std::fs::write(&other, r#"{"hello": 1}"#).unwrap();
    let scrub = d.join("scrub.json");
    std::fs::write(
        &scrub,
        r#"{"input":"x.pcap","rx_packets":1,"rx_bytes":60,"duration_secs":0,"passed_packets":0,
        "passed_by_service":{},"replies":0,"mss_clamped":0,"dropped_packets":1,"drops_by_reason":{"acl":1},
        "top_sources":[],"top_fingerprints":[],"proposed_signatures":[],"cookie_secret":"random"}"#,
    )
    .unwrap();
    let out = d.join("out.html");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: [(Vec<String>, &str); 5] = [
        (vec![s(&not_json), "--html".into(), s(&out)], "not JSON"),
        (vec![s(&other), "--html".into(), s(&out)], "neither an attack report"),
        (
            vec![s(&d.join("missing.json")), "--html".into(), s(&out)],
            "missing.json",
        ),
        (
            vec![s(&scrub), "--html".into(), s(&d.join("no/such/dir/out.html"))],
            "--html",
        ),
        (vec![s(&scrub), "--html".into(), s(&scrub)], "would overwrite the input"),
    ];
    for (args, msg) in cases {
        let mut a = vec!["report"];
        a.extend(args.iter().map(String::as_str));
        let o = moat(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(msg), "{a:?}: {err}");
    }
    assert!(!out.exists());
    // The scrub report was not overwritten.
    assert!(std::fs::read_to_string(&scrub).unwrap().starts_with("{\"input\""));
    // And a good one works.
    let o = moat(&["report", &s(&scrub), "--html", &s(&out)]);
    ok(&o, "moat report");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("\"drops_by_reason\":{\"acl\":1}"));
}

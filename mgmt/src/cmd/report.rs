//! `moat report`: an attack report (`GET /api/v1/attacks/{uuid}`, or a
//! file of the state directory's `attacks/`) or a `moat scrub` report,
//! written as one self-contained HTML page an operator can mail: the
//! report's JSON, the dashboard's own renderer (`ui/report.js`, the code
//! of the attack page), its CSS and the vendored uPlot, all inline. The
//! page loads nothing: its Content-Security-Policy allows no origin at all
//! (`default-src 'none'`), only the inline code it carries.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::output::same_file;
use crate::api::ui::asset_bytes;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The report: an attack report (JSON of `GET /api/v1/attacks/{uuid}`
    /// or of the state directory's `attacks/`) or `moat scrub --report`'s
    /// JSON; which one is told from its fields.
    #[arg(value_name = "REPORT.json")]
    pub input: PathBuf,
    /// Write the report as one self-contained HTML page (no network needed
    /// to view it) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

/// Which report a JSON document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Attack,
    Scrub,
}

/// The kind of `v`, told by the fields each kind always has (the same
/// test as `MoatReport.kind` in `ui/report.js`).
pub fn kind(v: &serde_json::Value) -> Option<Kind> {
    let has = |k: &str| v.get(k).is_some();
    if v.get("attack_uuid").is_some_and(serde_json::Value::is_string) && has("timeline") {
        Some(Kind::Attack)
    } else if v.get("rx_packets").is_some_and(serde_json::Value::is_number)
        && has("drops_by_reason")
        && has("passed_by_service")
    {
        Some(Kind::Scrub)
    } else {
        None
    }
}

/// The offline page's policy: no origin, not even its own file; only the
/// inline script and style it carries, and `data:` images.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; \
base-uri 'none'; form-action 'none'";

/// A `moat scrub` report's page body (the attack report's is the
/// dashboard's attack page's own `<main>`).
const SCRUB_MAIN: &str = r#"
  <p id="status"></p>
  <table id="summary" class="kv"></table>
  <section class="row">
    <div><h2>Drops by reason</h2><table id="drops"></table></div>
    <div><h2>Passed by service</h2><table id="services"></table></div>
    <div><h2>Top sources</h2><table id="sources"></table></div>
    <div><h2>Top fingerprints</h2><table id="fingerprints"></table></div>
  </section>
  <h2>Proposed signatures</h2>
  <table id="signatures"></table>
"#;

/// uPlot's licence (MIT), carried with its inlined copy.
const UPLOT_LICENSE: &str = include_str!("../../ui/vendor/uPlot.LICENSE");

fn asset(p: &str) -> anyhow::Result<&'static str> {
    let b = asset_bytes(p).with_context(|| format!("ui/{p} is not embedded"))?;
    std::str::from_utf8(b).with_context(|| format!("ui/{p} is not UTF-8"))
}

/// Inline code must not close its element early.
fn inline_safe(name: &str, text: &str, end: &str) -> anyhow::Result<()> {
    if text.to_ascii_lowercase().contains(end) {
        bail!("ui/{name} contains {end}; it cannot be inlined");
    }
    Ok(())
}

/// The page for report `v` of kind `k`.
pub fn render(v: &serde_json::Value, k: Kind) -> anyhow::Result<String> {
    // `<` escaped as \u003c: the JSON cannot end its <script> element
    // (nor open a comment), and still parses to the same object.
    let data = serde_json::to_string(v)?.replace('<', "\\u003c");
    let (title, main) = match k {
        Kind::Attack => {
            let page = asset("attack.html")?;
            let open = "<main id=\"main\" hidden>";
            let start = page.find(open).context("ui/attack.html has no <main>")? + open.len();
            let end = page[start..].find("</main>").context("ui/attack.html has no </main>")? + start;
            let uuid = v["attack_uuid"].as_str().unwrap_or_default();
            (format!("Moat · attack {}", html_escape(uuid)), &page[start..end])
        }
        Kind::Scrub => ("Moat · scrub report".to_string(), SCRUB_MAIN),
    };
    let mut style = String::new();
    for css in ["vendor/uPlot.min.css", "moat.css"] {
        let text = asset(css)?;
        inline_safe(css, text, "</style")?;
        style.push_str(text);
        style.push('\n');
    }
    let mut scripts = String::new();
    for js in ["vendor/uPlot.iife.min.js", "common.js", "report.js"] {
        let text = asset(js)?;
        // uPlot's banner names its home by URL: the page names nothing
        // to fetch, so the banner becomes the licence it stands for.
        let text = match text.strip_prefix("/*! https://github.com/leeoniya/uPlot ") {
            Some(rest) => {
                let body = rest.split_once("*/").map_or(rest, |(_, b)| b);
                let version = rest.split_once(')').map_or("", |(v, _)| v.trim_start_matches('('));
                format!("/*! uPlot {version}, github.com/leeoniya/uPlot\n{UPLOT_LICENSE}*/{body}")
            }
            None => text.to_string(),
        };
        let text = text.as_str();
        inline_safe(js, text, "</script")?;
        scripts.push_str("<script>\n");
        scripts.push_str(text);
        scripts.push_str("\n</script>\n");
    }
    let offline = include_str!("../../ui/offline.js");
    inline_safe("offline.js", offline, "</script")?;
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"generator\" content=\"moat {version}\">\n\
<title>{title}</title>\n<style>\n{style}</style>\n</head>\n<body>\n\
<header><h1>{title_h} <span id=\"node\"></span></h1>\
<nav><span class=\"small\">offline report, moat {version}</span></nav></header>\n\
<main id=\"main\" hidden>{main}</main>\n\
<script type=\"application/json\" id=\"report\">{data}</script>\n\
{scripts}<script>\n{offline}\n</script>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
        title_h = match k {
            Kind::Attack => "Moat · attack",
            Kind::Scrub => "Moat · scrub report",
        },
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Reads `path` as a report of either kind.
pub fn read(path: &Path) -> anyhow::Result<(serde_json::Value, Kind)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    match kind(&v) {
        Some(k) => Ok((v, k)),
        None => bail!(
            "{}: neither an attack report (attack_uuid, timeline, ...) nor a `moat scrub` report \
             (rx_packets, drops_by_reason, passed_by_service, ...)",
            path.display()
        ),
    }
}

pub fn run(a: &ReportArgs) -> anyhow::Result<()> {
    if a.input == a.html || same_file(&a.input, &a.html) {
        bail!(
            "--html {}: the output would overwrite the input report",
            a.html.display()
        );
    }
    let (v, k) = read(&a.input)?;
    let page = render(&v, k)?;
    std::fs::write(&a.html, page).with_context(|| format!("--html {}", a.html.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_by_their_fields() {
        let attack = serde_json::json!({"attack_uuid": "u", "timeline": {"points": []}});
        let scrub = serde_json::json!({"rx_packets": 3, "drops_by_reason": {}, "passed_by_service": {}});
        assert_eq!(kind(&attack), Some(Kind::Attack));
        assert_eq!(kind(&scrub), Some(Kind::Scrub));
        assert_eq!(kind(&serde_json::json!({"rx_packets": "3"})), None);
        assert_eq!(kind(&serde_json::json!([1, 2])), None);
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let v = serde_json::json!({"rx_packets": 1, "drops_by_reason": {}, "passed_by_service": {},
            "input": "</script><script>alert(1)</script>"});
        let page = render(&v, Kind::Scrub).unwrap();
        let data = page
            .split("id=\"report\">")
            .nth(1)
            .unwrap()
            .split("</script>")
            .next()
            .unwrap();
        let back: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(back, v);
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}

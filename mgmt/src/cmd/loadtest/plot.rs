//! `moat loadtest plot`: a sweep's CSV as an SVG picture (`plotters`), two
//! panels over the flood rate Moat was offered: the legitimate clients'
//! success rate, and their time to first byte (median and 99th
//! percentile, log scale). One colour per flood type; the generated
//! clients as lines, the real Linux clients (curl) as crosses. The
//! baseline step (no flood) starts every series at 0.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use plotters::prelude::*;

/// Arguments of `moat loadtest plot`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// The sweep's CSV (`moat loadtest sweep --csv`).
    #[arg(long)]
    pub csv: PathBuf,
    /// The SVG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The title (default: the CSV's `#` line).
    #[arg(long)]
    pub title: Option<String>,
}

/// One step of the sweep, as far as the picture goes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    pps: f64,
    success: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    curl_success: Option<f64>,
    curl_p50: Option<f64>,
}

/// The sweep read back: title and the points of each flood type.
#[derive(Debug, Clone, PartialEq)]
struct Sweep {
    title: String,
    series: BTreeMap<String, Vec<Point>>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

pub fn run(a: &PlotArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.csv).with_context(|| format!("--csv {}", a.csv.display()))?;
    let mut sweep = parse(&text).with_context(|| format!("--csv {}", a.csv.display()))?;
    if let Some(t) = &a.title {
        sweep.title = t.clone();
    }
    draw(&sweep, &a.out).with_context(|| format!("--out {}", a.out.display()))?;
    crate::cmd::output::print_stdout(&format!("wrote {}\n", a.out.display()))
}

/// Reads the CSV: the `#` line, the header, the rows.
fn parse(text: &str) -> anyhow::Result<Sweep> {
    let mut title = String::new();
    let mut lines = text.lines().filter(|l| {
        if let Some(t) = l.strip_prefix('#') {
            if title.is_empty() {
                title = t.trim().to_string();
            }
            return false;
        }
        !l.trim().is_empty()
    });
    let header: Vec<&str> = lines.next().context("no header line")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .with_context(|| format!("no column {name}"))
    };
    let (flood, pps) = (col("flood")?, col("flood_offered_pps")?);
    let cols = [
        col("legit_success")?,
        col("legit_ttfb_p50_ms")?,
        col("legit_ttfb_p99_ms")?,
        col("curl_success")?,
        col("curl_ttfb_p50_ms")?,
    ];
    let mut baseline = None;
    let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() {
            bail!("row {}: {} fields, the header has {}", n + 1, f.len(), header.len());
        }
        let v = |i: usize| f[i].parse::<f64>().ok().filter(|x| x.is_finite());
        let p = Point {
            pps: v(pps).with_context(|| format!("row {}: flood_offered_pps {:?}", n + 1, f[pps]))?,
            success: v(cols[0]),
            p50: v(cols[1]),
            p99: v(cols[2]),
            curl_success: v(cols[3]),
            curl_p50: v(cols[4]),
        };
        if f[flood] == "none" {
            baseline = Some(p);
        } else {
            series.entry(f[flood].to_string()).or_default().push(p);
        }
    }
    for points in series.values_mut() {
        points.extend(baseline);
        points.sort_by(|a, b| a.pps.total_cmp(&b.pps));
    }
    if series.is_empty() {
        if let Some(b) = baseline {
            series.insert("none".into(), vec![b]);
        } else {
            bail!("no rows");
        }
    }
    Ok(Sweep { title, series })
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn draw(s: &Sweep, out: &std::path::Path) -> anyhow::Result<()> {
    let all = || s.series.values().flatten();
    let xmax = all().map(|p| p.pps).fold(0.0, f64::max).max(1.0) * 1.05;
    let ttfbs = || {
        all()
            .flat_map(|p| [p.p50, p.p99, p.curl_p50])
            .flatten()
            .filter(|v| *v > 0.0)
    };
    let ymin = ttfbs().fold(f64::MAX, f64::min).min(1.0) * 0.5;
    let ymax = ttfbs().fold(0.0, f64::max).max(10.0) * 2.0;

    let root = SVGBackend::new(out, (1100, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&s.title, ("sans-serif", 18)).map_err(err)?;
    let (top, bottom) = root.split_vertically(430);

    let mut chart = ChartBuilder::on(&top)
        .caption("legitimate connections completed (%)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, 0.0..105.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("flood offered to Moat (packets/s)")
        .y_desc("success (%)")
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in s.series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let gen: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.pps, p.success? * 100.0))).collect();
        chart
            .draw_series(LineSeries::new(gen.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(format!("{name} (generated clients; x: curl)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(gen.iter().map(|&p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
        let curl = pts.iter().filter_map(|p| Some((p.pps, p.curl_success? * 100.0)));
        chart
            .draw_series(curl.map(|p| Cross::new(p, 5, c.stroke_width(2))))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "time to first byte (ms, log): median (solid), 99th percentile (thin)",
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, (ymin..ymax).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .x_desc("flood offered to Moat (packets/s)")
        .y_desc("TTFB (ms)")
        .draw()
        .map_err(err)?;
    for (i, pts) in s.series.values().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let p50 = pts.iter().filter_map(|p| Some((p.pps, p.p50?)));
        chart
            .draw_series(LineSeries::new(p50, c.stroke_width(2)))
            .map_err(err)?;
        let p99 = pts.iter().filter_map(|p| Some((p.pps, p.p99?)));
        chart
            .draw_series(LineSeries::new(p99, c.stroke_width(1)))
            .map_err(err)?;
        let curl = pts.iter().filter_map(|p| Some((p.pps, p.curl_p50?)));
        chart
            .draw_series(curl.map(|p| Cross::new(p, 5, c.stroke_width(2))))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "# a sweep, here, today\n\
        step,flood,flood_offered_pps,legit_success,legit_ttfb_p50_ms,legit_ttfb_p99_ms,curl_success,curl_ttfb_p50_ms\n\
        0,none,0,1.0000,1.2,1010.0,1.0000,1.5\n\
        1,syn-flood,1000,1.0000,1.4,1020.0,1.0000,1.6\n\
        2,syn-flood,5000,0.9000,2.0,3000.0,,\n\
        3,ack-flood,1000,1.0000,1.3,1011.0,1.0000,1.4\n";

    #[test]
    fn the_csv_is_read_with_the_baseline_in_every_series() {
        let s = parse(CSV).unwrap();
        assert_eq!(s.title, "a sweep, here, today");
        assert_eq!(s.series.keys().collect::<Vec<_>>(), vec!["ack-flood", "syn-flood"]);
        let syn = &s.series["syn-flood"];
        assert_eq!(syn.iter().map(|p| p.pps).collect::<Vec<_>>(), vec![0.0, 1000.0, 5000.0]);
        assert_eq!((syn[2].success, syn[2].curl_success), (Some(0.9), None));
        assert!(parse("flood\nx").is_err());
        assert!(parse("step,flood,flood_offered_pps,legit_success,legit_ttfb_p50_ms,legit_ttfb_p99_ms,curl_success,curl_ttfb_p50_ms\n0,none").is_err());
    }

    #[test]
    fn the_picture_is_an_svg_with_the_title_and_the_series() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sweep.svg");
        draw(&parse(CSV).unwrap(), &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "a sweep, here, today",
            "syn-flood (generated clients",
            "ack-flood",
            "TTFB (ms)",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.matches("<polyline").count() >= 4, "lines for the series");
    }
}

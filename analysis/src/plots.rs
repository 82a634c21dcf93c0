//! Charts (`--plots DIR`): horizontal grouped bar charts written as SVG with plotters.
//!
//! One function draws every chart: categories down the side, one coloured bar per series, an
//! optional log10 axis for counts that span orders of magnitude (MP_CAPABLE answers are a fraction
//! of a percent of all answers). The y axis is integer-valued: each category takes
//! `2 * series + 2` units so every label lands on an integer tick at the centre of its bars.

use crate::diff::Diff;
use crate::summary::{self, Aggregate, Level, Options};
use anyhow::{Context, Result};
use mpscan_schema::{Class, NCLASS};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A chart's data: categories (top to bottom) and series of values, one per category.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Title at the top.
    pub title: String,
    /// Axis caption.
    pub x_desc: String,
    /// Category labels.
    pub categories: Vec<String>,
    /// (series name, one value per category).
    pub series: Vec<(String, Vec<u64>)>,
    /// Log10 axis.
    pub log: bool,
}

/// The series colours of every chart (bars and lines).
pub(crate) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A count for an axis label: `12345` as `12k`.
pub(crate) fn human(v: f64) -> String {
    let v = v.round() as u64;
    match v {
        0..=9_999 => v.to_string(),
        10_000..=9_999_999 => format!("{}k", v / 1000),
        _ => format!("{}M", v / 1_000_000),
    }
}

/// Draw `b` into an SVG file.
pub fn draw(b: &Bars, path: &Path) -> Result<()> {
    draw_inner(b, path).map_err(|e| anyhow::anyhow!("{}: cannot draw chart: {e}", path.display()))
}

fn draw_inner(b: &Bars, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let n = b.categories.len().max(1);
    let ns = b.series.len().max(1);
    let k = 2 * ns + 2;
    let units = (n * k) as i32;
    let height = (110 + n * (14 * ns + 14)).clamp(220, 2400) as u32;
    let label_w = b.categories.iter().map(|c| c.chars().count()).max().unwrap_or(4) as u32 * 7 + 16;
    let max = b.series.iter().flat_map(|s| s.1.iter()).copied().max().unwrap_or(0).max(1) as f64;
    let tx = |v: u64| {
        if b.log {
            if v == 0 {
                0.0
            } else {
                (v as f64).log10() + 0.0
            }
        } else {
            v as f64
        }
    };
    let xmax = if b.log { max.log10().ceil().max(1.0) } else { max * 1.08 };
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&b.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0f64..xmax, 0i32..units)?;
    let cats = b.categories.clone();
    let y_label = move |y: &i32| -> String {
        let y = *y as usize;
        if y % k != ns + 1 {
            return String::new();
        }
        let g = y / k;
        cats.get(n - 1 - g).cloned().unwrap_or_default()
    };
    let log = b.log;
    let x_label = move |x: &f64| {
        if log {
            if x.fract() == 0.0 {
                human(10f64.powf(*x))
            } else {
                String::new()
            }
        } else {
            human(*x)
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(units as usize + 1)
        .y_label_formatter(&y_label)
        .x_labels(if log { xmax as usize + 1 } else { 8 })
        .x_label_formatter(&x_label)
        .x_desc(b.x_desc.as_str())
        .draw()?;
    for (si, (name, vals)) in b.series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let rects: Vec<Rectangle<(f64, i32)>> = vals
            .iter()
            .enumerate()
            .map(|(g, v)| {
                let base = ((n - 1 - g) * k) as i32;
                let y0 = base + 1 + 2 * (ns - 1 - si) as i32;
                Rectangle::new([(0.0, y0), (tx(*v), y0 + 2)], color.filled())
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    if b.series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Charts of `mpscan summary`: class shares per probe, the MP_CAPABLE split, top networks per
/// breakdown level, middlebox fingerprints, and the Hilbert maps of IPv4 /24s. Returns the files written.
pub fn summary_charts(agg: &Aggregate, opts: &Options, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create plot directory", dir.display()))?;
    let mut out = vec![];
    let probes = agg.probes();
    let counts: Vec<[u64; NCLASS]> = probes.iter().map(|p| agg.counts(None, *p)).collect();
    let mut charts = vec![];
    charts.push((
        "classes.svg".to_string(),
        Bars {
            title: "Answers by class".into(),
            x_desc: "answers (log scale)".into(),
            categories: Class::ALL.iter().map(|c| c.label().to_string()).collect(),
            series: probes.iter().zip(&counts).map(|(p, c)| (format!("probe {}", p.label()), c.to_vec())).collect(),
            log: true,
        },
    ));
    charts.push((
        "mp_capable.svg".to_string(),
        Bars {
            title: "MP_CAPABLE answers: real servers vs echoing middleboxes".into(),
            x_desc: "answers".into(),
            categories: probes.iter().map(|p| format!("probe {}", p.label())).collect(),
            series: [("valid MPTCP", Class::Mptcp), ("echoed", Class::Echo), ("malformed", Class::Malformed)]
                .iter()
                .map(|(name, c)| (name.to_string(), counts.iter().map(|x| x[*c as usize]).collect()))
                .collect(),
            log: false,
        },
    ));
    for level in &opts.levels {
        for (class, what) in [(Class::Mptcp, "real MPTCP servers"), (Class::Echo, "echoing boxes")] {
            let top = if opts.top == 0 { 20 } else { opts.top };
            let (v, _, _) = summary::top_networks(agg, *level, class, top);
            if v.is_empty() {
                continue;
            }
            let (lname, short) = match level {
                Level::V4p8 => ("/8", "8"),
                Level::V4p16 => ("/16", "16"),
                Level::V4p24 => ("/24", "24"),
                Level::V6p32 => ("IPv6 /32", "v6_32"),
                Level::V6p48 => ("IPv6 /48", "v6_48"),
                Level::As => ("origin AS", "as"),
            };
            charts.push((
                format!("top_{}_{short}.svg", class.label()),
                Bars {
                    title: format!("Top {lname} networks by {what}"),
                    x_desc: what.into(),
                    categories: v.iter().map(|x| x.0.clone()).collect(),
                    series: vec![(what.to_string(), v.iter().map(|x| x.1[class as usize]).collect())],
                    log: false,
                },
            ));
        }
    }
    let fps = summary::sorted_fingerprints(agg);
    if !fps.is_empty() {
        let top = if opts.top == 0 { 20 } else { opts.top };
        let fps = &fps[..top.min(fps.len())];
        charts.push((
            "fingerprints.svg".to_string(),
            Bars {
                title: "Echoing middleboxes by fingerprint".into(),
                x_desc: "echoing answers".into(),
                categories: fps
                    .iter()
                    .map(|(f, _)| {
                        format!(
                            "ttl{} w{} {}{}",
                            f.ttl_bucket,
                            f.window,
                            f.layout,
                            if f.mirrored { " mirrored" } else { "" }
                        )
                    })
                    .collect(),
                series: vec![("answers".into(), fps.iter().map(|x| x.1.count).collect())],
                log: false,
            },
        ));
    }
    charts.extend(crate::enrich::charts(agg, opts));
    for (name, bars) in charts {
        let p = dir.join(name);
        draw(&bars, &p)?;
        out.push(p);
    }
    out.extend(crate::hilbert::maps(agg, dir)?);
    Ok(out)
}

/// Chart of `mpscan diff`: per class, targets that appeared, disappeared, switched in and out.
pub fn diff_charts(d: &Diff, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create plot directory", dir.display()))?;
    let tr = &d.transitions;
    let per = |f: &dyn Fn(usize) -> u64| -> Vec<u64> { (1..=NCLASS).map(f).collect() };
    let bars = Bars {
        title: "Scan-to-scan change by class".into(),
        x_desc: "targets (log scale)".into(),
        categories: Class::ALL.iter().map(|c| c.label().to_string()).collect(),
        series: vec![
            ("appeared".into(), per(&|s| tr[0][s])),
            ("disappeared".into(), per(&|s| tr[s][0])),
            ("switched in".into(), per(&|s| (1..=NCLASS).filter(|f| *f != s).map(|f| tr[f][s]).sum())),
            ("switched out".into(), per(&|s| (1..=NCLASS).filter(|t| *t != s).map(|t| tr[s][t]).sum())),
        ],
        log: true,
    };
    let p = dir.join("diff.svg");
    draw(&bars, &p)?;
    Ok(vec![p])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn valid_svg(p: &Path) -> String {
        let text = std::fs::read_to_string(p).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not XML: {e}", p.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{}", p.display());
        text
    }

    #[test]
    fn charts_are_valid_svg_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let b = Bars {
            title: "T <&> test".into(),
            x_desc: "x".into(),
            categories: vec!["17.0.0.0/8".into(), "AS714".into()],
            series: vec![("a".into(), vec![10, 0]), ("b".into(), vec![3, 1_000_000])],
            log: true,
        };
        let p = dir.path().join("t.svg");
        draw(&b, &p).unwrap();
        let text = valid_svg(&p);
        assert!(text.contains("17.0.0.0/8") && text.contains("AS714"), "category labels missing");
        assert!(text.matches("<rect").count() >= 4, "bars missing");
        let b = Bars { log: false, categories: vec![], series: vec![], ..b };
        draw(&b, &dir.path().join("empty.svg")).unwrap();
        valid_svg(&dir.path().join("empty.svg"));
    }

    #[test]
    fn bad_directory_is_an_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = summary_charts(&Aggregate::new(&Options::default()), &Options::default(), &f.path().join("sub"))
            .unwrap_err();
        assert!(e.to_string().contains("cannot create plot directory"), "{e}");
    }

    pub(crate) fn check_all(paths: &[PathBuf]) {
        for p in paths {
            if p.extension().is_some_and(|e| e == "png") {
                let b = std::fs::read(p).unwrap();
                assert!(b.starts_with(b"\x89PNG\r\n\x1a\n"), "{}: not a PNG", p.display());
            } else {
                valid_svg(p);
            }
        }
    }
}

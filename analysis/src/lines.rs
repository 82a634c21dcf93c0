//! Line charts (`mpscan trend --plots DIR`): one line per series over categorical x positions
//! (the scans, in time order), on a log10 y axis because MPTCP-option classes differ by orders
//! of magnitude (echoing boxes outnumber real servers tenfold, malformed answers are rare).
//!
//! The legend sits in its own column right of the plot, so it never covers a line, and x labels
//! are thinned to every k-th scan when there are too many to fit side by side.

use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// A line chart's data.
#[derive(Debug, Clone)]
pub struct Lines {
    /// Title at the top.
    pub title: String,
    /// Y axis caption.
    pub y_desc: String,
    /// X positions, left to right.
    pub categories: Vec<String>,
    /// The lines.
    pub series: Vec<Series>,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// One value per category; a zero is not drawn (log axis) and breaks the line.
    pub values: Vec<u64>,
    /// Index into the chart colours: lines of one quantity share a colour.
    pub color: usize,
    /// Dashed with triangle markers (else solid with circles): tells apart lines of one colour,
    /// and shows both when they coincide.
    pub dashed: bool,
}

/// Width of the whole chart and of its legend column, in pixels.
const WIDTH: u32 = 1000;
const LEGEND: u32 = 230;

/// Draw `l` into an SVG file.
pub fn draw(l: &Lines, path: &Path) -> Result<()> {
    draw_inner(l, path).map_err(|e| anyhow::anyhow!("{}: cannot draw chart: {e}", path.display()))
}

fn draw_inner(l: &Lines, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let n = l.categories.len().max(1);
    let nonzero = l.series.iter().flat_map(|s| s.values.iter()).copied().filter(|v| *v > 0);
    let (lo, hi) = nonzero.fold((u64::MAX, 0), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = if hi == 0 { (1.0, 10.0) } else { (lo as f64 / 2.0, hi as f64 * 2.0) };
    let root = SVGBackend::new(path, (WIDTH, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(WIDTH - LEGEND);
    let cats = l.categories.clone();
    // At most about one label per 90 pixels.
    let step = (n * 90).div_ceil((WIDTH - LEGEND) as usize).max(1);
    let x_label = move |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if i % step == 0 => cats.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(&l.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..n - 1).into_segmented(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&x_label)
        .y_desc(l.y_desc.as_str())
        .y_label_formatter(&|y: &f64| crate::plots::human(*y))
        .draw()?;
    for (si, line) in l.series.iter().enumerate() {
        let color = crate::plots::COLORS[line.color % crate::plots::COLORS.len()];
        let style = color.stroke_width(2);
        // Runs of non-zero values, each its own line.
        let mut run: Vec<(SegmentValue<usize>, f64)> = vec![];
        let mut runs = vec![];
        for (i, v) in line.values.iter().enumerate() {
            if *v == 0 {
                runs.push(std::mem::take(&mut run));
            } else {
                run.push((SegmentValue::CenterOf(i), *v as f64));
            }
        }
        runs.push(run);
        for r in runs.iter().filter(|r| !r.is_empty()) {
            if line.dashed {
                chart.draw_series(DashedLineSeries::new(r.clone(), 8, 5, style))?;
                chart.draw_series(r.iter().map(|p| TriangleMarker::new(p.clone(), 6, color.filled())))?;
            } else {
                chart.draw_series(LineSeries::new(r.clone(), style))?;
                chart.draw_series(r.iter().map(|p| Circle::new(p.clone(), 4, color.filled())))?;
            }
        }
        let y = 60 + 24 * si as i32;
        if line.dashed {
            legend.draw(&PathElement::new(vec![(8, y), (18, y)], style))?;
            legend.draw(&PathElement::new(vec![(30, y), (40, y)], style))?;
            legend.draw(&TriangleMarker::new((24, y), 6, color.filled()))?;
        } else {
            legend.draw(&PathElement::new(vec![(8, y), (40, y)], style))?;
            legend.draw(&Circle::new((24, y), 4, color.filled()))?;
        }
        legend.draw(&Text::new(line.name.clone(), (48, y - 7), ("sans-serif", 14)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_svg_with_every_label() {
        let dir = tempfile::tempdir().unwrap();
        let l = Lines {
            title: "T".into(),
            y_desc: "y".into(),
            categories: vec!["2021-03-01".into(), "2022-06-01".into(), "2025-12-01".into()],
            series: vec![
                Series { name: "mptcp (probe v1)".into(), values: vec![10, 0, 40], color: 0, dashed: false },
                Series { name: "echo (probe v1)".into(), values: vec![100, 90, 80], color: 1, dashed: true },
            ],
        };
        let p = dir.path().join("l.svg");
        draw(&l, &p).unwrap();
        crate::plots::tests::check_all(std::slice::from_ref(&p));
        let text = std::fs::read_to_string(&p).unwrap();
        for want in ["2021-03-01", "2025-12-01", "mptcp (probe v1)", "echo (probe v1)"] {
            assert!(text.contains(want), "{want} missing");
        }
        // All zero: still a chart.
        let l = Lines { series: vec![Series { values: vec![0, 0, 0], ..l.series[0].clone() }], ..l };
        draw(&l, &p).unwrap();
    }
}

//! The TTFT-against-concurrency chart (SVG, drawn with `plotters`) from a directory of JSON
//! reports: one line per label prefix (e.g. `pool`, `direct`, `spawn`), p50 TTFT in ms on a
//! log scale against concurrency.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

/// Reads every `*.json` report in `input` and draws `output`.
pub(crate) fn draw(input: &Path, output: &Path) -> Result<(), String> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let dir = std::fs::read_dir(input).map_err(|e| format!("{}: {e}", input.display()))?;
    for entry in dir.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: serde_json::Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .ok_or_else(|| format!("{}: not a report", path.display()))?;
        let label = v["label"].as_str().unwrap_or("run");
        let name = label.split('@').next().unwrap_or(label).to_owned();
        let c = v["concurrency"].as_f64().unwrap_or(1.0);
        let p50 = v["ttft_ms"]["p50"].as_f64().unwrap_or(0.0);
        if p50 > 0.0 {
            series.entry(name).or_default().push((c, p50));
        }
    }
    if series.is_empty() {
        return Err("no reports with a TTFT found".into());
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let max_c = series.values().flatten().map(|p| p.0).fold(1.0, f64::max);
    let max_t = series.values().flatten().map(|p| p.1).fold(1.0, f64::max);
    let min_t = series
        .values()
        .flatten()
        .map(|p| p.1)
        .fold(f64::MAX, f64::min);
    let root = SVGBackend::new(output, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "time to first token (p50) vs concurrency",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (1.0f64..max_c * 1.5).log_scale(),
            (min_t / 2.0..max_t * 2.0).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients")
        .y_desc("TTFT p50 (ms)")
        .draw()
        .map_err(|e| e.to_string())?;
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (name, points)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

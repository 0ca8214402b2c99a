//! The ALLMod comparison from a sweep's results: best area efficiency per architecture, the
//! hybrid/conventional ratio next to the published figure, and each architecture's
//! area-latency Pareto front.

use std::fmt::Write as _;

use dse::model::{ModelInfo, Value};
use dse::pareto;

/// Published best-case area-efficiency gains of ALLMod over conventional LUT reduction.
pub const PUBLISHED: [(u64, f64); 2] = [(128, 1.65), (8192, 3.0)];

/// One evaluated design as the comparison sees it.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Parameter values in model order.
    pub params: Vec<Value>,
    /// Metric values in model order.
    pub metrics: Vec<f64>,
}

fn param<'a>(info: &ModelInfo, e: &'a Evaluated, name: &str) -> Option<&'a Value> {
    info.param_index(name).and_then(|i| e.params.get(i))
}

fn metric(info: &ModelInfo, e: &Evaluated, name: &str) -> f64 {
    info.metric_index(name)
        .and_then(|i| e.metrics.get(i).copied())
        .unwrap_or(f64::NAN)
}

fn describe(info: &ModelInfo, e: &Evaluated) -> String {
    // Only the parameters the architecture uses.
    let names: &[&str] = match param(info, e, "arch") {
        Some(Value::Cat(a)) if a == "lut" => &["k", "arity", "regs_every", "table_mem"],
        Some(Value::Cat(a)) if a == "iter" => &["k_iter", "cycles", "table_mem"],
        _ => &[
            "k",
            "k_iter",
            "cycles",
            "lut_share",
            "fusion",
            "arity",
            "regs_every",
            "table_mem",
        ],
    };
    names
        .iter()
        .filter_map(|n| param(info, e, n).map(|v| format!("{n}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The comparison as Markdown, for the `modred.lut` designs in `points`.
pub fn compare(info: &ModelInfo, points: &[Evaluated]) -> String {
    let mut o = String::new();
    let bits: Option<u64> = points
        .first()
        .and_then(|e| param(info, e, "bits"))
        .and_then(|v| v.to_string().trim_matches('"').parse().ok());
    let archs = ["lut", "iter", "hybrid"];
    let of = |a: &str| -> Vec<&Evaluated> {
        points
            .iter()
            .filter(|e| matches!(param(info, e, "arch"), Some(Value::Cat(s)) if s == a))
            .collect()
    };
    let _ = writeln!(o, "| architecture | designs | best area efficiency (Mops/s/kLUT-eq) | area (LUT-eq) | II | latency (ns) | design |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---|");
    let mut best = Vec::new();
    for a in archs {
        let set = of(a);
        let b = set
            .iter()
            .copied()
            .max_by(|x, y| metric(info, x, "area_eff").total_cmp(&metric(info, y, "area_eff")));
        match b {
            Some(e) => {
                let _ = writeln!(
                    o,
                    "| {a} | {} | {:.3} | {:.0} | {} | {:.1} | {} |",
                    set.len(),
                    metric(info, e, "area_eff"),
                    metric(info, e, "area"),
                    metric(info, e, "ii_cycles"),
                    metric(info, e, "latency_ns"),
                    describe(info, e)
                );
                best.push(Some(metric(info, e, "area_eff")));
            }
            None => {
                let _ = writeln!(o, "| {a} | 0 | - | - | - | - | - |");
                best.push(None);
            }
        }
    }
    if let (Some(lut), Some(hyb)) = (best[0], best[2]) {
        let published = bits
            .and_then(|b| PUBLISHED.iter().find(|p| p.0 == b))
            .map(|p| format!("{:.2}x", p.1))
            .unwrap_or_else(|| "not published at this width".into());
        let _ = writeln!(
            o,
            "\nHybrid / conventional LUT, best area efficiency: **{:.2}x** (published: {published}).",
            hyb / lut
        );
    }
    for a in archs {
        let set = of(a);
        if set.is_empty() {
            continue;
        }
        let pts: Vec<[f64; 2]> = set
            .iter()
            .map(|e| [metric(info, e, "area"), metric(info, e, "latency_ns")])
            .collect();
        let mut front = pareto::nondominated(&pts);
        front.sort_by(|&x, &y| pts[x][0].total_cmp(&pts[y][0]));
        front.dedup_by(|x, y| pts[*x] == pts[*y]);
        let _ = writeln!(
            o,
            "\nArea-latency Pareto front, {a} ({} points):\n",
            front.len()
        );
        let _ = writeln!(
            o,
            "| area (LUT-eq) | latency (ns) | II | area eff. | design |"
        );
        let _ = writeln!(o, "|---:|---:|---:|---:|---|");
        for &i in front.iter().take(12) {
            let e = set[i];
            let _ = writeln!(
                o,
                "| {:.0} | {:.1} | {} | {:.3} | {} |",
                pts[i][0],
                pts[i][1],
                metric(info, e, "ii_cycles"),
                metric(info, e, "area_eff"),
                describe(info, e)
            );
        }
        if front.len() > 12 {
            let _ = writeln!(o, "| ... {} more | | | | |", front.len() - 12);
        }
    }
    o
}

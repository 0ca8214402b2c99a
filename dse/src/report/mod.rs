//! The study report: a self-contained `report.html` (plots inlined as SVG, no network needed),
//! every plot also as SVG and PNG under `plots/`, and `summary.json` with the same figures in
//! machine-readable form.

pub mod plots;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use serde::Serialize;

use crate::config::{Strategy, Study};
use crate::hypervolume::{default_reference, hypervolume};
use crate::journal::{GenRecord, Header};
use crate::pareto::knee;
use crate::results::Analysis;
use plots::{Figure, Layer};

/// Report problems.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
}

/// Most non-front points drawn per plot (a deterministic stride sample beyond).
pub const MAX_PLOTTED: usize = 20_000;
/// Most front rows listed in the HTML table.
pub const MAX_FRONT_ROWS: usize = 500;

/// The figures of a report, also written as `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Study name.
    pub study: String,
    /// Model and version.
    pub model: String,
    /// Strategy.
    pub strategy: String,
    /// Config hash.
    pub config_hash: String,
    /// Seed.
    pub seed: u64,
    /// Points stored.
    pub points: usize,
    /// Failed points.
    pub failed: usize,
    /// Feasible successful points.
    pub feasible: usize,
    /// Objective names with direction (`min f1`, `max acc`).
    pub objectives: Vec<String>,
    /// Reference point in metric units (the stated default: worst observed + 10% of the range).
    pub reference: Vec<f64>,
    /// Hypervolume of the front with respect to `reference`.
    pub hypervolume: f64,
    /// Plan indices of the front's points.
    pub front: Vec<u64>,
    /// Per objective, the plan index of the best feasible point.
    pub best: Vec<u64>,
    /// Plan index of the knee point.
    pub knee: Option<u64>,
    /// Hypervolume of each generation's population (evolutionary strategies).
    pub hypervolume_per_generation: Vec<f64>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Computes the report's figures.
pub fn summarize(study: &Study, a: &Analysis, gens: &[GenRecord]) -> Summary {
    let info = study.model.info();
    let feasible: Vec<usize> = (0..a.records.len())
        .filter(|&i| a.objectives[i].is_some() && a.violation[i] <= 0.0)
        .collect();
    let fvals: Vec<Vec<f64>> = feasible
        .iter()
        .filter_map(|&i| a.objectives[i].clone())
        .collect();
    let refpt = default_reference(&fvals);
    let front = a.front();
    let fpts: Vec<&[f64]> = front
        .iter()
        .filter_map(|&i| a.objectives[i].as_deref())
        .collect();
    let hv = if refpt.is_empty() {
        0.0
    } else {
        hypervolume(&fpts, &refpt)
    };
    let best: Vec<u64> = (0..study.objectives.len())
        .filter_map(|k| {
            feasible
                .iter()
                .min_by(|&&x, &&y| {
                    a.objectives[x]
                        .as_ref()
                        .map(|v| v[k])
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(
                            &a.objectives[y]
                                .as_ref()
                                .map(|v| v[k])
                                .unwrap_or(f64::INFINITY),
                        )
                })
                .map(|&i| a.records[i].i)
        })
        .collect();
    let knee_idx = knee(
        &a.objectives
            .iter()
            .map(|o| o.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        &front,
    )
    .map(|i| a.records[i].i);
    let pos = a.positions();
    let mut gens_sorted: Vec<&GenRecord> = gens.iter().collect();
    gens_sorted.sort_by_key(|g| g.g);
    let hv_gen: Vec<f64> = if refpt.is_empty() {
        Vec::new()
    } else {
        gens_sorted
            .iter()
            .map(|g| {
                let pts: Vec<&[f64]> = g
                    .pop
                    .iter()
                    .filter_map(|i| pos.get(i))
                    .filter(|&&k| a.violation[k] <= 0.0)
                    .filter_map(|&k| a.objectives[k].as_deref())
                    .collect();
                hypervolume(&pts, &refpt)
            })
            .collect()
    };
    let mut warnings = study.warnings.clone();
    if feasible.is_empty() && !a.records.is_empty() {
        warnings.push(if study.constraints.is_empty() {
            "no point evaluated successfully".to_string()
        } else {
            format!(
                "no evaluated point meets the constraints ({}): there is no feasible front",
                study
                    .constraints
                    .iter()
                    .map(|c| c.text.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    }
    let to_units = |v: &[f64]| -> Vec<f64> {
        study
            .objectives
            .iter()
            .zip(v)
            .map(|(o, x)| if o.maximize { -x } else { *x })
            .collect()
    };
    Summary {
        study: study.name.clone(),
        model: format!("{} v{}", info.name, info.version),
        strategy: study.strategy.name().to_string(),
        config_hash: study.config_hash.clone(),
        seed: study.seed,
        points: a.records.len(),
        failed: a.records.iter().filter(|r| r.m.is_none()).count(),
        feasible: feasible.len(),
        objectives: study
            .objectives
            .iter()
            .map(|o| format!("{} {}", if o.maximize { "max" } else { "min" }, o.name))
            .collect(),
        reference: to_units(&refpt),
        hypervolume: hv,
        front: front.iter().map(|&i| a.records[i].i).collect(),
        best,
        knee: knee_idx,
        hypervolume_per_generation: hv_gen,
        warnings,
    }
}

const GREY: RGBColor = RGBColor(150, 150, 150);
const RED: RGBColor = RGBColor(214, 39, 40);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);

fn sample(idx: Vec<usize>) -> Vec<usize> {
    if idx.len() <= MAX_PLOTTED {
        return idx;
    }
    let step = idx.len() as f64 / MAX_PLOTTED as f64;
    (0..MAX_PLOTTED)
        .map(|k| idx[(k as f64 * step) as usize])
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt_num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        let s = format!("{x:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{x:.4e}")
    }
}

/// Writes `report.html`, `summary.json` and `plots/*.{svg,png}` into `dir`.
pub fn write(
    study: &Study,
    header: &Header,
    a: &Analysis,
    gens: &[GenRecord],
    dir: &Path,
) -> Result<Summary, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io {
            path: path.clone(),
            source,
        }
    };
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(io(&plots_dir))?;
    let s = summarize(study, a, gens);
    let info = study.model.info();
    let units = |i: usize| -> Vec<f64> {
        study
            .objectives
            .iter()
            .map(|o| a.records[i].m.as_ref().map_or(f64::NAN, |m| m[o.metric]))
            .collect()
    };
    let front = a.front();
    let mut front_sorted = front.clone();
    front_sorted.sort_by(|&x, &y| units(x)[0].total_cmp(&units(y)[0]));
    let ok: Vec<usize> = (0..a.records.len())
        .filter(|&i| a.records[i].m.is_some())
        .collect();
    let feas_rest = sample(
        ok.iter()
            .copied()
            .filter(|&i| a.violation[i] <= 0.0 && !a.on_front[i])
            .collect(),
    );
    let infeas = sample(
        ok.iter()
            .copied()
            .filter(|&i| a.violation[i] > 0.0)
            .collect(),
    );
    let names: Vec<String> = study
        .objectives
        .iter()
        .map(|o| label(study, o.metric))
        .collect();
    let mut svgs: Vec<(String, String)> = Vec::new();
    let mut figure =
        |name: &str, title: &str, fig: Figure, size: (u32, u32)| -> Result<(), ReportError> {
            let svg = plots::render(&fig, size, &plots_dir.join(format!("{name}.png")))
                .map_err(ReportError::Plot)?;
            let path = plots_dir.join(format!("{name}.svg"));
            std::fs::write(&path, &svg).map_err(io(&path))?;
            svgs.push((title.to_string(), svg));
            Ok(())
        };
    let m = study.objectives.len();
    if m == 2 {
        let pts = |v: &[usize]| {
            v.iter()
                .map(|&i| (units(i)[0], units(i)[1]))
                .collect::<Vec<_>>()
        };
        let layers = vec![
            Layer {
                label: "feasible",
                points: pts(&feas_rest),
                color: GREY,
                size: 2,
                line: false,
            },
            Layer {
                label: "infeasible",
                points: pts(&infeas),
                color: RED,
                size: 2,
                line: false,
            },
            Layer {
                label: "Pareto front",
                points: pts(&front_sorted),
                color: BLUE,
                size: 3,
                line: true,
            },
        ];
        let fig = Figure::Scatter {
            title: format!("{}: Pareto front", study.name),
            labels: (names[0].clone(), names[1].clone()),
            layers,
            legend_low: false,
        };
        figure("pareto", "Pareto front", fig, (900, 650))?;
    } else if m >= 3 {
        let vs = |v: &[usize]| v.iter().map(|&i| units(i)).collect::<Vec<_>>();
        let layers = vec![
            ("feasible", GREY, vs(&feas_rest), 1),
            ("infeasible", RED, vs(&infeas), 1),
            ("Pareto front", BLUE, vs(&front_sorted), 2),
        ];
        let side = (300 * m as u32).min(1500);
        figure(
            "scatter_matrix",
            "Pairwise scatter matrix of the objectives",
            Figure::Matrix {
                title: format!("{}: objectives pairwise (blue: Pareto front)", study.name),
                names: names.clone(),
                layers,
            },
            (side, side + 36),
        )?;
    }
    if m >= 2 && !front.is_empty() {
        let vs = |v: &[usize]| v.iter().map(|&i| units(i)).collect::<Vec<_>>();
        let rest: Vec<usize> = feas_rest.iter().copied().take(2000).collect();
        let fig = Figure::Parallel {
            title: format!(
                "{}: parallel coordinates (blue: front, grey: other feasible)",
                study.name
            ),
            names: names.clone(),
            layers: vec![(GREY, 0.15, vs(&rest)), (BLUE, 0.6, vs(&front_sorted))],
        };
        figure(
            "parallel",
            "Parallel coordinates",
            fig,
            (160 * m as u32 + 300, 500),
        )?;
    }
    // The model's own timeline of the knee point (else the best point of the first objective).
    if let Some(k) = s.knee.or(s.best.first().copied()) {
        if let Some(i) = a.positions().get(&k) {
            if let Some(t) = study.model.timeline(&a.params[*i]) {
                let height = (28 * t.rows.len() as u32 + 140).clamp(300, 1400);
                figure(
                    "timeline",
                    &format!(
                        "Timeline of the {} point",
                        if s.knee.is_some() { "knee" } else { "best" }
                    ),
                    Figure::Gantt(&t),
                    (1100, height),
                )?;
            }
        }
    }
    if !s.hypervolume_per_generation.is_empty() {
        let pts: Vec<(f64, f64)> = s
            .hypervolume_per_generation
            .iter()
            .enumerate()
            .map(|(g, &h)| (g as f64, h))
            .collect();
        let fig = Figure::Scatter {
            title: format!("{}: hypervolume per generation", study.name),
            labels: ("generation".into(), "hypervolume".into()),
            layers: vec![Layer {
                label: "population hypervolume",
                points: pts,
                color: ORANGE,
                size: 2,
                line: true,
            }],
            legend_low: true,
        };
        figure("hypervolume", "Hypervolume per generation", fig, (900, 450))?;
    }

    // HTML.
    let mut h = String::new();
    let _ = write!(h, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — archsweep report</title><style>{}</style></head><body>", esc(&study.name), CSS);
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"sub\">archsweep {} report · model <b>{}</b> v{} — {}</p>",
        esc(&study.name),
        env!("CARGO_PKG_VERSION"),
        esc(&info.name),
        esc(&info.version),
        esc(&info.summary)
    );
    for w in &s.warnings {
        let _ = write!(h, "<p class=\"warn\">warning: {}</p>", esc(w));
    }
    h.push_str("<h2>Study</h2><table class=\"kv\">");
    let mut kv = |k: &str, v: String| {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    kv("strategy", esc(&strategy_text(&study.strategy)));
    kv("seed", study.seed.to_string());
    kv("config hash", format!("<code>{}</code>", study.config_hash));
    kv(
        "free parameters",
        esc(&study
            .space
            .dims
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
    );
    kv("objectives", esc(&s.objectives.join(", ")));
    kv(
        "constraints",
        if study.constraints.is_empty() {
            "none".into()
        } else {
            esc(&study
                .constraints
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("; "))
        },
    );
    kv(
        "points",
        format!(
            "{} evaluated, {} failed, {} feasible",
            s.points, s.failed, s.feasible
        ),
    );
    kv(
        "shard",
        header
            .shard
            .map_or("whole study".into(), |[i, n]| format!("{i}/{n}")),
    );
    kv("Pareto front", format!("{} points", front.len()));
    kv(
        "hypervolume",
        if s.reference.is_empty() {
            "n/a (no feasible point)".into()
        } else {
            format!("{} w.r.t. reference point ({}) = worst observed + 10% of the range; maximised objectives enter negated", fmt_num(s.hypervolume), s.reference.iter().map(|x| fmt_num(*x)).collect::<Vec<_>>().join(", "))
        },
    );
    h.push_str("</table>");

    let pos = a.positions();
    let free: Vec<usize> = study.space.dims.iter().map(|d| d.param).collect();
    let row_table = |h: &mut String, title: &str, rows: &[(String, usize)]| {
        let _ = write!(
            h,
            "<h2>{title}</h2><div class=\"scroll\"><table><tr><th></th><th>index</th>"
        );
        for mt in &info.metrics {
            let _ = write!(h, "<th>{}</th>", esc(&label_metric(mt)));
        }
        for &p in &free {
            let _ = write!(h, "<th>{}</th>", esc(&info.params[p].name));
        }
        h.push_str("</tr>");
        for (tag, i) in rows {
            let r = &a.records[*i];
            let _ = write!(h, "<tr><td>{}</td><td>{}</td>", esc(tag), r.i);
            for k in 0..info.metrics.len() {
                let _ = write!(
                    h,
                    "<td>{}</td>",
                    r.m.as_ref().map_or("—".to_string(), |m| fmt_num(m[k]))
                );
            }
            for &p in &free {
                let v = &a.params[*i][p];
                let _ = write!(
                    h,
                    "<td>{}</td>",
                    esc(&match v {
                        crate::model::Value::Real(x) => fmt_num(*x),
                        other => other.to_string(),
                    })
                );
            }
            h.push_str("</tr>");
        }
        h.push_str("</table></div>");
    };
    let mut picks: Vec<(String, usize)> = Vec::new();
    for (o, b) in study.objectives.iter().zip(&s.best) {
        picks.push((format!("best {}", o.name), pos[b]));
    }
    if let Some(k) = s.knee {
        picks.push(("knee".into(), pos[&k]));
    }
    if !picks.is_empty() {
        row_table(&mut h, "Best point per objective, and the knee", &picks);
        h.push_str("<p class=\"note\">Knee: the front point with the smallest sum of min-max normalised objectives, i.e. farthest below the hyperplane through the front's extremes.</p>");
    }
    let shown: Vec<(String, usize)> = front_sorted
        .iter()
        .take(MAX_FRONT_ROWS)
        .map(|&i| (String::new(), i))
        .collect();
    row_table(
        &mut h,
        &format!(
            "Pareto front ({} points{}, sorted by {})",
            front.len(),
            if front.len() > MAX_FRONT_ROWS {
                format!(", first {MAX_FRONT_ROWS} shown; all in points.csv")
            } else {
                String::new()
            },
            names.first().map_or("", |n| n.as_str())
        ),
        &shown,
    );
    for (title, svg) in &svgs {
        let _ = write!(h, "<h2>{}</h2><div class=\"fig\">{}</div>", esc(title), svg);
    }
    if !s.hypervolume_per_generation.is_empty() {
        let hv = &s.hypervolume_per_generation;
        let _ = write!(h, "<p class=\"note\">Hypervolume of the population (feasible members), same reference point: generation 0: {}, last ({}): {}.</p>", fmt_num(hv[0]), hv.len() - 1, fmt_num(hv[hv.len() - 1]));
    }
    if s.failed > 0 {
        let mut errs: HashMap<&str, usize> = HashMap::new();
        for r in &a.records {
            if let Some(e) = &r.e {
                *errs.entry(e.as_str()).or_default() += 1;
            }
        }
        let mut errs: Vec<_> = errs.into_iter().collect();
        errs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        h.push_str("<h2>Failed points</h2><table><tr><th>count</th><th>error</th></tr>");
        for (e, c) in errs.iter().take(20) {
            let _ = write!(h, "<tr><td>{c}</td><td>{}</td></tr>", esc(e));
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<h2>Files</h2><p>points.parquet and points.csv (every point), journal.jsonl (the append-only record), study.toml (this study's config), summary.json (these figures), plots/ (SVG and PNG).</p><h2>Config</h2><pre>{}</pre></body></html>", esc(&study.source));
    let path = dir.join("report.html");
    let tmp = dir.join(".report.html.tmp");
    std::fs::write(&tmp, h).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    let json = serde_json::to_string_pretty(&s).unwrap_or_default();
    let path = dir.join("summary.json");
    std::fs::write(&path, json).map_err(io(&path))?;
    Ok(s)
}

fn label_metric(m: &crate::model::MetricSpec) -> String {
    if m.unit.is_empty() {
        m.name.clone()
    } else {
        format!("{} [{}]", m.name, m.unit)
    }
}

fn label(study: &Study, metric: usize) -> String {
    label_metric(&study.model.info().metrics[metric])
}

/// The strategy with its settings, as one line.
pub fn strategy_text(s: &Strategy) -> String {
    match s {
        Strategy::Grid => "grid".into(),
        Strategy::Random { budget } => format!("random, {budget} points"),
        Strategy::Lhs { budget } => format!("Latin hypercube, {budget} points"),
        Strategy::Sobol { budget } => format!("Sobol (Owen-scrambled), {budget} points"),
        Strategy::Nsga2(e) | Strategy::Nsga3(e) | Strategy::SmsEmoa(e) => format!(
            "{}: population {}, {} generations, SBX p={} eta={}, polynomial mutation p={:.4} eta={}{}",
            s.name(),
            e.population,
            e.generations,
            e.crossover_prob,
            e.crossover_eta,
            e.mutation_prob,
            e.mutation_eta,
            match s {
                Strategy::Nsga3(_) => format!(", {} reference-direction divisions", e.divisions),
                Strategy::Nsga2(_) if e.pruning => ", pruning crowding distance".to_string(),
                _ => String::new(),
            }
        ),
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}h1{margin-bottom:0}.sub{color:#666;margin-top:.3em}table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f4f4f4}.kv th{text-align:left}.kv td{text-align:left}.scroll{max-height:480px;overflow:auto}.warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em}.note{color:#555;font-size:13px}.fig svg{max-width:100%;height:auto}pre{background:#f7f7f7;padding:1em;overflow:auto}";

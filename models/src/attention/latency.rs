//! Analytical GPU latency model of the attention and decode kernels, calibrated on the committed
//! measurements (`results/gpu/h100/ours.csv`).
//!
//! - Masked attention (block kernel): the stage-1 model of `gpu::search` (visited tiles,
//!   tensor-core FLOPs including the masked-out work of partial tiles, exponentials, L2 traffic,
//!   wave/tail effects) with datasheet ceilings gives a raw time X; the calibrated time is
//!   `a X + c P + b` with P the element-masking work of partial tiles, one (a, c, b) per block
//!   size (4 or 8 warps) and per wgmma variant. The row-wise kernel likewise.
//! - fp16 decode: `launch + bytes / bandwidth`.
//! - PQ decode: `launch + keys (c_key + c_sub M) + c_fill blocks M`, bounded below by its bytes
//!   over the fp16 decode bandwidth: per-key shared-memory lookups, and per block (one per
//!   sequence and query head) the fill of the M score tables and the codebook.
//!
//! `archsweep gpu calibrate --write` refits the coefficients and the stated errors; a test
//! checks that every committed measurement is predicted within them.

use gpu::attention::{AttnProblem, AttnVariant};
use gpu::bench::BenchConfig;
use gpu::mask::{MaskSpec, TileLists};
use gpu::results::Measured;
use gpu::search::{predict_block, predict_rows, Ceilings};
use gpu::Dtype;
use std::fmt::Write as _;

/// Calibrated coefficients and the errors they are stated with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyModel {
    /// Block kernel with 4 warps: time = a X + c P + b (X: raw stage-1 prediction, µs; P:
    /// masked tile elements per multiprocessor, thousands), stored as [a, c, b].
    pub block4: [f64; 3],
    /// Block kernel with 8 warps.
    pub block8: [f64; 3],
    /// Hopper wgmma kernel, one (a, b) per variant label (its tile shape changes the pipeline
    /// more than the raw model captures); variants without measurements are absent.
    #[serde(default)]
    pub wgmma: std::collections::BTreeMap<String, [f64; 3]>,
    /// Row-wise kernel.
    pub rows: [f64; 3],
    /// fp16 decode launch overhead (both launches), µs.
    pub decode_launch_us: f64,
    /// fp16 decode effective bandwidth, GB/s.
    pub decode_gbs: f64,
    /// PQ decode: launch µs, ns per key, ns per key and subspace, ns per block and subspace.
    pub pq: [f64; 4],
    /// Largest relative error over the committed attention measurements.
    pub max_err_attention: f64,
    /// Largest relative error over the committed decode measurements (fp16 and PQ).
    pub max_err_decode: f64,
}

/// The committed H100 calibration (`models/data/gpu_latency_h100.toml`).
pub fn committed() -> LatencyModel {
    parse(
        include_str!("../../data/gpu_latency_h100.toml"),
        "models/data/gpu_latency_h100.toml",
    )
    .expect("committed GPU latency calibration parses")
}

/// A calibration in the format `archsweep gpu calibrate --write` writes (`path` names it in
/// errors), e.g. the one kept beside a run measured with an earlier kernel build.
pub fn parse(text: &str, path: &str) -> Result<LatencyModel, String> {
    toml::from_str(text).map_err(|e| format!("{path}: {e}"))
}

/// Raw (uncalibrated) stage-1 prediction of a variant for a mask, µs.
///
/// Returns the raw time and the element-masking work: masked tile elements per multiprocessor,
/// in thousands (partial tiles evaluate the column ranges element by element).
pub fn raw_attention_us(p: &AttnProblem, mask: &MaskSpec, v: AttnVariant) -> Option<(f64, f64)> {
    let c = Ceilings::h100();
    match v {
        AttnVariant::Block { .. } | AttnVariant::Wgmma { .. } => {
            let (bm, bn) = v.tile()?;
            let lists = TileLists::build(mask, p.batch, p.n_q, p.n_kv, bm, bn).ok()?;
            let pred = predict_block(p, v, &lists, &c);
            Some((
                pred.time_us,
                pred.partial as f64 * (bm * bn) as f64 / c.sms / 1e3,
            ))
        }
        AttnVariant::Rows => {
            let per_head = gpu::mask::RowLists::build(mask, p.batch, p.n_q, p.n_kv)
                .ok()?
                .idx
                .len() as u64
                * if mask.batched() { 1 } else { p.batch as u64 };
            Some((predict_rows(p, per_head, &c).time_us, 0.0))
        }
    }
}

impl LatencyModel {
    fn coeff(&self, v: AttnVariant) -> Option<[f64; 3]> {
        match v {
            AttnVariant::Block { warps: 4, .. } => Some(self.block4),
            AttnVariant::Block { .. } => Some(self.block8),
            AttnVariant::Wgmma { .. } => self.wgmma.get(&v.label()).copied(),
            AttnVariant::Rows => Some(self.rows),
        }
    }
    /// Calibrated time of a variant, µs (`None` for variants without committed measurements).
    pub fn attention_us(&self, p: &AttnProblem, mask: &MaskSpec, v: AttnVariant) -> Option<f64> {
        let [a, c, b] = self.coeff(v)?;
        raw_attention_us(p, mask, v).map(|(x, partial)| a * x + c * partial + b)
    }
    /// The fastest calibrated variant among `candidates` for a mask: (time µs, variant).
    pub fn best_attention_us(
        &self,
        p: &AttnProblem,
        mask: &MaskSpec,
        candidates: &[AttnVariant],
    ) -> Option<(f64, AttnVariant)> {
        candidates
            .iter()
            .filter_map(|&v| self.attention_us(p, mask, v).map(|t| (t, v)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }
    /// Every variant the model can auto-select from at head dimension `d`.
    pub fn auto_candidates(d: usize) -> Vec<AttnVariant> {
        AttnVariant::block_candidates(d)
            .into_iter()
            .chain(AttnVariant::wgmma_candidates())
            .collect()
    }
    /// fp16 split-KV decode time, µs, for `bytes` of required traffic.
    pub fn decode_us(&self, bytes: f64) -> f64 {
        self.decode_launch_us + bytes / (self.decode_gbs * 1e3)
    }
    /// PQ decode time, µs: `keys` cached tokens over all (batch, KV head), `m` subspaces,
    /// `blocks` (batch x query heads) that each fill their tables, `bytes` of required traffic.
    pub fn pq_us(&self, keys: f64, m: f64, blocks: f64, bytes: f64) -> f64 {
        let [l, ck, cm, cf] = self.pq;
        (l + (keys * (ck + cm * m) + cf * blocks * m) * 1e-3).max(self.decode_us(bytes))
    }
    /// What an fp16 window of `window_bytes` (its keys and values) adds to a PQ decode step: the
    /// split kernel's traffic, its launch overlapping the PQ kernel's.
    pub fn pq_window_us(&self, window_bytes: f64) -> f64 {
        if window_bytes > 0.0 {
            self.decode_us(window_bytes) - self.decode_launch_us
        } else {
            0.0
        }
    }
}

/// A committed measurement paired with what the model needs to predict it.
pub struct CalibrationPoint {
    /// The measurement.
    pub row: Measured,
    /// For attention rows: the problem, mask and variant.
    pub attention: Option<(AttnProblem, MaskSpec, AttnVariant)>,
}

/// Pairs measured rows with the masks of the bench file they were measured from (matched by
/// case name). Copy rows are dropped; every other row must match.
pub fn points(rows: &[Measured], bench: &BenchConfig) -> Result<Vec<CalibrationPoint>, String> {
    let mut out = Vec::new();
    for r in rows {
        match r.kind.as_str() {
            "copy" => continue,
            "attention" => {
                let case = bench
                    .attention
                    .iter()
                    .find(|c| c.name == r.case)
                    .ok_or_else(|| {
                        format!(
                            "measured attention case {:?} is not in the bench file",
                            r.case
                        )
                    })?;
                let [batch, heads, kv_heads, n_q, n_kv, head_dim] = r.shape;
                let dtype = if r.dtype == "bf16" {
                    Dtype::Bf16
                } else {
                    Dtype::F16
                };
                let p = AttnProblem {
                    batch,
                    heads,
                    kv_heads,
                    n_q,
                    n_kv,
                    head_dim,
                    dtype,
                };
                let v = AttnVariant::parse(&r.variant).map_err(|e| e.to_string())?;
                out.push(CalibrationPoint {
                    row: r.clone(),
                    attention: Some((p, case.mask.clone(), v)),
                });
            }
            _ => out.push(CalibrationPoint {
                row: r.clone(),
                attention: None,
            }),
        }
    }
    Ok(out)
}

/// Least squares of `y ≈ A c` in relative terms (each row weighted by 1/y): normal equations
/// solved by Gaussian elimination with partial pivoting (the systems are 2x2 or 3x3).
pub(crate) fn lstsq(a: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let n = a[0].len();
    let mut m = vec![vec![0.0; n + 1]; n];
    for (row, &yy) in a.iter().zip(y) {
        let w = 1.0 / (yy * yy);
        for i in 0..n {
            m[i][n] += w * row[i] * yy;
            for j in 0..n {
                m[i][j] += w * row[i] * row[j];
            }
        }
    }
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .unwrap_or(col);
        m.swap(col, piv);
        if m[col][col].abs() < 1e-300 {
            return vec![0.0; n];
        }
        for r in 0..n {
            if r != col {
                let f = m[r][col] / m[col][col];
                let pivot = m[col].clone();
                for (x, p) in m[r].iter_mut().zip(&pivot).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| m[i][n] / m[i][i]).collect()
}

/// Whether a point is inside the model's stated scope: every attention variant and fp16 split
/// count, and the fastest configuration (split count, block size) of each PQ case — the model
/// predicts what the tuned kernel achieves, not every launch configuration.
pub fn in_scope(pt: &CalibrationPoint) -> bool {
    pt.row.kind != "decode_pq" || pt.row.selected
}

/// Per-row (key, measured µs, predicted µs) over the points in scope.
pub fn errors(m: &LatencyModel, pts: &[CalibrationPoint]) -> Vec<(String, f64, f64)> {
    pts.iter()
        .filter(|pt| in_scope(pt))
        .filter_map(|pt| {
            let r = &pt.row;
            let pred = predict(m, pt)?;
            Some((r.key(), r.median_us, pred))
        })
        .collect()
}

/// Subspaces M of a PQ decode row (its cache label reads "pq-m<M>-w<window>").
fn pq_subspaces(r: &Measured) -> Option<f64> {
    r.mask.strip_prefix("pq-m")?.split('-').next()?.parse().ok()
}

/// Bytes of the fp16 window of a PQ decode row (keys and values of its last tokens).
fn pq_window_bytes(r: &Measured) -> Option<f64> {
    let w: f64 = r.mask.rsplit_once("-w")?.1.parse().ok()?;
    let [batch, _, kv_heads, _, _, head_dim] = r.shape;
    Some(2.0 * (batch * kv_heads * head_dim) as f64 * w * 2.0)
}

/// The model's prediction for a calibration point, µs.
pub fn predict(m: &LatencyModel, pt: &CalibrationPoint) -> Option<f64> {
    let r = &pt.row;
    let [batch, heads, kv_heads, _, n_kv, _head_dim] = r.shape;
    let bytes = r.gbytes_per_s * r.median_us * 1e3;
    match r.kind.as_str() {
        "attention" => {
            let (p, mask, v) = pt.attention.as_ref()?;
            m.attention_us(p, mask, *v)
        }
        "decode_fp16" => Some(m.decode_us(bytes)),
        "decode_pq" => Some(
            m.pq_us(
                (batch * kv_heads * n_kv) as f64,
                pq_subspaces(r)?,
                (batch * heads) as f64,
                bytes,
            ) + m.pq_window_us(pq_window_bytes(r)?),
        ),
        _ => None,
    }
}

/// Fits every coefficient to the selected (fastest) measurement of each case and to every
/// measured variant of the attention kernels; returns the model with its stated errors (the
/// largest relative error per family, rounded up to the next percent).
pub fn fit(pts: &[CalibrationPoint]) -> LatencyModel {
    let mut m = LatencyModel {
        block4: [1.0, 0.0, 0.0],
        block8: [1.0, 0.0, 0.0],
        wgmma: Default::default(),
        rows: [1.0, 0.0, 0.0],
        decode_launch_us: 5.0,
        decode_gbs: 3000.0,
        pq: [5.0, 0.0, 0.0, 0.0],
        max_err_attention: 0.0,
        max_err_decode: 0.0,
    };
    // time = a X + c (masked elements per SM) + b, by least squares; without partial tiles in
    // the data, c = 0.
    let fit_attn = |sel: &dyn Fn(AttnVariant) -> bool| -> Option<[f64; 3]> {
        let (mut a, mut y) = (Vec::new(), Vec::new());
        for pt in pts {
            if let Some((p, mask, v)) = &pt.attention {
                if sel(*v) {
                    let (x, partial) = raw_attention_us(p, mask, *v)?;
                    a.push(vec![x, partial, 1.0]);
                    y.push(pt.row.median_us);
                }
            }
        }
        let with_partial = a.iter().filter(|r| r[1] > 0.0).count() >= 2;
        match y.len() {
            0 => None,
            1 => Some([y[0] / a[0][0], 0.0, 0.0]),
            2 => {
                let two: Vec<Vec<f64>> = a.iter().map(|r| vec![r[0], r[2]]).collect();
                let c = lstsq(&two, &y);
                Some([c[0], 0.0, c[1]])
            }
            _ if !with_partial => {
                let two: Vec<Vec<f64>> = a.iter().map(|r| vec![r[0], r[2]]).collect();
                let c = lstsq(&two, &y);
                Some([c[0], 0.0, c[1]])
            }
            _ => {
                let c = lstsq(&a, &y);
                Some([c[0], c[1], c[2]])
            }
        }
    };
    if let Some(c) = fit_attn(&|v| matches!(v, AttnVariant::Block { warps: 4, .. })) {
        m.block4 = c;
    }
    if let Some(c) = fit_attn(&|v| matches!(v, AttnVariant::Block { warps: 8, .. })) {
        m.block8 = c;
    }
    for v in AttnVariant::wgmma_candidates() {
        if let Some(c) = fit_attn(&|x| x == v) {
            m.wgmma.insert(v.label(), c);
        }
    }
    if let Some(c) = fit_attn(&|v| v == AttnVariant::Rows) {
        m.rows = c;
    }
    // fp16 decode: t = launch + bytes / bw, over every split count.
    let (mut a, mut y) = (Vec::new(), Vec::new());
    for pt in pts.iter().filter(|p| p.row.kind == "decode_fp16") {
        a.push(vec![1.0, pt.row.gbytes_per_s * pt.row.median_us * 1e3]);
        y.push(pt.row.median_us);
    }
    if y.len() >= 2 {
        let c = lstsq(&a, &y);
        m.decode_launch_us = c[0];
        m.decode_gbs = 1.0 / (c[1] * 1e3);
    }
    // PQ decode: the selected (fastest) configuration of each (m, window, len).
    let (mut a, mut y) = (Vec::new(), Vec::new());
    for pt in pts
        .iter()
        .filter(|p| p.row.kind == "decode_pq" && p.row.selected)
    {
        let r = &pt.row;
        let keys = (r.shape[0] * r.shape[2] * r.shape[4]) as f64;
        let blocks = (r.shape[0] * r.shape[1]) as f64;
        let (Some(mm), Some(wb)) = (pq_subspaces(r), pq_window_bytes(r)) else {
            continue;
        };
        a.push(vec![1.0, keys * 1e-3, keys * mm * 1e-3, blocks * mm * 1e-3]);
        y.push(r.median_us - m.pq_window_us(wb));
    }
    if y.len() >= 4 {
        let c = lstsq(&a, &y);
        m.pq = [c[0], c[1], c[2], c[3]];
    }
    let round_up = |e: f64| (e * 100.0).ceil() / 100.0;
    let errs = |kind: &str, selected_only: bool| -> f64 {
        pts.iter()
            .filter(|p| p.row.kind.starts_with(kind) && (!selected_only || in_scope(p)))
            .filter_map(|p| predict(&m, p).map(|t| (t - p.row.median_us).abs() / p.row.median_us))
            .fold(0.0, f64::max)
    };
    let (ea, ed) = (errs("attention", false), errs("decode", true));
    m.max_err_attention = round_up(ea);
    m.max_err_decode = round_up(ed);
    m
}

/// The calibration file's text (TOML with a header naming the data and the errors).
pub fn to_toml(m: &LatencyModel, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# GPU kernel latency model (models/src/attention/latency.rs), fitted by"
    );
    let _ = writeln!(s, "# `archsweep gpu calibrate --write` on {source}.");
    let _ = writeln!(
        s,
        "# Stated errors: attention <= {:.0}%, decode (fp16, fastest PQ configurations) <= {:.0}%.",
        m.max_err_attention * 100.0,
        m.max_err_decode * 100.0
    );
    s.push_str(&toml::to_string(m).expect("serialisable"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_points() -> Vec<CalibrationPoint> {
        let rows = gpu::results::read(
            include_str!("../../../results/gpu/h100/ours.csv"),
            "results/gpu/h100/ours.csv",
        )
        .unwrap();
        let bench = BenchConfig::parse(
            include_str!("../../../configs/gpu/bench_h100.toml"),
            "configs/gpu/bench_h100.toml",
        )
        .unwrap();
        points(&rows, &bench).unwrap()
    }

    /// CI's check of the GPU model: every committed H100 measurement in scope is predicted within
    /// the committed calibration's stated error.
    #[test]
    fn model_predicts_every_committed_measurement_within_its_stated_error() {
        let m = committed();
        let pts = committed_points();
        let mut checked = 0;
        for pt in pts.iter().filter(|p| in_scope(p)) {
            let pred = predict(&m, pt).expect("prediction");
            let err = (pred - pt.row.median_us).abs() / pt.row.median_us;
            let bound = if pt.row.kind == "attention" {
                m.max_err_attention
            } else {
                m.max_err_decode
            };
            assert!(
                err <= bound + 1e-9,
                "{}: measured {:.1} us, model {pred:.1} us ({:.1}% > {:.0}%)",
                pt.row.key(),
                pt.row.median_us,
                err * 100.0,
                bound * 100.0
            );
            checked += 1;
        }
        assert!(checked >= 40, "only {checked} committed measurements");
        assert!(
            m.max_err_attention <= 0.20 && m.max_err_decode <= 0.20,
            "stated errors grew: {m:?}"
        );
    }

    /// The committed coefficients are what the fit gives on the committed data.
    #[test]
    fn committed_calibration_is_up_to_date() {
        let m = fit(&committed_points());
        let c = committed();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-9);
        for (a, b) in m
            .block4
            .iter()
            .chain(&m.block8)
            .chain(&m.pq)
            .zip(c.block4.iter().chain(&c.block8).chain(&c.pq))
        {
            assert!(
                close(*a, *b),
                "refit {m:?} differs from committed {c:?}: run archsweep gpu calibrate --write"
            );
        }
        assert!(close(m.decode_gbs, c.decode_gbs));
    }
}

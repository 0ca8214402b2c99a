//! Accuracy of product-quantized KV caches on real activations: Q/K/V of all-MiniLM-L6-v2 on
//! real sentences (`models/data/minilm_qkv.safetensors`, written by
//! `scripts/minilm_activations.py`). Codebooks are trained on some passages and evaluated on the
//! others: attention-output relative error and cosine similarity against unquantized attention
//! (fp64), per bits per element and recent-token window.
//!
//! MiniLM's head dimension is 32, so the subspace widths of the M = 16, 32, 64 at head
//! dimension 128 (8, 4 and 2 dimensions: 1, 2 and 4 bits per element) are M = 4, 8, 16 here.
//! With only a few hundred tokens per head in the sample, one codebook per layer is shared by its
//! heads (MILLION trains per head on a large calibration set).

use gpu::pq::Codebook;
use gpu::reference::{attention_row, cosine, ErrorStats};
use safetensors::SafeTensors;
use std::fmt::Write as _;

/// The committed activation sample.
pub const SAMPLE: &[u8] = include_bytes!("../../data/minilm_qkv.safetensors");

/// Q, K, V as f32 `[passages][layers][heads][tokens][head_dim]`.
pub struct Activations {
    /// Queries.
    pub q: Vec<f32>,
    /// Keys.
    pub k: Vec<f32>,
    /// Values.
    pub v: Vec<f32>,
    /// Shape: passages, layers, heads, tokens, head_dim.
    pub shape: [usize; 5],
    /// Model layer index of each stored layer.
    pub layers: Vec<i32>,
}

impl Activations {
    /// Parses a sample written by the script.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("activation sample: {e}"))?;
        let get = |name: &str| -> Result<(Vec<f32>, Vec<usize>), String> {
            let t = st
                .tensor(name)
                .map_err(|e| format!("activation sample: tensor {name}: {e}"))?;
            if t.dtype() != safetensors::Dtype::F16 {
                return Err(format!(
                    "activation sample: tensor {name} is {:?}, expected F16",
                    t.dtype()
                ));
            }
            let v = t
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect();
            Ok((v, t.shape().to_vec()))
        };
        let (q, s) = get("q")?;
        let (k, _) = get("k")?;
        let (v, _) = get("v")?;
        if s.len() != 5 {
            return Err(format!(
                "activation sample: q has shape {s:?}, expected 5 dimensions"
            ));
        }
        let lt = st
            .tensor("layers")
            .map_err(|e| format!("activation sample: layers: {e}"))?;
        let layers = lt
            .data()
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Activations {
            q,
            k,
            v,
            shape: [s[0], s[1], s[2], s[3], s[4]],
            layers,
        })
    }

    fn row(&self, x: &[f32], p: usize, l: usize, h: usize, t: usize) -> usize {
        let [_, nl, nh, nt, d] = self.shape;
        let _ = x;
        ((((p * nl + l) * nh + h) * nt) + t) * d
    }
}

/// One row of the accuracy table.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AccuracyRow {
    /// Subspaces at MiniLM's head dim.
    pub m: usize,
    /// Dimensions per subspace.
    pub dsub: usize,
    /// Cache bits per element (codes only).
    pub bits: f64,
    /// Recent tokens kept unquantized.
    pub window: usize,
    /// Attention-output relative error (norm over all evaluated rows).
    pub rel_err: f64,
    /// Mean cosine similarity of output rows.
    pub cosine: f64,
    /// Relative error of the dequantized keys.
    pub key_err: f64,
}

/// Evaluates PQ caches: codebooks trained on passages `< train`, evaluated on the rest.
pub fn evaluate(
    a: &Activations,
    train: usize,
    ms: &[usize],
    windows: &[usize],
    iters: usize,
    seed: u64,
) -> Vec<AccuracyRow> {
    let [np, nl, nh, nt, d] = a.shape;
    let mut out = Vec::new();
    for &m in ms {
        let dsub = d / m;
        // One codebook per layer for K and one for V, trained on every head's training tokens.
        let books: Vec<(Codebook, Codebook)> = (0..nl)
            .map(|l| {
                let gather = |x: &[f32]| -> Vec<f32> {
                    (0..train)
                        .flat_map(|p| (0..nh).flat_map(move |h| (0..nt).map(move |t| (p, h, t))))
                        .flat_map(|(p, h, t)| {
                            let o = a.row(x, p, l, h, t);
                            x[o..o + d].to_vec()
                        })
                        .collect()
                };
                (
                    Codebook::train(&gather(&a.k), d, m, iters, seed ^ (l as u64) << 8),
                    Codebook::train(&gather(&a.v), d, m, iters, seed ^ ((l as u64) << 8) ^ 1),
                )
            })
            .collect();
        for &window in windows {
            let mut err = ErrorStats::default();
            let mut kerr = ErrorStats::default();
            let (mut cos, mut rows) = (0.0, 0usize);
            for p in train..np {
                for (l, (bk, bv)) in books.iter().enumerate() {
                    for h in 0..nh {
                        let o = a.row(&a.k, p, l, h, 0);
                        let k = &a.k[o..o + nt * d];
                        let v = &a.v[o..o + nt * d];
                        let quant = nt.saturating_sub(window);
                        let mut kq = bk.decode(&bk.encode(&k[..quant * d]));
                        let mut vq = bv.decode(&bv.encode(&v[..quant * d]));
                        kq.extend_from_slice(&k[quant * d..]);
                        vq.extend_from_slice(&v[quant * d..]);
                        kerr.add(
                            &kq.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                            &k.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                        );
                        for t in 0..nt {
                            let qo = a.row(&a.q, p, l, h, t);
                            let q: Vec<f64> = a.q[qo..qo + d].iter().map(|&x| x as f64).collect();
                            let scale = 1.0 / (d as f64).sqrt();
                            let (want, _) = attention_row(&q, k, v, d, 0..nt, scale);
                            let (got, _) = attention_row(&q, &kq, &vq, d, 0..nt, scale);
                            err.add(&got, &want);
                            cos += cosine(&got, &want);
                            rows += 1;
                        }
                    }
                }
            }
            out.push(AccuracyRow {
                m,
                dsub,
                bits: 8.0 / dsub as f64,
                window,
                rel_err: err.relative(),
                cosine: cos / rows as f64,
                key_err: kerr.relative(),
            });
        }
    }
    out
}

/// The committed table (`results/gpu/pq_accuracy.csv`) as rows.
pub fn committed_table() -> Vec<AccuracyRow> {
    include_str!("../../../results/gpu/pq_accuracy.csv")
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<f64> = l
                .split(',')
                .map(|x| x.trim().parse().expect("numeric accuracy table"))
                .collect();
            AccuracyRow {
                m: f[0] as usize,
                dsub: f[1] as usize,
                bits: f[2],
                window: f[3] as usize,
                rel_err: f[4],
                cosine: f[5],
                key_err: f[6],
            }
        })
        .collect()
}

/// CSV text of a table.
pub fn to_csv(rows: &[AccuracyRow]) -> String {
    let mut s = String::from("m,dsub,bits,window,rel_err,cosine,key_err\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{:.6},{:.6},{:.6}",
            r.m, r.dsub, r.bits, r.window, r.rel_err, r.cosine, r.key_err
        );
    }
    s
}

/// Attention-output relative error of a PQ cache with `bits` per element and a recent window of
/// `window_frac` of the context, interpolated in the committed table (linear in the window
/// fraction; the evaluated passages have 128 tokens).
pub fn predicted_error(bits: f64, window_frac: f64, tokens: usize) -> Option<f64> {
    let t = committed_table();
    let mut rows: Vec<&AccuracyRow> = t.iter().filter(|r| (r.bits - bits).abs() < 1e-9).collect();
    rows.sort_by_key(|r| r.window);
    let frac = |r: &AccuracyRow| r.window as f64 / tokens as f64;
    let x = window_frac.clamp(0.0, frac(rows.last()?));
    for w in rows.windows(2) {
        let (a, b) = (frac(w[0]), frac(w[1]));
        if x >= a && x <= b {
            let s = if b > a { (x - a) / (b - a) } else { 0.0 };
            return Some(w[0].rel_err + s * (w[1].rel_err - w[0].rel_err));
        }
    }
    rows.first().map(|r| r.rel_err)
}

/// Passages used for training codebooks (the rest are evaluated).
pub const TRAIN_PASSAGES: usize = 3;
/// Lloyd iterations.
pub const KMEANS_ITERS: usize = 12;
/// Seed of the codebook training.
pub const SEED: u64 = 2026;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_parses_with_minilm_shapes() {
        let a = Activations::parse(SAMPLE).unwrap();
        assert_eq!(a.shape[2..], [12, 128, 32]);
        assert!(a.shape[0] >= 4);
        assert!(a.q.iter().all(|x| x.is_finite()));
        assert!(Activations::parse(b"not a safetensors file").is_err());
    }

    /// The committed accuracy table is what the evaluation gives (deterministic seed), and it
    /// behaves: more bits and a longer fp16 window give smaller errors.
    #[test]
    fn committed_accuracy_table_is_reproduced_and_monotone() {
        let a = Activations::parse(SAMPLE).unwrap();
        let fresh = evaluate(&a, TRAIN_PASSAGES, &[4], &[0, 32], KMEANS_ITERS, SEED);
        let t = committed_table();
        for r in &fresh {
            let c = t
                .iter()
                .find(|c| c.m == r.m && c.window == r.window)
                .expect("row in committed table");
            assert!(
                (c.rel_err - r.rel_err).abs() < 1e-5,
                "{r:?} vs committed {c:?}"
            );
        }
        for w in t.windows(2) {
            if w[0].m == w[1].m {
                assert!(
                    w[1].rel_err <= w[0].rel_err + 1e-9,
                    "window should help: {w:?}"
                );
            }
        }
        let e = |m: usize| {
            t.iter()
                .find(|r| r.m == m && r.window == 0)
                .unwrap()
                .rel_err
        };
        assert!(e(16) < e(8) && e(8) < e(4), "more bits, smaller error");
        assert!(predicted_error(4.0, 0.0, 128).unwrap() < predicted_error(1.0, 0.0, 128).unwrap());
    }
}

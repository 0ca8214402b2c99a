//! Low-bit weights: quantizers ([`quant`]), all-MiniLM-L6-v2 in Rust ([`minilm`]) and the
//! accuracy of each quantizer and bit width on its real weights and real sentences.

pub mod minilm;
pub mod quant;

use minilm::{cosine, MiniLm};
use rayon::prelude::*;

/// A way to quantize every linear layer's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantizer {
    /// Per-group asymmetric round-to-nearest.
    Uniform {
        /// Bits.
        bits: u32,
        /// Group size along the input dimension.
        group: usize,
    },
    /// k-means per group (`group` 0: per output channel).
    Clustered {
        /// Bits.
        bits: u32,
        /// Group size along the input dimension; 0: a whole row.
        group: usize,
    },
    /// INT8 per output channel.
    Int8,
    /// INT4 nested in the INT8 weights' high nibbles.
    Int4,
}

impl Quantizer {
    /// "uniform 3-bit g128", "clustered 3-bit per channel", ...
    pub fn label(&self) -> String {
        match *self {
            Quantizer::Uniform { bits, group } => format!("uniform {bits}-bit g{group}"),
            Quantizer::Clustered { bits, group: 0 } => {
                format!("clustered {bits}-bit per channel")
            }
            Quantizer::Clustered { bits, group } => format!("clustered {bits}-bit g{group}"),
            Quantizer::Int8 => "INT8 per channel".into(),
            Quantizer::Int4 => "INT4 nested in INT8".into(),
        }
    }

    /// Bits per weight stored, counting scales, zeros and tables (fp16) for a row of `k`.
    pub fn bits_per_weight(&self, k: usize) -> f64 {
        match *self {
            Quantizer::Uniform { bits, group } => bits as f64 + 32.0 / group as f64,
            Quantizer::Clustered { bits, group } => {
                let g = if group == 0 { k } else { group };
                bits as f64 + 16.0 * (1u32 << bits) as f64 / g as f64
            }
            Quantizer::Int8 => 8.0 + 32.0 / k as f64,
            Quantizer::Int4 => 4.0 + 32.0 / k as f64,
        }
    }

    /// The dequantized weights of one linear layer.
    pub fn apply(&self, w: &[f32], k: usize) -> Vec<f32> {
        match *self {
            Quantizer::Uniform { bits, group } => quant::uniform(w, k, bits, group),
            Quantizer::Clustered { bits, group } => {
                quant::clustered(w, k, bits, if group == 0 { k } else { group })
            }
            Quantizer::Int8 => {
                let (q, s) = quant::int8_rows(w, k);
                quant::int8_values(&q, &s, k)
            }
            Quantizer::Int4 => {
                let (q, s) = quant::int8_rows(w, k);
                quant::int4_values(&q, &s, k)
            }
        }
    }
}

/// Accuracy of one quantizer on the evaluation sentences.
#[derive(Debug, Clone)]
pub struct Accuracy {
    /// The quantizer.
    pub quantizer: Quantizer,
    /// Smoothing strength (0: none).
    pub alpha: f32,
    /// Bits per weight over the model's linear layers (weights, tables, scales).
    pub bits: f64,
    /// Mean cosine similarity of the sentence embeddings with the fp32 model's.
    pub mean_cos: f64,
    /// Smallest cosine similarity.
    pub min_cos: f64,
    /// Per encoder layer: mean norm-relative error of its output against fp32.
    pub layer_err: Vec<f64>,
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Runs the fp32 model on `calib` (for the smoothing statistics) and every quantizer on `eval`.
pub fn accuracy(
    model: &MiniLm,
    calib: &[Vec<u32>],
    eval: &[Vec<u32>],
    cases: &[(Quantizer, f32)],
) -> Vec<Accuracy> {
    // Per layer and linear: max |input| over the calibration sentences.
    let cal = model.forward_all(calib);
    let mut absmax: Vec<[Vec<f32>; 6]> = cal[0].absmax.clone();
    for f in &cal[1..] {
        for (a, b) in absmax.iter_mut().zip(&f.absmax) {
            for (x, y) in a.iter_mut().zip(b) {
                for (u, v) in x.iter_mut().zip(y) {
                    *u = u.max(*v);
                }
            }
        }
    }
    let base = model.forward_all(eval);
    let weights: usize = model
        .linears
        .iter()
        .flat_map(|l| l.iter().map(|x| x.w.len()))
        .sum();
    cases
        .iter()
        .map(|&(q, alpha)| {
            let m = model.quantized(|l, i, lin| {
                if alpha > 0.0 {
                    let s = quant::smooth_scales(&absmax[l][i], &lin.w, lin.inp, alpha);
                    quant::with_smoothing(&lin.w, lin.inp, &s, |w| q.apply(w, lin.inp))
                } else {
                    q.apply(&lin.w, lin.inp)
                }
            });
            let bits = model
                .linears
                .iter()
                .flat_map(|l| {
                    l.iter()
                        .map(|x| q.bits_per_weight(x.inp) * x.w.len() as f64)
                })
                .sum::<f64>()
                / weights as f64;
            let out = m.forward_all(eval);
            let cos: Vec<f64> = out
                .par_iter()
                .zip(&base)
                .map(|(a, b)| cosine(&a.embedding, &b.embedding))
                .collect();
            let layer_err = (0..model.linears.len())
                .map(|l| {
                    out.iter()
                        .zip(&base)
                        .map(|(a, b)| gpu::lowbit::errors(&a.layers[l], &wide(&b.layers[l])).0)
                        .sum::<f64>()
                        / eval.len() as f64
                })
                .collect();
            Accuracy {
                quantizer: q,
                alpha,
                bits,
                mean_cos: cos.iter().sum::<f64>() / cos.len() as f64,
                min_cos: cos.iter().copied().fold(f64::INFINITY, f64::min),
                layer_err,
            }
        })
        .collect()
}

/// The study's cases: uniform and clustered at 2, 3, 4 bits (groups 32 and 128, clustered also
/// per channel), 3-bit with smoothing (alpha 0.5), INT8 and nested INT4.
pub fn study_cases() -> Vec<(Quantizer, f32)> {
    let mut c = Vec::new();
    for bits in [2, 3, 4] {
        for group in [32, 128] {
            c.push((Quantizer::Uniform { bits, group }, 0.0));
            c.push((Quantizer::Clustered { bits, group }, 0.0));
        }
        c.push((Quantizer::Clustered { bits, group: 0 }, 0.0));
    }
    c.push((
        Quantizer::Uniform {
            bits: 3,
            group: 128,
        },
        0.5,
    ));
    c.push((
        Quantizer::Clustered {
            bits: 3,
            group: 128,
        },
        0.5,
    ));
    c.push((Quantizer::Clustered { bits: 3, group: 0 }, 0.5));
    c.push((Quantizer::Int8, 0.0));
    c.push((Quantizer::Int4, 0.0));
    c
}

/// The accuracy table in markdown.
pub fn markdown(rows: &[Accuracy]) -> String {
    let mut s = String::from(
        "| quantizer | smoothing | bits/weight | mean cos | min cos | layer 1 err | layer 2 | layer 3 | layer 4 | layer 5 | layer 6 |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {:.3} | {:.5} | {:.5} | {} |\n",
            r.quantizer.label(),
            if r.alpha > 0.0 {
                format!("alpha {}", r.alpha)
            } else {
                "none".into()
            },
            r.bits,
            r.mean_cos,
            r.min_cos,
            r.layer_err
                .iter()
                .map(|e| format!("{e:.4}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::minilm::{sentences, weights_path, MiniLm};
    use super::*;

    fn model_or_skip() -> Option<MiniLm> {
        let path = weights_path();
        match std::fs::read(&path) {
            Ok(b) => Some(MiniLm::load(&b).expect("MiniLM weights")),
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "MiniLM weights are required under CI=true ({}: {e}); scripts/test.sh fetches them",
                        path.display()
                    );
                }
                println!(
                    "skipped: MiniLM weights not at {} ({e}); run scripts/fetch_minilm.sh",
                    path.display()
                );
                None
            }
        }
    }

    #[test]
    fn rust_minilm_matches_the_fp64_reference_embeddings() {
        let Some(m) = model_or_skip() else { return };
        let (sents, reference) = sentences().unwrap();
        assert_eq!(sents.len(), 64);
        let out = m.forward_all(&sents);
        for (i, (f, r)) in out.iter().zip(&reference).enumerate() {
            let c = cosine(&f.embedding, r);
            assert!(c > 0.99999, "sentence {i}: cosine {c}");
        }
    }

    #[test]
    fn clustered_3_bit_beats_uniform_3_bit_and_int8_is_near_lossless() {
        let Some(m) = model_or_skip() else { return };
        let (sents, _) = sentences().unwrap();
        let (calib, eval) = sents.split_at(32);
        let cases = [
            (
                Quantizer::Uniform {
                    bits: 3,
                    group: 128,
                },
                0.0,
            ),
            (
                Quantizer::Clustered {
                    bits: 3,
                    group: 128,
                },
                0.0,
            ),
            (Quantizer::Int8, 0.0),
            (Quantizer::Int4, 0.0),
        ];
        let r = accuracy(&m, calib, &eval[..16], &cases);
        println!("{}", markdown(&r));
        assert!(
            r[1].mean_cos > r[0].mean_cos,
            "{} vs {}",
            r[1].mean_cos,
            r[0].mean_cos
        );
        assert!(r[2].mean_cos > 0.999 && r[2].mean_cos > r[3].mean_cos);
        // INT4 nested in INT8 keeps zero representable: far better than chance.
        assert!(r[3].mean_cos > 0.5, "{}", r[3].mean_cos);
        // Errors grow through the layers' residual stream but stay bounded.
        assert!(r.iter().all(|a| a.layer_err.iter().all(|e| *e < 1.0)));
    }
}

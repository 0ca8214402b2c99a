//! Low-bit weights: quantizers ([`quant`]), all-MiniLM-L6-v2 in Rust ([`minilm`]) and the
//! accuracy of each quantizer and bit width on its real weights and real sentences.

pub mod design;
pub mod latency;
pub mod minilm;
pub mod quant;
pub mod switch;

use minilm::{cosine, MiniLm};
use rayon::prelude::*;

/// A way to quantize every linear layer's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantizer {
    /// Per-group asymmetric round-to-nearest (`group` 0: per output channel).
    Uniform {
        /// Bits.
        bits: u32,
        /// Group size along the input dimension; 0: a whole row.
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
    /// fp16 weights (rounded to nearest).
    Fp16,
}

impl Quantizer {
    /// "uniform 3-bit g128", "clustered 3-bit per channel", ...
    pub fn label(&self) -> String {
        match *self {
            Quantizer::Uniform { bits, group: 0 } => format!("uniform {bits}-bit per channel"),
            Quantizer::Uniform { bits, group } => format!("uniform {bits}-bit g{group}"),
            Quantizer::Clustered { bits, group: 0 } => {
                format!("clustered {bits}-bit per channel")
            }
            Quantizer::Clustered { bits, group } => format!("clustered {bits}-bit g{group}"),
            Quantizer::Int8 => "INT8 per channel".into(),
            Quantizer::Int4 => "INT4 nested in INT8".into(),
            Quantizer::Fp16 => "fp16".into(),
        }
    }

    /// Bits per weight stored, counting scales, zeros and tables (fp16) for a row of `k`.
    pub fn bits_per_weight(&self, k: usize) -> f64 {
        match *self {
            Quantizer::Uniform { bits, group } => {
                bits as f64 + 32.0 / if group == 0 { k } else { group } as f64
            }
            Quantizer::Clustered { bits, group } => {
                let g = if group == 0 { k } else { group };
                bits as f64 + 16.0 * (1u32 << bits) as f64 / g as f64
            }
            Quantizer::Int8 => 8.0 + 32.0 / k as f64,
            Quantizer::Int4 => 4.0 + 32.0 / k as f64,
            Quantizer::Fp16 => 16.0,
        }
    }

    /// The dequantized weights of one linear layer.
    pub fn apply(&self, w: &[f32], k: usize) -> Vec<f32> {
        match *self {
            Quantizer::Uniform { bits, group } => {
                quant::uniform(w, k, bits, if group == 0 { k } else { group })
            }
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
            Quantizer::Fp16 => w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
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

/// The study's cases: uniform and clustered at 2, 3 and 4 bits, per channel and in groups of 128
/// and 32, each without and with smoothing (alpha 0.5); INT8, nested INT4 and fp16.
pub fn study_cases() -> Vec<(Quantizer, f32)> {
    let mut c = Vec::new();
    for bits in [2, 3, 4] {
        for group in [0, 128, 32] {
            for alpha in [0.0, 0.5] {
                c.push((Quantizer::Uniform { bits, group }, alpha));
                c.push((Quantizer::Clustered { bits, group }, alpha));
            }
        }
    }
    c.push((Quantizer::Int8, 0.0));
    c.push((Quantizer::Int4, 0.0));
    c.push((Quantizer::Fp16, 0.0));
    c
}

/// Header of the accuracy CSV file.
pub const CSV_HEADER: &str =
    "quantizer,bits,group,alpha,bits_per_weight,mean_cos,min_cos,layer_errs";

impl Quantizer {
    /// (kind, bits, group) as written in the accuracy CSV file.
    pub fn fields(&self) -> (&'static str, u32, usize) {
        match *self {
            Quantizer::Uniform { bits, group } => ("uniform", bits, group),
            Quantizer::Clustered { bits, group } => ("clustered", bits, group),
            Quantizer::Int8 => ("int8", 8, 0),
            Quantizer::Int4 => ("int4", 4, 0),
            Quantizer::Fp16 => ("fp16", 16, 0),
        }
    }
    /// The quantizer of CSV fields (kind, bits, group).
    pub fn from_fields(kind: &str, bits: u32, group: usize) -> Result<Quantizer, String> {
        Ok(match kind {
            "uniform" => Quantizer::Uniform { bits, group },
            "clustered" => Quantizer::Clustered { bits, group },
            "int8" => Quantizer::Int8,
            "int4" => Quantizer::Int4,
            "fp16" => Quantizer::Fp16,
            k => {
                return Err(format!(
                    "quantizer {k:?}; choose uniform, clustered, int8, int4 or fp16"
                ))
            }
        })
    }
}

/// The accuracy rows as CSV (per-layer errors joined by `;`).
pub fn to_csv(rows: &[Accuracy]) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for r in rows {
        let (kind, bits, group) = r.quantizer.fields();
        s += &format!(
            "{kind},{bits},{group},{},{:.4},{:.6},{:.6},{}\n",
            r.alpha,
            r.bits,
            r.mean_cos,
            r.min_cos,
            r.layer_err
                .iter()
                .map(|e| format!("{e:.5}"))
                .collect::<Vec<_>>()
                .join(";")
        );
    }
    s
}

/// Parses an accuracy CSV file; errors name `path`, the line and the field.
pub fn from_csv(text: &str, path: &str) -> Result<Vec<Accuracy>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == CSV_HEADER => {}
        _ => {
            return Err(format!(
                "{path}: line 1: expected the header {CSV_HEADER:?}"
            ))
        }
    }
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            let at = |what: &str| format!("{path}: line {}: {what}", i + 1);
            if f.len() != 8 {
                return Err(at(&format!("{} fields, expected 8", f.len())));
            }
            let num = |j: usize| -> Result<f64, String> {
                f[j].parse::<f64>().map_err(|_| {
                    at(&format!(
                        "{}: {:?} is not a number",
                        &CSV_HEADER.split(',').nth(j).unwrap_or("?"),
                        f[j]
                    ))
                })
            };
            Ok(Accuracy {
                quantizer: Quantizer::from_fields(f[0], num(1)? as u32, num(2)? as usize)
                    .map_err(|e| at(&e))?,
                alpha: num(3)? as f32,
                bits: num(4)?,
                mean_cos: num(5)?,
                min_cos: num(6)?,
                layer_err: f[7]
                    .split(';')
                    .map(|v| {
                        v.parse::<f64>()
                            .map_err(|_| at(&format!("layer_errs: {v:?}")))
                    })
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// The committed accuracy table (`results/lowbit/accuracy.csv`).
pub fn committed_accuracy() -> &'static [Accuracy] {
    static A: std::sync::OnceLock<Vec<Accuracy>> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        from_csv(
            include_str!("../../../results/lowbit/accuracy.csv"),
            "results/lowbit/accuracy.csv",
        )
        .expect("committed accuracy table parses")
    })
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

    /// The MiniLM weights; required under CI=true, else skipped visibly when absent.
    pub(crate) fn model_or_skip() -> Option<MiniLm> {
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
        let r = accuracy(&m, calib, eval, &cases);
        println!("{}", markdown(&r));
        // The committed table (which gemv.lowbit embeds) is what the code gives.
        for a in &r {
            let c = committed_accuracy()
                .iter()
                .find(|c| c.quantizer == a.quantizer && c.alpha == a.alpha)
                .expect("case in results/lowbit/accuracy.csv");
            assert!(
                (c.mean_cos - a.mean_cos).abs() < 1e-5 && (c.bits - a.bits).abs() < 1e-3,
                "{}: committed {} vs {}: regenerate with archsweep lowbit accuracy --csv",
                a.quantizer.label(),
                c.mean_cos,
                a.mean_cos
            );
        }
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
        let bad = to_csv(&r).replace("uniform,3", "ternary,3");
        let e = from_csv(&bad, "a.csv").unwrap_err();
        assert!(
            e.contains("a.csv: line 2") && e.contains("clustered"),
            "{e}"
        );
    }
}

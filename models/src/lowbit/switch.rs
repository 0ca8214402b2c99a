//! Dynamic INT8/INT4 precision switching (after FlexQuant), per encoder layer and per token, on
//! all-MiniLM-L6-v2 with the INT4 weights nested in the INT8 ones, and the token latency it buys
//! on a decoder, simulated from the measured H100 kernels.
//!
//! - **Output distribution.** A sentence-embedding model's output is used for search: the
//!   distribution `P(j | s) = softmax_j(20 cos(e_s, c_j))` of a query `s` over the other
//!   sentences' fp32 embeddings `c_j` (20 is the scale MiniLM was trained with). Its entropy is
//!   the model's uncertainty; the KL divergence of a quantized model's distribution from
//!   another's is its loss of fidelity.
//! - **Calibration (static signal).** For each encoder layer `l`, the KL divergence between the
//!   output distributions of the all-INT8 model and the model whose layer `l` alone runs INT4,
//!   averaged over the calibration sentences: the layer's precision requirement `KL_l`.
//! - **Per-token signal (dynamic).** The entropy of the token's attention distribution in the
//!   previous layer (mean over heads, normalised by ln(tokens)), `H_t`, relative to its
//!   calibration mean `H̄` of that layer: computed by the attention anyway, so it costs a
//!   reduction.
//! - **Policy.** Token `t` runs layer `l` (all six linear layers) in INT4 when
//!   `KL_l / median(KL) * (H_t / H̄)^beta <= threshold`; beta 0 is a static per-layer mix; the
//!   first layer, with no previous attention, uses `H_t = H̄`.
//! - **Control.** The same fraction of (token, layer) pairs switched at random.
//! - **Latency.** On a decoder generating one token at a time (batch 1), each (token, layer) reads
//!   its layer's weights once, in the precision chosen: token time = sum over layers and linear
//!   layers of the measured (or modelled) INT4 or INT8 kernel time, plus split-KV decode attention
//!   over the fp16 cache from the calibrated decode model. The INT4 kernel reads only the
//!   high-nibble plane of the INT8 weights, so switching needs no second copy.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::latency::KernelModel;
use super::minilm::{cosine, Forward, MiniLm};
use super::Quantizer;
use gpu::lowbit::Format;

/// Scale of the cosine similarities in the search distribution.
pub const SCALE: f64 = 20.0;

/// Search distribution of query `q` over `corpus` without entry `skip` (the query itself).
pub fn search_distribution(q: &[f32], corpus: &[Vec<f32>], skip: usize) -> Vec<f64> {
    let s: Vec<f64> = corpus
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != skip)
        .map(|(_, c)| SCALE * cosine(q, c))
        .collect();
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// KL(p || q) in nats.
pub fn kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| a * (a / b.max(1e-300)).ln())
        .sum()
}

/// Entropy in nats.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|a| **a > 0.0)
        .map(|a| a * a.ln())
        .sum::<f64>()
}

/// What the calibration measured.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Per layer: mean KL of the output distribution, all-INT8 vs this layer alone INT4.
    pub kl: Vec<f64>,
    /// Per layer: mean attention entropy of the tokens (INT8 model).
    pub mean_entropy: Vec<f64>,
    /// Per layer: mean norm-relative error of the layer's output, INT4 vs INT8 (layer alone).
    pub layer_err: Vec<f64>,
}

/// How (token, layer) pairs pick their precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Every layer INT8.
    Int8,
    /// Every layer INT4.
    Int4,
    /// The KL-and-entropy policy.
    Policy {
        /// INT4 when the layer's KL over the median KL, times the entropy factor, is at most this.
        threshold: f64,
        /// Exponent of the relative attention entropy (0: static per-layer mix).
        beta: f64,
    },
    /// Each (token, layer) INT4 with this probability (fixed seed).
    Random {
        /// Probability.
        p: f64,
    },
}

impl Rule {
    /// Short description.
    pub fn label(&self) -> String {
        match *self {
            Rule::Int8 => "static INT8".into(),
            Rule::Int4 => "static INT4".into(),
            Rule::Policy { threshold, beta } => {
                format!("policy threshold {threshold:.3} beta {beta}")
            }
            Rule::Random { p } => format!("random p {p:.3}"),
        }
    }
}

/// Accuracy of a rule on the evaluation sentences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Fraction of (token, layer) pairs in INT4 (every layer has the same weights).
    pub int4_fraction: f64,
    /// Average bits per weight read (4 or 8, plus the per-row fp16 scale).
    pub avg_bits: f64,
    /// Mean cosine of the sentence embeddings with the fp32 model's.
    pub mean_cos: f64,
    /// Smallest cosine.
    pub min_cos: f64,
    /// Mean KL of the search distribution from the fp32 model's, nats.
    pub mean_kl: f64,
    /// Fraction of queries whose nearest sentence is the fp32 model's.
    pub top1: f64,
}

/// The study: the INT8 and nested INT4 models, the fp32 outputs, the calibration.
pub struct SwitchStudy {
    int8: MiniLm,
    int4: MiniLm,
    corpus: Vec<Vec<f32>>,
    eval: Vec<(usize, Vec<u32>)>,
    reference: Vec<(Vec<f32>, Vec<f64>)>,
    /// What calibration measured.
    pub calibration: Calibration,
    /// Median of the layers' calibrated KLs (the policy's unit).
    pub median_kl: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl SwitchStudy {
    /// Quantizes `model` to INT8 (per channel) with INT4 nested in it, encodes every sentence in
    /// fp32 for the search corpus, and calibrates on the first `n_calib` sentences; the others
    /// are evaluated.
    pub fn new(model: &MiniLm, sentences: &[Vec<u32>], n_calib: usize) -> SwitchStudy {
        let int8 = model.quantized(|_, _, lin| Quantizer::Int8.apply(&lin.w, lin.inp));
        let int4 = model.quantized(|_, _, lin| Quantizer::Int4.apply(&lin.w, lin.inp));
        let fp32 = model.forward_all(sentences);
        let corpus: Vec<Vec<f32>> = fp32.iter().map(|f| f.embedding.clone()).collect();
        let layers = model.linears.len();
        // Calibration: the INT8 model, then each layer alone in INT4.
        let calib: Vec<(usize, &Vec<u32>)> = sentences[..n_calib].iter().enumerate().collect();
        let base: Vec<Forward> = calib.par_iter().map(|(_, s)| int8.forward(s)).collect();
        let mut kl_l = Vec::new();
        let mut err_l = Vec::new();
        for l in 0..layers {
            let one = |layer: usize, t: usize, _: Option<&[f32]>| vec![layer == l; t];
            let runs: Vec<(f64, f64)> = calib
                .par_iter()
                .zip(&base)
                .map(|((i, s), b)| {
                    let f = int8.forward_switched(s, Some((&int4, &one)));
                    let p = search_distribution(&b.embedding, &corpus, *i);
                    let q = search_distribution(&f.embedding, &corpus, *i);
                    let wide: Vec<f64> = b.layers[l].iter().map(|&v| v as f64).collect();
                    (kl(&p, &q), gpu::lowbit::errors(&f.layers[l], &wide).0)
                })
                .collect();
            kl_l.push(runs.iter().map(|r| r.0).sum::<f64>() / runs.len() as f64);
            err_l.push(runs.iter().map(|r| r.1).sum::<f64>() / runs.len() as f64);
        }
        let mean_entropy = (0..layers)
            .map(|l| {
                let (s, n) = base.iter().fold((0.0, 0usize), |(s, n), f| {
                    (
                        s + f.entropy[l].iter().map(|&v| v as f64).sum::<f64>(),
                        n + f.entropy[l].len(),
                    )
                });
                s / n as f64
            })
            .collect();
        let eval: Vec<(usize, Vec<u32>)> = sentences
            .iter()
            .cloned()
            .enumerate()
            .skip(n_calib)
            .collect();
        let reference = eval
            .iter()
            .map(|(i, _)| {
                (
                    corpus[*i].clone(),
                    search_distribution(&corpus[*i], &corpus, *i),
                )
            })
            .collect();
        SwitchStudy {
            median_kl: median(&kl_l),
            int8,
            int4,
            corpus,
            eval,
            reference,
            calibration: Calibration {
                kl: kl_l,
                mean_entropy,
                layer_err: err_l,
            },
        }
    }

    /// Whether the policy puts a token in INT4 at `layer`, given its previous-layer entropy.
    pub fn policy_int4(&self, threshold: f64, beta: f64, layer: usize, h: Option<f32>) -> bool {
        let c = &self.calibration;
        let w = match h {
            Some(h) if layer > 0 && beta != 0.0 => {
                (h as f64 / c.mean_entropy[layer - 1]).max(1e-6).powf(beta)
            }
            _ => 1.0,
        };
        c.kl[layer] / self.median_kl * w <= threshold
    }

    /// Runs the evaluation sentences under `rule`.
    pub fn evaluate(&self, rule: Rule) -> Outcome {
        let runs: Vec<(f64, f64, bool, usize, usize)> = self
            .eval
            .par_iter()
            .zip(&self.reference)
            .map(|((i, s), (e_ref, p_ref))| {
                let chooser = |layer: usize, t: usize, prev: Option<&[f32]>| -> Vec<bool> {
                    match rule {
                        Rule::Int8 => vec![false; t],
                        Rule::Int4 => vec![true; t],
                        Rule::Policy { threshold, beta } => (0..t)
                            .map(|tok| {
                                self.policy_int4(threshold, beta, layer, prev.map(|h| h[tok]))
                            })
                            .collect(),
                        Rule::Random { p } => {
                            let mut rng =
                                ChaCha8Rng::seed_from_u64((*i as u64) << 8 | layer as u64);
                            (0..t).map(|_| rng.random::<f64>() < p).collect()
                        }
                    }
                };
                let f = self.int8.forward_switched(s, Some((&self.int4, &chooser)));
                let q = search_distribution(&f.embedding, &self.corpus, *i);
                let top = |p: &[f64]| {
                    p.iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map(|x| x.0)
                };
                let pairs = f.alt.iter().map(Vec::len).sum::<usize>();
                let int4 = f.alt.iter().flatten().filter(|&&b| b).count();
                (
                    cosine(&f.embedding, e_ref),
                    kl(p_ref, &q),
                    top(p_ref) == top(&q),
                    int4,
                    pairs,
                )
            })
            .collect();
        let n = runs.len() as f64;
        let (int4, pairs) = runs.iter().fold((0, 0), |(a, b), r| (a + r.3, b + r.4));
        let frac = int4 as f64 / pairs.max(1) as f64;
        let k = self.int8.linears[0][0].inp as f64;
        Outcome {
            int4_fraction: frac,
            avg_bits: 4.0 * frac + 8.0 * (1.0 - frac) + 16.0 / k,
            mean_cos: runs.iter().map(|r| r.0).sum::<f64>() / n,
            min_cos: runs.iter().map(|r| r.0).fold(f64::INFINITY, f64::min),
            mean_kl: runs.iter().map(|r| r.1).sum::<f64>() / n,
            top1: runs.iter().filter(|r| r.2).count() as f64 / n,
        }
    }

    /// Layer KLs over their median, ascending: the thresholds at which each layer turns INT4
    /// under the static policy.
    pub fn static_thresholds(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .calibration
            .kl
            .iter()
            .map(|k| k / self.median_kl)
            .collect();
        t.sort_by(f64::total_cmp);
        t
    }
}

/// A decoder whose token latency is simulated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoder {
    /// Name.
    pub name: &'static str,
    /// Layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// MLP size (gate, up, down).
    pub ffn: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
}

impl Decoder {
    /// Llama-2-7B.
    pub const LLAMA_7B: Decoder = Decoder {
        name: "llama-7b",
        layers: 32,
        hidden: 4096,
        ffn: 11008,
        heads: 32,
        kv_heads: 32,
        head_dim: 128,
    };
    /// Llama-2-70B (grouped-query attention, 8 KV heads).
    pub const LLAMA_70B: Decoder = Decoder {
        name: "llama-70b",
        layers: 80,
        hidden: 8192,
        ffn: 28672,
        heads: 64,
        kv_heads: 8,
        head_dim: 128,
    };
    /// Every preset.
    pub const ALL: [Decoder; 2] = [Decoder::LLAMA_7B, Decoder::LLAMA_70B];

    /// The linear layers of one decoder layer as [k, n]: q, k, v, o, gate, up, down.
    pub fn linears(&self) -> [[usize; 2]; 7] {
        let (h, kv, f) = (self.hidden, self.kv_heads * self.head_dim, self.ffn);
        [
            [h, self.heads * self.head_dim],
            [h, kv],
            [h, kv],
            [self.heads * self.head_dim, h],
            [h, f],
            [h, f],
            [f, h],
        ]
    }
}

/// Simulated time of one generated token (batch 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLatency {
    /// One layer's linear layers in INT8, µs.
    pub layer_int8_us: f64,
    /// In INT4, µs.
    pub layer_int4_us: f64,
    /// One layer's decode attention over the fp16 cache, µs.
    pub attention_us: f64,
    /// Layers.
    pub layers: usize,
    /// Whether every kernel time is a measurement (else some are modelled).
    pub measured: bool,
}

impl TokenLatency {
    /// From the committed kernel measurements, for `context` cached tokens.
    pub fn new(d: &Decoder, context: usize) -> TokenLatency {
        let m = KernelModel::committed();
        let mut measured = true;
        let mut sum = |f: Format| -> f64 {
            d.linears()
                .iter()
                .map(|&[k, n]| {
                    let e = m.ours_us(f, k, n, 1);
                    measured &= e.measured;
                    e.us
                })
                .sum()
        };
        let (layer_int8_us, layer_int4_us) = (sum(Format::Int8), sum(Format::Int4));
        let cache_bytes = (2 * context * d.kv_heads * d.head_dim * 2) as f64;
        TokenLatency {
            layer_int8_us,
            layer_int4_us,
            attention_us: crate::attention::latency::committed().decode_us(cache_bytes),
            layers: d.layers,
            measured,
        }
    }

    /// Token time with a fraction `int4` of the layers in INT4, µs.
    pub fn token_us(&self, int4: f64) -> f64 {
        self.layers as f64
            * (int4 * self.layer_int4_us + (1.0 - int4) * self.layer_int8_us + self.attention_us)
    }
}

/// The trade-off curve: the policy over `thresholds` for each beta, and the random control at
/// each static (beta 0) point's INT4 fraction. [`Rule::Int8`] and [`Rule::Int4`] are its ends.
pub fn curve(study: &SwitchStudy, thresholds: &[f64], betas: &[f64]) -> Vec<(Rule, Outcome)> {
    let mut out = Vec::new();
    for &beta in betas {
        for &threshold in thresholds {
            let r = Rule::Policy { threshold, beta };
            let o = study.evaluate(r);
            if beta == 0.0 && o.int4_fraction > 0.0 && o.int4_fraction < 1.0 {
                let c = Rule::Random { p: o.int4_fraction };
                out.push((c, study.evaluate(c)));
            }
            out.push((r, o));
        }
    }
    out
}

/// The curve as a markdown table with the simulated token latency.
pub fn markdown(rows: &[(Rule, Outcome)], lat: &TokenLatency, decoder: &Decoder) -> String {
    let t8 = lat.token_us(0.0);
    let mut s = format!(
        "| rule | INT4 share | avg bits | mean cos | min cos | search KL (nats) | top-1 agree | {} token us | speedup vs INT8 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        decoder.name
    );
    for (r, o) in rows {
        let t = lat.token_us(o.int4_fraction);
        s += &format!(
            "| {} | {:.3} | {:.2} | {:.5} | {:.5} | {:.2e} | {:.3} | {:.0} | {:.3}x |\n",
            r.label(),
            o.int4_fraction,
            o.avg_bits,
            o.mean_cos,
            o.min_cos,
            o.mean_kl,
            o.top1,
            t,
            t8 / t
        );
    }
    s
}

/// For each accuracy target (mean cosine), the fewest average bits each rule family reaches it
/// with: static INT8, the policy per beta, the random control. Markdown.
pub fn bits_at_targets(rows: &[(Rule, Outcome)], targets: &[f64]) -> String {
    type Member = Box<dyn Fn(&Rule) -> bool>;
    let mut families: Vec<(String, Member)> = vec![
        ("static INT8".into(), Box::new(|r| *r == Rule::Int8)),
        (
            "random switch".into(),
            Box::new(|r| matches!(r, Rule::Random { .. })),
        ),
    ];
    let mut betas: Vec<f64> = rows
        .iter()
        .filter_map(|(r, _)| match r {
            Rule::Policy { beta, .. } => Some(*beta),
            _ => None,
        })
        .collect();
    betas.sort_by(f64::total_cmp);
    betas.dedup();
    for b in betas {
        let name = if b == 0.0 {
            "policy beta 0 (static per-layer KL)".to_string()
        } else {
            format!("policy beta {b} (KL and attention entropy)")
        };
        families.push((
            name,
            Box::new(move |r| matches!(r, Rule::Policy { beta, .. } if *beta == b)),
        ));
    }
    let mut s = String::from("| rule family |");
    for t in targets {
        s += &format!(" bits at mean cos >= {t} |");
    }
    s += "\n|---|";
    s += &"---:|".repeat(targets.len());
    s += "\n";
    for (name, member) in &families {
        s += &format!("| {name} |");
        for &t in targets {
            let best = rows
                .iter()
                .filter(|(r, o)| member(r) && o.mean_cos >= t)
                .map(|(_, o)| o.avg_bits)
                .fold(f64::INFINITY, f64::min);
            s += &if best.is_finite() {
                format!(" {best:.2} |")
            } else {
                " not reached |".into()
            };
        }
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_kl_and_entropy_are_exact_on_small_cases() {
        let p = [0.5, 0.5];
        assert!((entropy(&p) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(kl(&p, &p), 0.0);
        let q = [0.25, 0.75];
        let want = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((kl(&p, &q) - want).abs() < 1e-15);
        let corpus = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]];
        let d = search_distribution(&[1.0, 0.0], &corpus, 2);
        assert_eq!(d.len(), 2);
        let want = 1.0 / (1.0 + (-SCALE).exp());
        assert!((d[0] - want).abs() < 1e-12 && (d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn token_latency_follows_the_measured_kernels() {
        let l = TokenLatency::new(&Decoder::LLAMA_7B, 1024);
        // Every 7B shape was measured at batch 1.
        assert!(l.measured);
        let m = KernelModel::committed();
        let q8 = m.ours_us(Format::Int8, 4096, 4096, 1).us;
        let up8 = m.ours_us(Format::Int8, 4096, 11008, 1).us;
        let down8 = m.ours_us(Format::Int8, 11008, 4096, 1).us;
        assert!((l.layer_int8_us - (4.0 * q8 + 2.0 * up8 + down8)).abs() < 1e-9);
        assert!(l.layer_int4_us < l.layer_int8_us);
        assert!(l.token_us(1.0) < l.token_us(0.5) && l.token_us(0.5) < l.token_us(0.0));
        assert!(l.attention_us > 0.0);
        // 70B: the grouped-query projections were not measured.
        assert!(!TokenLatency::new(&Decoder::LLAMA_70B, 1024).measured);
    }

    /// The study on the real model: the all-INT8 and all-INT4 rules agree with the accuracy
    /// table's (a separate code path), the policy with the attention-entropy signal beats a
    /// random switch of the same INT4 share, and it reaches mean cosine 0.99 below 8 bits.
    #[test]
    fn policy_on_minilm_beats_random_switching_and_saves_bits() {
        let Some(m) = crate::lowbit::tests::model_or_skip() else {
            return;
        };
        let (sents, _) = crate::lowbit::minilm::sentences().unwrap();
        let study = SwitchStudy::new(&m, &sents, 32);
        let c = &study.calibration;
        assert!(c.kl.iter().all(|&k| k > 0.0 && k < 1.0), "{:?}", c.kl);
        assert!(c.mean_entropy.iter().all(|&h| h > 0.0 && h < 1.0));
        let table = crate::lowbit::committed_accuracy();
        let row = |q: Quantizer| table.iter().find(|a| a.quantizer == q).unwrap();
        let (i8, i4) = (study.evaluate(Rule::Int8), study.evaluate(Rule::Int4));
        assert!(
            (i8.mean_cos - row(Quantizer::Int8).mean_cos).abs() < 1e-5,
            "{i8:?}"
        );
        assert!(
            (i4.mean_cos - row(Quantizer::Int4).mean_cos).abs() < 1e-5,
            "{i4:?}"
        );
        assert_eq!((i8.int4_fraction, i4.int4_fraction), (0.0, 1.0));
        let pol = study.evaluate(Rule::Policy {
            threshold: 1.139,
            beta: -1.0,
        });
        let rnd = study.evaluate(Rule::Random {
            p: pol.int4_fraction,
        });
        assert!(
            pol.int4_fraction > 0.3 && pol.int4_fraction < 0.9,
            "{pol:?}"
        );
        assert!((rnd.int4_fraction - pol.int4_fraction).abs() < 0.05);
        assert!(pol.mean_cos > rnd.mean_cos, "{pol:?} vs {rnd:?}");
        let low = study.evaluate(Rule::Policy {
            threshold: 0.759,
            beta: -1.0,
        });
        assert!(
            low.mean_cos >= 0.99 && low.avg_bits < i8.avg_bits - 0.4,
            "{low:?}"
        );
    }
}

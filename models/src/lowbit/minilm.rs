//! all-MiniLM-L6-v2 in Rust: the BERT encoder (6 layers, hidden 384, 12 heads, GELU MLP of
//! 1536), mean pooling and L2 normalisation, fp32, on token ids (`data/minilm_sentences.safetensors`
//! holds the ids of `data/sentences.txt` from the model's own tokenizer, and the fp64 numpy
//! reference embeddings, written by `scripts/minilm_reference.py`). Its 36 linear layers can be
//! replaced by quantized ones to measure accuracy on real weights and real sentences.

use rayon::prelude::*;
use safetensors::SafeTensors;

/// The committed sentence sample: token ids and reference embeddings.
pub const SENTENCES: &[u8] = include_bytes!("../../data/minilm_sentences.safetensors");

/// Names of the six linear layers of each encoder layer, in order.
pub const LINEARS: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

const HEADS: usize = 12;
const EPS: f32 = 1e-12;

/// A linear layer: `y = x W^T + b`, `W` row-major `[out][in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weights, `out` rows of `inp`.
    pub w: Vec<f32>,
    /// Bias.
    pub b: Vec<f32>,
    /// Inputs.
    pub inp: usize,
    /// Outputs.
    pub out: usize,
}

impl Linear {
    /// `x W^T + b` for `tokens` rows of `x`; a token whose `alt_rows` flag is set uses `alt`'s
    /// weights instead (same shape and bias).
    fn apply(&self, x: &[f32], tokens: usize, alt: Option<(&Linear, &[bool])>) -> Vec<f32> {
        let mut y = vec![0.0f32; tokens * self.out];
        for t in 0..tokens {
            let xt = &x[t * self.inp..(t + 1) * self.inp];
            let w = match alt {
                Some((a, flags)) if flags[t] => &a.w,
                _ => &self.w,
            };
            for o in 0..self.out {
                let row = &w[o * self.inp..(o + 1) * self.inp];
                y[t * self.out + o] =
                    self.b[o] + row.iter().zip(xt).map(|(a, b)| a * b).sum::<f32>();
            }
        }
        y
    }
}

#[derive(Debug, Clone)]
struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Norm {
    fn apply(&self, x: &mut [f32]) {
        let d = self.w.len();
        for row in x.chunks_mut(d) {
            let mu = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + EPS).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v - mu) * inv * self.w[i] + self.b[i];
            }
        }
    }
}

/// The model.
#[derive(Debug, Clone)]
pub struct MiniLm {
    word: Vec<f32>,
    pos: Vec<f32>,
    typ: Vec<f32>,
    emb_norm: Norm,
    /// Per encoder layer: the six linear layers in [`LINEARS`] order.
    pub linears: Vec<[Linear; 6]>,
    norms: Vec<[Norm; 2]>,
    hidden: usize,
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Hidden states after each encoder layer, `[tokens][hidden]`.
    pub layers: Vec<Vec<f32>>,
    /// The sentence embedding (mean-pooled, unit length).
    pub embedding: Vec<f32>,
    /// Largest |input| of each linear layer's input columns (calibration).
    pub absmax: Vec<[Vec<f32>; 6]>,
    /// Per encoder layer and token: the entropy of the token's attention distribution, mean
    /// over heads, over ln(tokens) (0: attends to one token; 1: uniform).
    pub entropy: Vec<Vec<f32>>,
    /// Per encoder layer and token: whether the token ran on the alternative weights.
    pub alt: Vec<Vec<bool>>,
}

/// Chooses, per encoder layer, which tokens run on the alternative weights: called with the
/// layer, the number of tokens and the previous layer's attention entropies of the tokens
/// (`None` for the first); returns one flag per token.
pub type Chooser<'a> = &'a (dyn Fn(usize, usize, Option<&[f32]>) -> Vec<bool> + Sync);

impl MiniLm {
    /// Loads the weights from the model's `model.safetensors`.
    pub fn load(bytes: &[u8]) -> Result<MiniLm, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("MiniLM weights: {e}"))?;
        let get = |name: &str| -> Result<Vec<f32>, String> {
            let t = st
                .tensor(name)
                .map_err(|e| format!("MiniLM weights: tensor {name}: {e}"))?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(format!(
                    "MiniLM weights: {name} is {:?}, not F32",
                    t.dtype()
                ));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let norm = |p: &str| -> Result<Norm, String> {
            Ok(Norm {
                w: get(&format!("{p}.weight"))?,
                b: get(&format!("{p}.bias"))?,
            })
        };
        let hidden = get("embeddings.LayerNorm.weight")?.len();
        let mut linears = Vec::new();
        let mut norms = Vec::new();
        for l in 0..6 {
            let pre = format!("encoder.layer.{l}.");
            let lin = |name: &str| -> Result<Linear, String> {
                let w = get(&format!("{pre}{name}.weight"))?;
                let b = get(&format!("{pre}{name}.bias"))?;
                let out = b.len();
                Ok(Linear {
                    inp: w.len() / out,
                    out,
                    w,
                    b,
                })
            };
            linears.push([
                lin(LINEARS[0])?,
                lin(LINEARS[1])?,
                lin(LINEARS[2])?,
                lin(LINEARS[3])?,
                lin(LINEARS[4])?,
                lin(LINEARS[5])?,
            ]);
            norms.push([
                norm(&format!("{pre}attention.output.LayerNorm"))?,
                norm(&format!("{pre}output.LayerNorm"))?,
            ]);
        }
        Ok(MiniLm {
            word: get("embeddings.word_embeddings.weight")?,
            pos: get("embeddings.position_embeddings.weight")?,
            typ: get("embeddings.token_type_embeddings.weight")?,
            emb_norm: norm("embeddings.LayerNorm")?,
            linears,
            norms,
            hidden,
        })
    }

    /// Runs one sentence (token ids with [CLS] and [SEP]).
    pub fn forward(&self, ids: &[u32]) -> Forward {
        self.forward_switched(ids, None)
    }

    /// Runs one sentence where, in each encoder layer, the tokens `choose` picks run all six
    /// linear layers on `alt`'s weights (per token and layer precision switching).
    pub fn forward_switched(&self, ids: &[u32], alt: Option<(&MiniLm, Chooser)>) -> Forward {
        let (d, t) = (self.hidden, ids.len());
        let mut x = vec![0.0f32; t * d];
        for (i, &id) in ids.iter().enumerate() {
            for j in 0..d {
                x[i * d + j] = self.word[id as usize * d + j] + self.pos[i * d + j] + self.typ[j];
            }
        }
        self.emb_norm.apply(&mut x);
        let mut layers = Vec::new();
        let mut absmax = Vec::new();
        let colmax = |x: &[f32], w: usize| -> Vec<f32> {
            let mut m = vec![0.0f32; w];
            for row in x.chunks(w) {
                for (a, v) in m.iter_mut().zip(row) {
                    *a = a.max(v.abs());
                }
            }
            m
        };
        let hd = d / HEADS;
        let mut entropy: Vec<Vec<f32>> = Vec::new();
        let mut alts = Vec::new();
        let log_t = (t as f32).ln().max(f32::MIN_POSITIVE);
        for (l, (lin, norm)) in self.linears.iter().zip(&self.norms).enumerate() {
            let flags = match &alt {
                Some((_, choose)) => choose(l, t, entropy.last().map(Vec::as_slice)),
                None => vec![false; t],
            };
            let sw = |i: usize| {
                alt.as_ref()
                    .map(|(m, _)| (&m.linears[l][i], flags.as_slice()))
            };
            let m_in = colmax(&x, d);
            let q = lin[0].apply(&x, t, sw(0));
            let k = lin[1].apply(&x, t, sw(1));
            let v = lin[2].apply(&x, t, sw(2));
            let mut ent = vec![0.0f32; t];
            let mut a = vec![0.0f32; t * d];
            let scale = 1.0 / (hd as f32).sqrt();
            for h in 0..HEADS {
                for i in 0..t {
                    let qi = &q[i * d + h * hd..i * d + (h + 1) * hd];
                    let s: Vec<f32> = (0..t)
                        .map(|j| {
                            let kj = &k[j * d + h * hd..j * d + (h + 1) * hd];
                            qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale
                        })
                        .collect();
                    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = s.iter().map(|v| (v - m).exp()).collect();
                    let z: f32 = e.iter().sum();
                    for j in 0..t {
                        let p = e[j] / z;
                        if p > 0.0 {
                            ent[i] -= p * p.ln() / (log_t * HEADS as f32);
                        }
                        for c in 0..hd {
                            a[i * d + h * hd + c] += p * v[j * d + h * hd + c];
                        }
                    }
                }
            }
            let m_attn = colmax(&a, d);
            let o = lin[3].apply(&a, t, sw(3));
            for (xi, oi) in x.iter_mut().zip(&o) {
                *xi += oi;
            }
            norm[0].apply(&mut x);
            let m_mid = colmax(&x, d);
            let mut hmid = lin[4].apply(&x, t, sw(4));
            for v in hmid.iter_mut() {
                *v = 0.5 * *v * (1.0 + erf(*v / std::f32::consts::SQRT_2));
            }
            let m_h = colmax(&hmid, lin[4].out);
            let o = lin[5].apply(&hmid, t, sw(5));
            for (xi, oi) in x.iter_mut().zip(&o) {
                *xi += oi;
            }
            norm[1].apply(&mut x);
            absmax.push([m_in.clone(), m_in.clone(), m_in, m_attn, m_mid, m_h]);
            layers.push(x.clone());
            entropy.push(ent);
            alts.push(flags);
        }
        let mut e = vec![0.0f32; d];
        for row in x.chunks(d) {
            for (a, v) in e.iter_mut().zip(row) {
                *a += v / t as f32;
            }
        }
        let n = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        e.iter_mut().for_each(|v| *v /= n);
        Forward {
            layers,
            embedding: e,
            absmax,
            entropy,
            alt: alts,
        }
    }

    /// Runs many sentences in parallel.
    pub fn forward_all(&self, sentences: &[Vec<u32>]) -> Vec<Forward> {
        sentences.par_iter().map(|s| self.forward(s)).collect()
    }

    /// A copy whose linear weights are replaced: `quant(layer, index in LINEARS, linear)` gives
    /// the new weights.
    pub fn quantized(&self, quant: impl Fn(usize, usize, &Linear) -> Vec<f32> + Sync) -> MiniLm {
        let mut m = self.clone();
        let new: Vec<Vec<Vec<f32>>> = self
            .linears
            .par_iter()
            .enumerate()
            .map(|(l, lins)| {
                lins.par_iter()
                    .enumerate()
                    .map(|(i, lin)| quant(l, i, lin))
                    .collect()
            })
            .collect();
        for (lins, ws) in m.linears.iter_mut().zip(new) {
            for (lin, w) in lins.iter_mut().zip(ws) {
                lin.w = w;
            }
        }
        m
    }
}

/// erf, Abramowitz-Stegun 7.1.26 refined (|error| < 1.2e-7 in f64; well under f32 rounding).
fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = 1.0
        - t * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    (if x >= 0.0 { y } else { -y }) as f32
}

/// Token ids of each sentence and the reference embedding of each.
pub type Sentences = (Vec<Vec<u32>>, Vec<Vec<f32>>);

/// The committed sentences: token ids and the fp64 reference embeddings.
pub fn sentences() -> Result<Sentences, String> {
    let st = SafeTensors::deserialize(SENTENCES).map_err(|e| format!("sentence sample: {e}"))?;
    let ints = |name: &str| -> Result<(Vec<i32>, Vec<usize>), String> {
        let t = st
            .tensor(name)
            .map_err(|e| format!("sentence sample: {e}"))?;
        Ok((
            t.data()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            t.shape().to_vec(),
        ))
    };
    let (ids, shape) = ints("ids")?;
    let (lens, _) = ints("lens")?;
    let e = st
        .tensor("embedding")
        .map_err(|e| format!("sentence sample: {e}"))?;
    let emb: Vec<f32> = e
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let d = e.shape()[1];
    let sents = (0..shape[0])
        .map(|s| {
            ids[s * shape[1]..s * shape[1] + lens[s] as usize]
                .iter()
                .map(|&v| v as u32)
                .collect()
        })
        .collect();
    Ok((sents, emb.chunks(d).map(|c| c.to_vec()).collect()))
}

/// Where the weights are: `$ARCHSWEEP_MINILM`, else `target/minilm/model.safetensors` of the
/// workspace (`scripts/fetch_minilm.sh` puts them there).
pub fn weights_path() -> std::path::PathBuf {
    std::env::var_os("ARCHSWEEP_MINILM")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/minilm/model.safetensors")
        })
}

/// Cosine similarity of two f32 vectors (in f64).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| x as f64).collect() };
    gpu::reference::cosine(&wide(a), &wide(b))
}

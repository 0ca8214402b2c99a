//! GPU attention design models on top of the kernels of `gpu` and their calibrated latency model
//! ([`latency`]): `attention.masked` (prefill with a mask: which kernel, how fast, how much
//! memory) and `kvcache.pq` (decode over an fp16 or product-quantized KV cache).

use std::sync::Arc;

use crate::{cat, num};
use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};
use gpu::attention::{AttnProblem, AttnVariant};
use gpu::mask::{MaskSpec, TileLists};
use gpu::Dtype;

pub mod latency;
pub mod pq_accuracy;

/// `attention.masked`: masked prefill attention on the H100 kernels.
pub struct MaskedAttention {
    info: ModelInfo,
    lat: latency::LatencyModel,
}

impl MaskedAttention {
    /// The model with the committed calibration.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::categorical(
                "mask",
                &[
                    "full",
                    "causal",
                    "sliding_window",
                    "block_sparse",
                    "document",
                ],
                "causal",
                "mask family",
            ),
            ParamSpec::real(
                "keep",
                0.01,
                1.0,
                0.5,
                "",
                "block_sparse: fraction of 128x128 blocks kept",
            ),
            ParamSpec::int(
                "window",
                16,
                65536,
                1024,
                "tokens",
                "sliding_window: causal window width",
            ),
            ParamSpec::int(
                "docs",
                1,
                256,
                4,
                "",
                "document: number of equal documents packed in the sequence (causal within each)",
            ),
            ParamSpec::int(
                "seq",
                128,
                65536,
                4096,
                "tokens",
                "sequence length (queries = keys)",
            ),
            ParamSpec::int("batch", 1, 256, 2, "", "sequences"),
            ParamSpec::int("heads", 1, 128, 16, "", "query heads"),
            ParamSpec::categorical("head_dim", &["64", "128"], "128", "head dimension"),
            ParamSpec::categorical(
                "kernel",
                &[
                    "auto",
                    "block-m64-n32",
                    "block-m64-n64",
                    "block-m64-n128",
                    "block-m128-n32",
                    "block-m128-n64",
                    "block-m128-n128",
                    "wgmma-m64-n64",
                    "wgmma-m64-n128",
                    "wgmma-m128-n64",
                    "wgmma-m128-n128",
                    "wgmma-m64-n64-pipe",
                    "wgmma-m64-n128-pipe",
                    "wgmma-m128-n64-pipe",
                    "wgmma-m128-n128-pipe",
                    "rows",
                ],
                "auto",
                "kernel variant; auto = the fastest predicted",
            ),
        ];
        let metrics = vec![
            MetricSpec::new(
                "latency_us",
                "us",
                Direction::Minimize,
                "predicted kernel time (calibrated on H100 measurements)",
            ),
            MetricSpec::new(
                "useful_tflops",
                "TFLOP/s",
                Direction::Maximize,
                "unmasked work (4 d per allowed pair per head) over time",
            ),
            MetricSpec::new(
                "density",
                "",
                Direction::Minimize,
                "fraction of allowed query-key pairs",
            ),
            MetricSpec::new(
                "mask_kb",
                "KiB",
                Direction::Minimize,
                "mask storage: tile lists + per-column row ranges",
            ),
            MetricSpec::new(
                "memory_mb",
                "MiB",
                Direction::Minimize,
                "Q, K, V, O, LSE and mask in device memory",
            ),
        ];
        MaskedAttention {
            info: ModelInfo {
                name: "attention.masked".into(),
                version: "1".into(),
                summary: "masked prefill attention on H100: kernel variant, latency, memory (calibrated on measurements)".into(),
                params,
                metrics,
            },
            lat: latency::committed(),
        }
    }
}

impl Default for MaskedAttention {
    fn default() -> Self {
        Self::new()
    }
}

/// The mask a point describes.
pub fn mask_of(
    kind: &str,
    keep: f64,
    window: usize,
    docs: usize,
    seq: usize,
) -> Result<MaskSpec, ModelError> {
    Ok(match kind {
        "full" => MaskSpec::Full,
        "causal" => MaskSpec::Causal,
        "sliding_window" => MaskSpec::SlidingWindow {
            window,
            causal: true,
        },
        "block_sparse" => MaskSpec::BlockSparse {
            block: 128,
            keep,
            seed: 1,
            causal: false,
        },
        "document" => MaskSpec::Document {
            docs: vec![seq.div_ceil(docs); docs],
            causal: true,
        },
        k => return Err(ModelError::Infeasible(format!("unknown mask {k}"))),
    })
}

impl Model for MaskedAttention {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let seq = num(p, 4) as usize;
        let mask = mask_of(
            cat(p, 0),
            num(p, 1),
            num(p, 2) as usize,
            num(p, 3) as usize,
            seq,
        )?;
        let d: usize = cat(p, 7)
            .parse()
            .map_err(|_| ModelError::Infeasible("head_dim".into()))?;
        let prob = AttnProblem {
            batch: num(p, 5) as usize,
            heads: num(p, 6) as usize,
            kv_heads: num(p, 6) as usize,
            n_q: seq,
            n_kv: seq,
            head_dim: d,
            dtype: Dtype::F16,
        };
        let candidates: Vec<AttnVariant> = match cat(p, 8) {
            "auto" => latency::LatencyModel::auto_candidates(d),
            l => vec![AttnVariant::parse(l).map_err(|e| ModelError::Infeasible(e.to_string()))?],
        };
        let best = self.lat.best_attention_us(&prob, &mask, &candidates);
        let (t, v) = best.ok_or_else(|| {
            ModelError::Infeasible(format!(
                "no kernel variant supports {} at d = {d}",
                mask.label()
            ))
        })?;
        let (bm, bn) = v.tile().unwrap_or((64, 64));
        let lists = TileLists::build(&mask, prob.batch, seq, seq, bm, bn)
            .map_err(|e| ModelError::Infeasible(e.to_string()))?;
        let allowed = lists.allowed * if lists.batched { 1 } else { prob.batch as u64 };
        let density = allowed as f64 / (prob.batch * seq * seq) as f64;
        let mask_bytes = 4.0
            * (lists.ptr.len() + lists.idx.len() + lists.col_lo.len() + lists.col_hi.len()) as f64;
        let tensors = (2 * prob.q_len() + 2 * prob.kv_len()) as f64 * 2.0
            + (prob.batch * prob.heads * seq * 4) as f64;
        Ok(vec![
            t,
            prob.flops(allowed) / t / 1e6,
            density,
            mask_bytes / 1024.0,
            (tensors + mask_bytes) / (1 << 20) as f64,
        ])
    }
}

/// `kvcache.pq`: one decode step over an fp16 or product-quantized KV cache.
pub struct PqCacheModel {
    info: ModelInfo,
    lat: latency::LatencyModel,
}

impl PqCacheModel {
    /// The model with the committed calibration.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::categorical("cache", &["fp16", "pq"], "pq", "cache format"),
            ParamSpec::categorical(
                "m",
                &["16", "32", "64"],
                "64",
                "PQ subspaces (8-bit code each)",
            ),
            ParamSpec::int(
                "window",
                0,
                4096,
                128,
                "tokens",
                "recent tokens kept in fp16",
            ),
            ParamSpec::int(
                "context",
                1024,
                1 << 20,
                32768,
                "tokens",
                "cached tokens per sequence",
            ),
            ParamSpec::int("batch", 1, 512, 8, "", "sequences"),
            ParamSpec::int("heads", 1, 128, 32, "", "query heads (= KV heads)"),
            ParamSpec::categorical("head_dim", &["64", "128"], "128", "head dimension"),
        ];
        let metrics = vec![
            MetricSpec::new("latency_us", "us", Direction::Minimize, "predicted decode-step attention time (calibrated on H100)"),
            MetricSpec::new("cache_mb", "MiB", Direction::Minimize, "KV cache size incl. codebooks and window"),
            MetricSpec::new("bits_per_element", "bit", Direction::Minimize, "cache bits per K/V element"),
            MetricSpec::new("speedup_vs_fp16", "x", Direction::Maximize, "predicted fp16 decode time over this cache's"),
            MetricSpec::new(
                "attn_rel_err",
                "",
                Direction::Minimize,
                "attention-output relative error measured on real MiniLM activations (results/gpu/pq_accuracy.csv) at these bits per element and window fraction",
            ),
        ];
        PqCacheModel {
            info: ModelInfo {
                name: "kvcache.pq".into(),
                version: "1".into(),
                summary: "decode attention over fp16 or product-quantized KV caches: latency, memory (calibrated on H100) and accuracy (real MiniLM activations)".into(),
                params,
                metrics,
            },
            lat: latency::committed(),
        }
    }
}

impl Default for PqCacheModel {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for PqCacheModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let m: f64 = cat(p, 1).parse().unwrap_or(64.0);
        let window = num(p, 2);
        let (ctx_len, batch, heads) = (num(p, 3), num(p, 4), num(p, 5));
        let d: f64 = cat(p, 6).parse().unwrap_or(128.0);
        if window >= ctx_len {
            return Err(ModelError::Infeasible(format!(
                "window {window} must be below the context {ctx_len}"
            )));
        }
        let fp16_bytes = 2.0 * batch * heads * ctx_len * d * 2.0;
        let fp16_us = self.lat.decode_us(fp16_bytes);
        let (t, bytes, bits) = if cat(p, 0) == "fp16" {
            (fp16_us, fp16_bytes, 16.0)
        } else {
            let lq = ctx_len - window;
            let bytes = 2.0 * batch * heads * lq * m
                + 2.0 * batch * heads * window * d * 2.0
                + 2.0 * heads * 256.0 * d * 2.0;
            let t = self.lat.pq_us(batch * heads * lq, m, batch * heads, bytes)
                + self
                    .lat
                    .pq_window_us(2.0 * batch * heads * window * d * 2.0);
            (t, bytes, bytes * 8.0 / (2.0 * batch * heads * ctx_len * d))
        };
        let err = if cat(p, 0) == "fp16" {
            0.0
        } else {
            pq_accuracy::predicted_error(8.0 * m / d, window / ctx_len, 128).ok_or_else(|| {
                ModelError::Failed(format!(
                    "no accuracy measured at {} bits per element",
                    8.0 * m / d
                ))
            })?
        };
        Ok(vec![t, bytes / (1 << 20) as f64, bits, fp16_us / t, err])
    }
}

/// The GPU design models.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![
        Arc::new(MaskedAttention::new()),
        Arc::new(PqCacheModel::new()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(m: &dyn Model, pairs: &[(&str, Value)]) -> Vec<f64> {
        let info = m.info();
        let mut point: Vec<Value> = info.params.iter().map(|p| p.default.clone()).collect();
        for (k, v) in pairs {
            point[info.param_index(k).unwrap()] = v.clone();
        }
        m.evaluate(&point, &EvalContext { seed: 0 }).unwrap()
    }

    #[test]
    fn masks_that_skip_work_are_predicted_faster() {
        let m = MaskedAttention::new();
        let full = eval(&m, &[("mask", Value::Cat("full".into()))]);
        let causal = eval(&m, &[("mask", Value::Cat("causal".into()))]);
        let sparse = eval(
            &m,
            &[
                ("mask", Value::Cat("block_sparse".into())),
                ("keep", Value::Real(0.25)),
            ],
        );
        assert!(causal[0] < 0.7 * full[0], "{causal:?} vs {full:?}");
        assert!(sparse[0] < 0.5 * full[0]);
        assert!((full[2] - 1.0).abs() < 1e-12 && (causal[2] - 0.5).abs() < 0.01);
        assert!(
            full[1] > 100.0 && full[1] < 1000.0,
            "useful TFLOP/s {}",
            full[1]
        );
    }

    #[test]
    fn pq_caches_are_smaller_and_faster_than_fp16() {
        let m = PqCacheModel::new();
        let fp16 = eval(&m, &[("cache", Value::Cat("fp16".into()))]);
        let pq16 = eval(&m, &[("m", Value::Cat("16".into()))]);
        let pq64 = eval(&m, &[("m", Value::Cat("64".into()))]);
        assert_eq!(fp16[2], 16.0);
        assert!((fp16[3] - 1.0).abs() < 1e-12);
        assert!(pq64[2] > 3.9 && pq64[2] < 4.2, "bits {}", pq64[2]);
        assert!(pq16[1] < pq64[1] && pq64[1] < fp16[1] / 3.0);
        assert!(pq16[3] > pq64[3] && pq64[3] > 1.0, "{pq16:?} {pq64:?}");
        // Fewer bits: faster but less accurate.
        assert!(pq16[4] > pq64[4] && pq64[4] > 0.0 && fp16[4] == 0.0);
    }
}

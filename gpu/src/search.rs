//! Two-stage kernel selection for masked attention: an analytical model ranks the variants
//! (stage 1, no device time), measurement decides among the best few (stage 2, in the bench).
//!
//! The model counts what each variant really does for a given mask: visited tiles (full and
//! partial), tensor-core FLOPs including the masked-out work inside partial tiles, exponentials,
//! K/V bytes staged through shared memory, and the spread of work over the multiprocessors
//! (wave quantisation and the heaviest block). Its ceilings are parameters ([`Ceilings`]);
//! `models::attention` calibrates them on committed measurements.

use crate::attention::{AttnProblem, AttnVariant};
use crate::mask::{MaskSpec, TileLists};

/// Device ceilings the model divides by.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ceilings {
    /// Multiprocessors.
    pub sms: f64,
    /// Dense fp16/bf16 tensor-core rate through mma.sync, TFLOP/s (whole chip).
    pub mma_tflops: f64,
    /// Dense fp16/bf16 rate through Hopper's wgmma, TFLOP/s.
    #[serde(default = "default_wgmma")]
    pub wgmma_tflops: f64,
    /// Exponentials (ex2) per second per multiprocessor, in units of 1e9.
    pub exp_gops_per_sm: f64,
    /// L2 -> shared memory bandwidth, TB/s (whole chip).
    pub l2_tbps: f64,
    /// Fixed cost per visited tile (barrier, pipeline bubble, softmax bookkeeping), ns.
    pub tile_overhead_ns: f64,
    /// Kernel launch overhead, µs.
    pub launch_us: f64,
    /// CUDA-core FMA rate for the row-wise kernel, TFLOP/s.
    pub fma_tflops: f64,
}

impl Ceilings {
    /// Starting values for an H100 SXM from its datasheet and first-principles rates (mma.sync
    /// reaches about two thirds of the wgmma peak); calibration replaces them.
    pub fn h100() -> Self {
        Ceilings {
            sms: 132.0,
            mma_tflops: 600.0,
            wgmma_tflops: default_wgmma(),
            exp_gops_per_sm: 16.0 * 1.75,
            l2_tbps: 7.0,
            tile_overhead_ns: 150.0,
            launch_us: 4.0,
            fma_tflops: 60.0,
        }
    }
}

fn default_wgmma() -> f64 {
    800.0
}

/// Predicted time of one variant, with the terms that produced it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The variant.
    pub variant: AttnVariant,
    /// Predicted kernel time, µs.
    pub time_us: f64,
    /// Tiles visited over the whole problem (0 for the row-wise kernel).
    pub tiles: u64,
    /// Of which partial.
    pub partial: u64,
    /// Tensor-core (or CUDA-core) FLOPs actually executed.
    pub executed_flops: f64,
}

/// Predicts the time of a block variant from its tile lists.
pub fn predict_block(
    p: &AttnProblem,
    variant: AttnVariant,
    lists: &TileLists,
    c: &Ceilings,
) -> Prediction {
    let (bm, bn, rate, small_block) = match variant {
        AttnVariant::Block { warps, block_n } => (16 * warps, block_n, c.mma_tflops, warps <= 4),
        AttnVariant::Wgmma {
            warpgroups,
            block_n,
            ..
        } => (64 * warpgroups, block_n, c.wgmma_tflops, warpgroups <= 1),
        AttnVariant::Rows => panic!("predict_block needs a tile variant"),
    };
    let (bm, bn, d) = (bm as f64, bn as f64, p.head_dim as f64);
    let reps = if lists.batched {
        p.heads
    } else {
        p.heads * p.batch
    } as f64;
    // Per visited tile: QK^T and PV on tensor cores, exponentials, K and V staged from L2.
    let mma_s = 4.0 * bm * bn * d / (rate * 1e12 / c.sms);
    let exp_s = bm * bn / (c.exp_gops_per_sm * 1e9);
    let load_s = 2.0 * bn * d * 2.0 / (c.l2_tbps * 1e12 / c.sms);
    // A block of 4 warps leaves room for a second resident block, which hides its loads and
    // softmax behind the other's tensor-core work; with 8 warps only the cp.async pipeline does.
    let tile_s = if small_block {
        (mma_s + exp_s).max(load_s) + c.tile_overhead_ns * 1e-9 * 0.5
    } else {
        (mma_s + exp_s).max(load_s) + c.tile_overhead_ns * 1e-9
    };
    let per_list: Vec<u64> = lists.ptr.windows(2).map(|w| (w[1] - w[0]) as u64).collect();
    let tiles: u64 = per_list.iter().sum();
    let (_, partial) = lists.tile_counts();
    let total_tiles = tiles as f64 * reps;
    let heaviest = per_list.iter().copied().max().unwrap_or(0) as f64;
    // Q tile load and output write per block.
    let block_fixed_s = (bm * d * 2.0 * 2.0) / (c.l2_tbps * 1e12 / c.sms);
    let blocks = per_list.len() as f64 * reps;
    let spread = (total_tiles * tile_s + blocks * block_fixed_s) / c.sms;
    let tail = heaviest * tile_s + block_fixed_s;
    let time = spread.max(tail) + c.launch_us * 1e-6;
    Prediction {
        variant,
        time_us: time * 1e6,
        tiles: tiles * reps as u64,
        partial: partial * reps as u64,
        executed_flops: total_tiles * 4.0 * bm * bn * d,
    }
}

/// Predicts the row-wise kernel from the number of allowed elements per head.
pub fn predict_rows(p: &AttnProblem, allowed_per_head: u64, c: &Ceilings) -> Prediction {
    let d = p.head_dim as f64;
    let elems = allowed_per_head as f64 * p.heads as f64;
    let flops = 4.0 * d * elems;
    // Each allowed element reads one K and one V row (2 d elements of 2 bytes) through L2.
    let bytes = elems * 4.0 * d;
    let time = (flops / (c.fma_tflops * 1e12)).max(bytes / (c.l2_tbps * 1e12)) + c.launch_us * 1e-6;
    Prediction {
        variant: AttnVariant::Rows,
        time_us: time * 1e6,
        tiles: 0,
        partial: 0,
        executed_flops: flops,
    }
}

/// Stage 1: predictions for every supported variant (the wgmma ones on Hopper), fastest first. The row-wise kernel is
/// included when the mask is an arbitrary element mask or its density is below `rows_density`.
pub fn rank(
    p: &AttnProblem,
    mask: &MaskSpec,
    c: &Ceilings,
    rows_density: f64,
    hopper: bool,
) -> Vec<Prediction> {
    let mut out = Vec::new();
    let mut allowed = None;
    let wgmma = if hopper {
        AttnVariant::wgmma_candidates()
    } else {
        Vec::new()
    };
    for v in AttnVariant::block_candidates(p.head_dim)
        .into_iter()
        .chain(wgmma)
    {
        let Some((bm, bn)) = v.tile() else {
            continue;
        };
        if let Ok(lists) = TileLists::build(mask, p.batch, p.n_q, p.n_kv, bm, bn) {
            allowed = Some(lists.allowed * if lists.batched { 1 } else { p.batch as u64 });
            out.push(predict_block(p, v, &lists, c));
        }
    }
    let density = crate::mask::density_estimate(mask, p.n_q, p.n_kv, 20_000);
    if allowed.is_none() || density < rows_density {
        let per_head =
            allowed.unwrap_or_else(|| (density * (p.n_q * p.n_kv * p.batch) as f64) as u64);
        out.push(predict_rows(p, per_head, c));
    }
    out.sort_by(|a, b| a.time_us.total_cmp(&b.time_us));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dtype;

    fn prob(n: usize) -> AttnProblem {
        AttnProblem {
            batch: 2,
            heads: 16,
            kv_heads: 16,
            n_q: n,
            n_kv: n,
            head_dim: 128,
            dtype: Dtype::F16,
        }
    }

    #[test]
    fn causal_costs_about_half_of_full_and_sparser_masks_less() {
        let c = Ceilings::h100();
        let full = rank(&prob(4096), &MaskSpec::Full, &c, 0.01, false)[0].time_us;
        let causal = rank(&prob(4096), &MaskSpec::Causal, &c, 0.01, false)[0].time_us;
        let sparse = rank(
            &prob(4096),
            &MaskSpec::BlockSparse {
                block: 128,
                keep: 0.2,
                seed: 1,
                causal: false,
            },
            &c,
            0.01,
            false,
        )[0]
        .time_us;
        assert!(
            causal < 0.7 * full && causal > 0.4 * full,
            "causal {causal} full {full}"
        );
        assert!(sparse < 0.5 * full, "sparse {sparse} full {full}");
        // Time grows about quadratically with the sequence.
        let full2 = rank(&prob(8192), &MaskSpec::Full, &c, 0.01, false)[0].time_us;
        assert!(
            full2 > 3.0 * full && full2 < 5.0 * full,
            "{full2} vs {full}"
        );
    }

    #[test]
    fn very_sparse_element_masks_go_row_wise() {
        let c = Ceilings::h100();
        let r = rank(
            &prob(2048),
            &MaskSpec::Random {
                density: 0.002,
                seed: 3,
            },
            &c,
            0.01,
            false,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].variant, AttnVariant::Rows);
        // A narrow sliding window is tile-friendly: the block kernel is predicted faster.
        let r = rank(
            &prob(4096),
            &MaskSpec::SlidingWindow {
                window: 256,
                causal: true,
            },
            &c,
            0.5,
            false,
        );
        assert!(matches!(r[0].variant, AttnVariant::Block { .. }), "{r:?}");
    }
}

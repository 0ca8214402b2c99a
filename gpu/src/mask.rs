//! One mask representation for masked attention.
//!
//! A mask is described by a [`MaskSpec`] (causal, sliding window, block-sparse, variable length,
//! packed documents, or an arbitrary element mask). For the block kernel it compiles to
//! [`TileLists`]: per query tile, the key tiles that are not empty, each flagged full or partial
//! (the FlexAttention BlockMask idea), plus per key column the allowed query-row range
//! `[lo, hi)` (the FlashMask idea, O(N) memory) used only inside partial tiles. A mask that has
//! no per-column interval form (an arbitrary element mask) compiles to [`RowLists`] — per query
//! row the allowed key indices — for the row-wise kernel, which takes any mask.
//!
//! Seeded masks draw their blocks or elements from [`splitmix64`], so the peer script
//! (`scripts/gpu_peers.py`) builds exactly the same mask.

use crate::{GpuError, Result};
use rayon::prelude::*;

/// The splitmix64 finaliser: the deterministic hash behind seeded masks.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform number in [0, 1) for a seeded pair (a, b).
pub fn hash_unit(seed: u64, a: u64, b: u64) -> f64 {
    let h = splitmix64(splitmix64(seed ^ splitmix64(a)) ^ b);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn yes() -> bool {
    true
}

/// A mask over (query row i, key column j), per batch element.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MaskSpec {
    /// Every key for every query.
    Full,
    /// j <= i (top-left aligned, as PyTorch's `is_causal`).
    Causal,
    /// Causal: i - window < j <= i; otherwise |i - j| < window.
    SlidingWindow {
        /// Window width in tokens.
        window: usize,
        /// One-sided (causal) window.
        #[serde(default = "yes")]
        causal: bool,
    },
    /// Blocks of `block` x `block`: block (qb, kb) is kept when `hash_unit(seed, qb, kb) < keep`
    /// or qb == kb; with `causal`, only kb <= qb and elements j <= i.
    BlockSparse {
        /// Block size in tokens.
        block: usize,
        /// Fraction of blocks kept (sparsity = 1 - keep).
        keep: f64,
        /// Seed of the block pattern.
        seed: u64,
        /// Combine with a causal mask.
        #[serde(default)]
        causal: bool,
    },
    /// Padded batches (BERT style): batch element b has `lens[b % lens.len()]` valid tokens; rows
    /// and columns beyond it are masked.
    VarLen {
        /// Valid lengths.
        lens: Vec<usize>,
    },
    /// Documents packed along the sequence (lengths in order, the last one extended to the end):
    /// attention stays within a document, optionally causal.
    Document {
        /// Document lengths.
        docs: Vec<usize>,
        /// Causal within each document.
        #[serde(default = "yes")]
        causal: bool,
    },
    /// Causal on the global positions of sequence shards (sequence-parallel attention): local
    /// row i is global position `q_starts[i / run] + i % run`, column j likewise with
    /// `k_starts`; (i, j) is allowed when the key's position does not exceed the query's.
    /// `q_starts` ascend, so each column's allowed rows are a suffix.
    Shards {
        /// Tokens per run (chunk).
        run: usize,
        /// Global start of each query run, ascending.
        q_starts: Vec<usize>,
        /// Global start of each key run.
        k_starts: Vec<usize>,
    },
    /// Arbitrary element mask: (i, j) allowed when `hash_unit(seed, i, j) < density` or i == j.
    Random {
        /// Fraction of allowed elements.
        density: f64,
        /// Seed.
        seed: u64,
    },
}

impl MaskSpec {
    /// Short name for tables and CSV files.
    pub fn label(&self) -> String {
        match self {
            MaskSpec::Full => "full".into(),
            MaskSpec::Causal => "causal".into(),
            MaskSpec::SlidingWindow { window, causal } => {
                format!("sliding{}{}", window, if *causal { "" } else { "-bidir" })
            }
            MaskSpec::BlockSparse {
                block,
                keep,
                causal,
                ..
            } => {
                format!(
                    "blocksparse{}-keep{:.2}{}",
                    block,
                    keep,
                    if *causal { "-causal" } else { "" }
                )
            }
            MaskSpec::VarLen { .. } => "varlen".into(),
            MaskSpec::Document { docs, causal } => {
                format!(
                    "document{}{}",
                    docs.len(),
                    if *causal { "-causal" } else { "" }
                )
            }
            MaskSpec::Random { density, .. } => format!("random{density:.4}"),
            MaskSpec::Shards { run, .. } => format!("shards{run}"),
        }
    }

    /// Checks the parameters against the problem size.
    pub fn validate(&self, n_q: usize, n_kv: usize) -> Result<()> {
        let bad = |why: String| Err(GpuError::Config(format!("mask {}: {why}", self.label())));
        match self {
            MaskSpec::SlidingWindow { window: 0, .. } => bad("window must be >= 1".into()),
            MaskSpec::BlockSparse { block, keep, .. } => {
                if *block == 0 || block % 16 != 0 {
                    bad(format!("block {block} must be a positive multiple of 16"))
                } else if !(0.0..=1.0).contains(keep) {
                    bad(format!("keep {keep} must lie in [0, 1]"))
                } else {
                    Ok(())
                }
            }
            MaskSpec::VarLen { lens }
                if lens.is_empty() || lens.iter().any(|&l| l > n_q.min(n_kv)) =>
            {
                bad(format!(
                    "lens {lens:?} must be non-empty and at most the sequence length"
                ))
            }
            MaskSpec::Document { docs, .. } if docs.is_empty() || docs.contains(&0) => {
                bad("docs must be non-empty positive lengths".into())
            }
            MaskSpec::Random { density, .. } if !(0.0..=1.0).contains(density) => {
                bad(format!("density {density} must lie in [0, 1]"))
            }
            _ if n_q == 0 || n_kv == 0 => bad("empty sequence".into()),
            MaskSpec::Shards {
                run,
                q_starts,
                k_starts,
            } => {
                if *run == 0 || q_starts.len() * run != n_q || k_starts.len() * run != n_kv {
                    bad(format!(
                        "{} query and {} key runs of {run} tokens do not cover {n_q} queries and {n_kv} keys",
                        q_starts.len(),
                        k_starts.len()
                    ))
                } else if q_starts.windows(2).any(|w| w[1] < w[0] + run) {
                    bad(format!(
                        "query runs {q_starts:?} must ascend without overlap"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Whether the mask differs between batch elements.
    pub fn batched(&self) -> bool {
        matches!(self, MaskSpec::VarLen { lens } if lens.len() > 1)
    }

    fn doc_bounds(docs: &[usize], n: usize, j: usize) -> (usize, usize) {
        let mut s = 0;
        for (k, &d) in docs.iter().enumerate() {
            let e = if k + 1 == docs.len() {
                n.max(s + d)
            } else {
                s + d
            };
            if j < e {
                return (s, e);
            }
            s = e;
        }
        (s, n.max(s))
    }

    /// Allowed query rows [lo, hi) of key column `j` for batch element `b`, ignoring any
    /// block-level pattern; `None` for masks without a per-column interval form.
    pub fn column_range(&self, b: usize, j: usize, n_q: usize) -> Option<(usize, usize)> {
        let r = match self {
            MaskSpec::Full => (0, n_q),
            MaskSpec::Causal => (j, n_q),
            MaskSpec::SlidingWindow {
                window,
                causal: true,
            } => (j, (j + window).min(n_q)),
            MaskSpec::SlidingWindow {
                window,
                causal: false,
            } => ((j + 1).saturating_sub(*window), (j + window).min(n_q)),
            MaskSpec::BlockSparse { causal, .. } => (if *causal { j } else { 0 }, n_q),
            MaskSpec::VarLen { lens } => {
                let len = lens[b % lens.len()];
                if j < len {
                    (0, len.min(n_q))
                } else {
                    (0, 0)
                }
            }
            MaskSpec::Document { docs, causal } => {
                let (s, e) = Self::doc_bounds(docs, n_q, j);
                (if *causal { j } else { s }, e.min(n_q))
            }
            MaskSpec::Random { .. } => return None,
            MaskSpec::Shards {
                run,
                q_starts,
                k_starts,
            } => {
                let kpos = k_starts[j / run] + j % run;
                let lo = q_starts
                    .iter()
                    .enumerate()
                    .find(|(_, &s)| s + run > kpos)
                    .map_or(n_q, |(a, &s)| a * run + kpos.saturating_sub(s));
                (lo, n_q)
            }
        };
        Some((r.0.min(n_q), r.1.max(r.0.min(n_q))))
    }

    /// Block-level pattern: whether block (qb, kb) of size `block` is kept (BlockSparse only;
    /// always true otherwise).
    pub fn block_kept(&self, qb: usize, kb: usize) -> bool {
        match self {
            MaskSpec::BlockSparse {
                keep, seed, causal, ..
            } => {
                if *causal && kb > qb {
                    false
                } else {
                    qb == kb || hash_unit(*seed, qb as u64, kb as u64) < *keep
                }
            }
            _ => true,
        }
    }

    /// Whether query row i may attend key column j in batch element b.
    pub fn allowed(&self, b: usize, i: usize, j: usize, n_q: usize, n_kv: usize) -> bool {
        if i >= n_q || j >= n_kv {
            return false;
        }
        match self {
            MaskSpec::Random { density, seed } => {
                i == j || hash_unit(*seed, i as u64, j as u64) < *density
            }
            MaskSpec::BlockSparse { block, .. } => {
                let (lo, hi) = self.column_range(b, j, n_q).expect("interval form");
                self.block_kept(i / block, j / block) && lo <= i && i < hi
            }
            _ => {
                let (lo, hi) = self.column_range(b, j, n_q).expect("interval form");
                lo <= i && i < hi
            }
        }
    }
}

/// The block kernel's form of a mask for one tile shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TileLists {
    /// Query rows per tile.
    pub block_m: usize,
    /// Key columns per tile.
    pub block_n: usize,
    /// Query tiles per sequence.
    pub n_qtiles: usize,
    /// Key tiles per sequence.
    pub n_ktiles: usize,
    /// Whether lists (and ranges) differ per batch element.
    pub batched: bool,
    /// CSR offsets: lists of (batch element, query tile) `b * n_qtiles + qt`.
    pub ptr: Vec<i32>,
    /// Entries `kt << 1 | partial`, ascending kt within each list.
    pub idx: Vec<i32>,
    /// Per (batch element, key column): first allowed query row.
    pub col_lo: Vec<i32>,
    /// Per (batch element, key column): one past the last allowed query row.
    pub col_hi: Vec<i32>,
    /// Allowed (query, key) elements, summed over the batch elements the lists cover.
    pub allowed: u64,
}

impl TileLists {
    /// Compiles `mask` for tiles of `block_m` x `block_n` over `batch` sequences of `n_q`
    /// queries and `n_kv` keys.
    pub fn build(
        mask: &MaskSpec,
        batch: usize,
        n_q: usize,
        n_kv: usize,
        block_m: usize,
        block_n: usize,
    ) -> Result<TileLists> {
        mask.validate(n_q, n_kv)?;
        if let MaskSpec::BlockSparse { block, .. } = mask {
            if block % block_m != 0 || block % block_n != 0 {
                return Err(GpuError::unsupported(
                    "tile shape",
                    format!(
                        "block-sparse mask blocks of {block} must be multiples of the tile ({block_m} x {block_n})"
                    ),
                ));
            }
        }
        if mask.column_range(0, 0, n_q).is_none() {
            return Err(GpuError::unsupported(
                "mask",
                format!(
                    "{} has no per-column row-range form; use the row-wise kernel",
                    mask.label()
                ),
            ));
        }
        let nb = if mask.batched() { batch } else { 1 };
        let n_qtiles = n_q.div_ceil(block_m);
        let n_ktiles = n_kv.div_ceil(block_n);
        let mut col_lo = Vec::with_capacity(nb * n_kv);
        let mut col_hi = Vec::with_capacity(nb * n_kv);
        for b in 0..nb {
            for j in 0..n_kv {
                let (lo, hi) = mask.column_range(b, j, n_q).expect("interval form");
                col_lo.push(lo as i32);
                col_hi.push(hi as i32);
            }
        }
        let block = match mask {
            MaskSpec::BlockSparse { block, .. } => Some(*block),
            _ => None,
        };
        // Per (b, qt): entries and allowed-element counts, in parallel over lists.
        let lists: Vec<(Vec<i32>, u64)> = (0..nb * n_qtiles)
            .into_par_iter()
            .map(|list| {
                let (b, qt) = (list / n_qtiles, list % n_qtiles);
                let r0 = qt * block_m;
                let r1 = (r0 + block_m).min(n_q);
                let mut entries = Vec::new();
                let mut allowed = 0u64;
                for kt in 0..n_ktiles {
                    if let Some(bs) = block {
                        if !mask.block_kept(r0 / bs, kt * block_n / bs) {
                            continue;
                        }
                    }
                    let (mut full, mut count) = (true, 0u64);
                    for j in kt * block_n..(kt + 1) * block_n {
                        if j >= n_kv {
                            full = false;
                            continue;
                        }
                        let lo = col_lo[b * n_kv + j] as usize;
                        let hi = col_hi[b * n_kv + j] as usize;
                        let c = hi.min(r1).saturating_sub(lo.max(r0));
                        count += c as u64;
                        if lo > r0 || hi < r1 {
                            full = false;
                        }
                    }
                    if count > 0 {
                        entries.push(((kt as i32) << 1) | i32::from(!full));
                        allowed += count;
                    }
                }
                (entries, allowed)
            })
            .collect();
        let mut ptr = Vec::with_capacity(lists.len() + 1);
        let mut idx = Vec::new();
        let mut allowed = 0;
        ptr.push(0);
        for (e, a) in lists {
            idx.extend(e);
            ptr.push(idx.len() as i32);
            allowed += a;
        }
        Ok(TileLists {
            block_m,
            block_n,
            n_qtiles,
            n_ktiles,
            batched: nb > 1,
            ptr,
            idx,
            col_lo,
            col_hi,
            allowed,
        })
    }

    /// Tiles visited (summed over lists) and how many of them are partial.
    pub fn tile_counts(&self) -> (u64, u64) {
        let partial = self.idx.iter().filter(|&&e| e & 1 == 1).count() as u64;
        (self.idx.len() as u64, partial)
    }
}

/// The row-wise kernel's form of a mask: per (batch element, query row) the allowed keys.
#[derive(Debug, Clone, PartialEq)]
pub struct RowLists {
    /// Whether lists differ per batch element.
    pub batched: bool,
    /// CSR offsets per `b * n_q + i`.
    pub ptr: Vec<i32>,
    /// Allowed key indices, ascending.
    pub idx: Vec<i32>,
}

impl RowLists {
    /// Enumerates the allowed keys of every row (O(n_q n_kv) predicate evaluations).
    pub fn build(mask: &MaskSpec, batch: usize, n_q: usize, n_kv: usize) -> Result<RowLists> {
        mask.validate(n_q, n_kv)?;
        let nb = if mask.batched() { batch } else { 1 };
        let rows: Vec<Vec<i32>> = (0..nb * n_q)
            .into_par_iter()
            .map(|r| {
                let (b, i) = (r / n_q, r % n_q);
                (0..n_kv)
                    .filter(|&j| mask.allowed(b, i, j, n_q, n_kv))
                    .map(|j| j as i32)
                    .collect()
            })
            .collect();
        let total: usize = rows.iter().map(Vec::len).sum();
        if total > i32::MAX as usize {
            return Err(GpuError::unsupported(
                "row-wise mask",
                format!("{total} allowed elements exceed the 32-bit index range"),
            ));
        }
        let mut ptr = Vec::with_capacity(rows.len() + 1);
        let mut idx = Vec::with_capacity(total);
        ptr.push(0);
        for r in rows {
            idx.extend(r);
            ptr.push(idx.len() as i32);
        }
        Ok(RowLists {
            batched: nb > 1,
            ptr,
            idx,
        })
    }
}

/// Fraction of allowed elements, estimated from `samples` random positions of batch element 0
/// (exact counting needs the tile lists); used by the analytical model to prune kernels.
pub fn density_estimate(mask: &MaskSpec, n_q: usize, n_kv: usize, samples: u64) -> f64 {
    let hits = (0..samples)
        .filter(|&s| {
            let i = (splitmix64(s * 2 + 1) % n_q as u64) as usize;
            let j = (splitmix64(s * 2 + 2) % n_kv as u64) as usize;
            mask.allowed(0, i, j, n_q, n_kv)
        })
        .count();
    hits as f64 / samples as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_masks() -> Vec<MaskSpec> {
        vec![
            MaskSpec::Full,
            MaskSpec::Causal,
            MaskSpec::SlidingWindow {
                window: 37,
                causal: true,
            },
            MaskSpec::SlidingWindow {
                window: 50,
                causal: false,
            },
            MaskSpec::BlockSparse {
                block: 64,
                keep: 0.4,
                seed: 7,
                causal: false,
            },
            MaskSpec::BlockSparse {
                block: 128,
                keep: 0.5,
                seed: 3,
                causal: true,
            },
            MaskSpec::VarLen {
                lens: vec![200, 77, 250],
            },
            MaskSpec::Document {
                docs: vec![40, 100, 30],
                causal: true,
            },
            MaskSpec::Document {
                docs: vec![64, 64],
                causal: false,
            },
        ]
    }

    /// Decoding the tile lists + column ranges element by element gives back the predicate.
    #[test]
    fn tile_lists_reproduce_the_mask_exactly() {
        let (batch, n_q, n_kv) = (3, 250, 256);
        for mask in all_masks() {
            for (bm, bn) in [(64, 64), (128, 32), (64, 128)] {
                let t = match TileLists::build(&mask, batch, n_q, n_kv, bm, bn) {
                    Ok(t) => t,
                    // Block-sparse blocks smaller than the tile: refused, with the reason.
                    Err(e) if matches!(mask, MaskSpec::BlockSparse { block, .. } if block % bm != 0 || block % bn != 0) =>
                    {
                        assert!(e.to_string().contains("multiples of the tile"));
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                };
                let mut allowed = 0u64;
                for b in 0..if t.batched { batch } else { 1 } {
                    let mut dense = vec![false; n_q * n_kv];
                    for qt in 0..t.n_qtiles {
                        let l = b * t.n_qtiles + qt;
                        let mut last = -1;
                        for &e in &t.idx[t.ptr[l] as usize..t.ptr[l + 1] as usize] {
                            let kt = (e >> 1) as usize;
                            assert!(kt as i32 > last, "{}: ascending tiles", mask.label());
                            last = kt as i32;
                            for i in qt * bm..((qt + 1) * bm).min(n_q) {
                                for j in kt * bn..((kt + 1) * bn).min(n_kv) {
                                    let lo = t.col_lo[b * n_kv + j];
                                    let hi = t.col_hi[b * n_kv + j];
                                    let ok = e & 1 == 0 || (lo <= i as i32 && (i as i32) < hi);
                                    if e & 1 == 0 {
                                        assert!(
                                            lo <= i as i32 && (i as i32) < hi,
                                            "full tile has a masked element"
                                        );
                                    }
                                    dense[i * n_kv + j] = ok;
                                }
                            }
                        }
                    }
                    for i in 0..n_q {
                        for j in 0..n_kv {
                            let want = mask.allowed(b, i, j, n_q, n_kv);
                            assert_eq!(
                                dense[i * n_kv + j],
                                want,
                                "{} tile {bm}x{bn} b{b} ({i},{j})",
                                mask.label()
                            );
                            allowed += u64::from(want);
                        }
                    }
                }
                assert_eq!(t.allowed, allowed, "{}", mask.label());
            }
        }
    }

    /// Shard masks (zigzag and contiguous sequence-parallel blocks) compile exactly too, and
    /// equal causal attention on the global positions.
    #[test]
    fn shard_masks_follow_global_positions() {
        let run = 96;
        for (q_starts, k_starts) in [
            (vec![96, 672], vec![0, 768]),  // zigzag: rank 1 of 4 against rank 0
            (vec![96, 672], vec![96, 672]), // zigzag diagonal
            (vec![0, 768], vec![288, 480]), // zigzag: rank 0 against rank 3
            (vec![192], vec![192]),         // contiguous diagonal
            (vec![192], vec![384]),         // contiguous, nothing allowed
        ] {
            let (n_q, n_kv) = (run * q_starts.len(), run * k_starts.len());
            let mask = MaskSpec::Shards {
                run,
                q_starts: q_starts.clone(),
                k_starts: k_starts.clone(),
            };
            let gq = |i: usize| q_starts[i / run] + i % run;
            let gk = |j: usize| k_starts[j / run] + j % run;
            for i in 0..n_q {
                for j in 0..n_kv {
                    assert_eq!(mask.allowed(0, i, j, n_q, n_kv), gk(j) <= gq(i), "{i} {j}");
                }
            }
            for (bm, bn) in [(64, 64), (128, 128), (64, 32)] {
                let t = TileLists::build(&mask, 1, n_q, n_kv, bm, bn).unwrap();
                let want: u64 = (0..n_q)
                    .map(|i| (0..n_kv).filter(|&j| gk(j) <= gq(i)).count() as u64)
                    .sum();
                assert_eq!(t.allowed, want);
            }
        }
        let bad = MaskSpec::Shards {
            run: 64,
            q_starts: vec![128, 0],
            k_starts: vec![0, 64],
        };
        assert!(bad
            .validate(128, 128)
            .unwrap_err()
            .to_string()
            .contains("ascend"));
        assert!(bad
            .validate(100, 128)
            .unwrap_err()
            .to_string()
            .contains("do not cover"));
    }

    #[test]
    fn empty_tiles_are_skipped_and_full_tiles_unmasked() {
        let t = TileLists::build(&MaskSpec::Causal, 1, 1024, 1024, 128, 64).unwrap();
        // Query tile qt covers key tiles 0 ..= 2 qt + 1; only the two on the diagonal are partial.
        let (tiles, partial) = t.tile_counts();
        assert_eq!(tiles, (0..8).map(|qt| 2 * qt + 2).sum::<u64>());
        assert_eq!(partial, 16);
        assert_eq!(t.allowed, 1024 * 1025 / 2);
        let full = TileLists::build(&MaskSpec::Full, 1, 1000, 1000, 64, 64).unwrap();
        // Only the last key tile (columns past 1000) needs element masking.
        assert_eq!(full.tile_counts(), (16 * 16, 16));
    }

    #[test]
    fn row_lists_match_the_predicate() {
        let (n_q, n_kv) = (97, 130);
        let mut masks: Vec<MaskSpec> = all_masks()
            .into_iter()
            .filter(|m| !matches!(m, MaskSpec::VarLen { .. }))
            .collect();
        masks.push(MaskSpec::VarLen { lens: vec![90, 7] });
        masks.push(MaskSpec::Random {
            density: 0.05,
            seed: 11,
        });
        for mask in masks {
            let r = RowLists::build(&mask, 3, n_q, n_kv).unwrap();
            for b in 0..if r.batched { 3 } else { 1 } {
                for i in 0..n_q {
                    let l = b * n_q + i;
                    let got: Vec<i32> = r.idx[r.ptr[l] as usize..r.ptr[l + 1] as usize].to_vec();
                    let want: Vec<i32> = (0..n_kv)
                        .filter(|&j| mask.allowed(b, i, j, n_q, n_kv))
                        .map(|j| j as i32)
                        .collect();
                    assert_eq!(got, want, "{} row {i}", mask.label());
                }
            }
        }
    }

    #[test]
    fn bad_masks_are_rejected_with_the_reason() {
        let e = TileLists::build(
            &MaskSpec::Random {
                density: 0.1,
                seed: 1,
            },
            1,
            64,
            64,
            64,
            64,
        )
        .unwrap_err();
        assert!(e.to_string().contains("row-wise"), "{e}");
        let e = TileLists::build(
            &MaskSpec::BlockSparse {
                block: 64,
                keep: 0.5,
                seed: 1,
                causal: false,
            },
            1,
            256,
            256,
            128,
            64,
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiples of the tile"), "{e}");
        let e = MaskSpec::SlidingWindow {
            window: 0,
            causal: true,
        }
        .validate(10, 10)
        .unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        assert!(MaskSpec::BlockSparse {
            block: 64,
            keep: 1.5,
            seed: 0,
            causal: false
        }
        .validate(64, 64)
        .is_err());
    }

    #[test]
    fn seeded_hash_is_stable() {
        // Pinned values: the peer script's Python implementation must give the same.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let u = hash_unit(7, 3, 5);
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, hash_unit(7, 3, 5));
    }
}

//! Decode attention on the GPU: one query token per sequence over a long KV cache, split-KV
//! (flash-decoding) with log-sum-exp merging, over an fp16/bf16 cache or a product-quantized one
//! (with an fp16 window of the most recent tokens).

use crate::attention::{download, random_elems, upload};
use crate::device::Gpu;
use crate::kernels::Source;
use crate::pq::{Codebook, CENTROIDS};
use crate::reference::{attention_row, ErrorStats};
use crate::{Dtype, GpuError, Result};
use cudarc::driver::sys::CUfunction_attribute_enum as FnAttr;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Shape of a decode step. Q: `[batch, heads, head_dim]`; cache K, V:
/// `[batch, kv_heads, len, head_dim]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DecodeProblem {
    /// Sequences.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Cached tokens per sequence.
    pub len: usize,
    /// Head dimension (64 or 128).
    pub head_dim: usize,
    /// Element type.
    pub dtype: Dtype,
}

impl DecodeProblem {
    /// Checks what the kernels support.
    pub fn validate(&self) -> Result<()> {
        if ![64, 128].contains(&self.head_dim) {
            return Err(GpuError::unsupported(
                "head_dim",
                format!("{} (valid: 64, 128)", self.head_dim),
            ));
        }
        if self.kv_heads == 0
            || !self.heads.is_multiple_of(self.kv_heads)
            || self.batch == 0
            || self.len == 0
        {
            return Err(GpuError::unsupported("decode shape", format!("{self:?}")));
        }
        Ok(())
    }
    /// Elements of one cache tensor.
    pub fn cache_len(&self) -> usize {
        self.batch * self.kv_heads * self.len * self.head_dim
    }
    /// Bytes an fp16 decode step must move: K and V once, Q in, O out.
    pub fn fp16_bytes(&self) -> f64 {
        (2 * self.cache_len() * 2 + 2 * 2 * self.batch * self.heads * self.head_dim) as f64
    }
    fn scale_log2(&self) -> f32 {
        (std::f64::consts::LOG2_E / (self.head_dim as f64).sqrt()) as f32
    }
}

/// fp64 reference of every (b, h) output row over caches given as f32.
fn reference_rows(
    p: &DecodeProblem,
    q: &[u16],
    k: &[f32],
    v: &[f32],
    len: usize,
) -> Vec<(Vec<f64>, f64)> {
    let d = p.head_dim;
    let group = p.heads / p.kv_heads;
    (0..p.batch * p.heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / p.heads, bh % p.heads);
            let base = (b * p.kv_heads + h / group) * len * d;
            let qr: Vec<f64> = q[bh * d..(bh + 1) * d]
                .iter()
                .map(|&x| p.dtype.decode(x) as f64)
                .collect();
            attention_row(
                &qr,
                &k[base..base + len * d],
                &v[base..base + len * d],
                d,
                0..len,
                1.0 / (d as f64).sqrt(),
            )
        })
        .collect()
}

/// Downloads a decode output and compares it with the fp64 reference rows.
fn check_output(
    gpu: &Gpu,
    p: &DecodeProblem,
    o: &CudaSlice<u16>,
    want: &[(Vec<f64>, f64)],
) -> Result<ErrorStats> {
    let o = download(gpu, o, "decode output")?;
    Ok(compare(p, &o, want))
}

fn compare(p: &DecodeProblem, o: &[u16], want: &[(Vec<f64>, f64)]) -> ErrorStats {
    let d = p.head_dim;
    let mut e = ErrorStats::default();
    for (bh, (w, _)) in want.iter().enumerate() {
        let got: Vec<f64> = o[bh * d..(bh + 1) * d]
            .iter()
            .map(|&x| p.dtype.decode(x) as f64)
            .collect();
        e.add(&got, w);
    }
    e
}

/// Host copies of a decode problem's inputs.
pub struct HostDecode {
    /// Query.
    pub q: Vec<u16>,
    /// Key cache.
    pub k: Vec<u16>,
    /// Value cache.
    pub v: Vec<u16>,
}

impl HostDecode {
    /// Standard normal inputs.
    pub fn random(p: &DecodeProblem, seed: u64) -> Self {
        HostDecode {
            q: random_elems(p.batch * p.heads * p.head_dim, p.dtype, seed),
            k: random_elems(p.cache_len(), p.dtype, seed.wrapping_add(1)),
            v: random_elems(p.cache_len(), p.dtype, seed.wrapping_add(2)),
        }
    }
    /// fp64 reference outputs and log-sum-exps per (b, h).
    pub fn reference(&self, p: &DecodeProblem) -> Vec<(Vec<f64>, f64)> {
        let dec = |x: &[u16]| -> Vec<f32> { x.par_iter().map(|&b| p.dtype.decode(b)).collect() };
        reference_rows(p, &self.q, &dec(&self.k), &dec(&self.v), p.len)
    }
}

/// Split-KV decode over a 16-bit cache on the device.
pub struct Fp16Decode {
    /// Query.
    pub q: CudaSlice<u16>,
    /// Key cache.
    pub k: CudaSlice<u16>,
    /// Value cache.
    pub v: CudaSlice<u16>,
    lens: CudaSlice<i32>,
    part_o: CudaSlice<f32>,
    part_lse: CudaSlice<f32>,
    /// Output `[batch, heads, head_dim]`.
    pub o: CudaSlice<u16>,
    /// Log-sum-exp `[batch, heads]`.
    pub lse: CudaSlice<f32>,
    /// Number of KV splits.
    pub splits: usize,
}

#[allow(clippy::too_many_arguments)]
fn launch_split(
    gpu: &Gpu,
    p: &DecodeProblem,
    q: &CudaSlice<u16>,
    k: &CudaSlice<u16>,
    v: &CudaSlice<u16>,
    capacity: usize,
    lens: &CudaSlice<i32>,
    chunk: usize,
    grid_splits: usize,
    slot_base: usize,
    slots: usize,
    part_o: &mut CudaSlice<f32>,
    part_lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let defs = crate::kernels::elem_defines(p.head_dim, p.dtype);
    let f = gpu.function(Source::Decode, &defs, "decode_split")?;
    let (h, hkv, cap, ch, sb, sl) = (
        p.heads as i32,
        p.kv_heads as i32,
        capacity as i32,
        chunk as i32,
        slot_base as i32,
        slots as i32,
    );
    let sc = p.scale_log2();
    let cfg = LaunchConfig {
        grid_dim: (grid_splits as u32, p.heads as u32, p.batch as u32),
        block_dim: (128, 1, 1),
        shared_mem_bytes: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: argument order and types match decode_split; the caches hold
    // batch * kv_heads * capacity rows, the partial buffers batch * heads * slots slots.
    unsafe {
        gpu.stream
            .launch_builder(&f)
            .arg(q)
            .arg(k)
            .arg(v)
            .arg(part_o)
            .arg(part_lse)
            .arg(&h)
            .arg(&hkv)
            .arg(&cap)
            .arg(lens)
            .arg(&ch)
            .arg(&sb)
            .arg(&sl)
            .arg(&sc)
            .launch(cfg)
            .map_err(|e| GpuError::driver("decode_split", e))?;
    }
    Ok(())
}

fn launch_combine(
    gpu: &Gpu,
    p: &DecodeProblem,
    part_o: &CudaSlice<f32>,
    part_lse: &CudaSlice<f32>,
    slots: usize,
    o: &mut CudaSlice<u16>,
    lse: &mut CudaSlice<f32>,
) -> Result<()> {
    let defs = crate::kernels::elem_defines(p.head_dim, p.dtype);
    let f = gpu.function(Source::Decode, &defs, "decode_combine")?;
    let (h, sl) = (p.heads as i32, slots as i32);
    let cfg = LaunchConfig {
        grid_dim: (p.heads as u32, p.batch as u32, 1),
        block_dim: (p.head_dim as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: argument order and types match decode_combine; buffers sized for `p` and `slots`.
    unsafe {
        gpu.stream
            .launch_builder(&f)
            .arg(part_o)
            .arg(part_lse)
            .arg(o)
            .arg(lse)
            .arg(&h)
            .arg(&sl)
            .launch(cfg)
            .map_err(|e| GpuError::driver("decode_combine", e))?;
    }
    Ok(())
}

impl Fp16Decode {
    /// Uploads the inputs and sizes the partial buffers for `splits` splits.
    pub fn new(gpu: &Gpu, p: &DecodeProblem, h: &HostDecode, splits: usize) -> Result<Self> {
        p.validate()?;
        let splits = splits.clamp(1, p.len);
        Ok(Fp16Decode {
            q: upload(gpu, &h.q, "q")?,
            k: upload(gpu, &h.k, "K cache")?,
            v: upload(gpu, &h.v, "V cache")?,
            lens: upload(gpu, &vec![p.len as i32; p.batch], "lens")?,
            part_o: gpu.zeros(p.batch * p.heads * splits * p.head_dim, "partial outputs")?,
            part_lse: gpu.zeros(p.batch * p.heads * splits, "partial lse")?,
            o: gpu.zeros(p.batch * p.heads * p.head_dim, "output")?,
            lse: gpu.zeros(p.batch * p.heads, "lse")?,
            splits,
        })
    }
    /// Enqueues the split kernel and the merge.
    pub fn launch(&mut self, gpu: &Gpu, p: &DecodeProblem) -> Result<()> {
        let chunk = p.len.div_ceil(self.splits);
        launch_split(
            gpu,
            p,
            &self.q,
            &self.k,
            &self.v,
            p.len,
            &self.lens,
            chunk,
            self.splits,
            0,
            self.splits,
            &mut self.part_o,
            &mut self.part_lse,
        )?;
        launch_combine(
            gpu,
            p,
            &self.part_o,
            &self.part_lse,
            self.splits,
            &mut self.o,
            &mut self.lse,
        )
    }
    /// Downloads the output and compares it with `want` (from [`HostDecode::reference`]).
    pub fn check(
        &self,
        gpu: &Gpu,
        p: &DecodeProblem,
        want: &[(Vec<f64>, f64)],
    ) -> Result<ErrorStats> {
        check_output(gpu, p, &self.o, want)
    }
}

/// A product-quantized cache on the host: the first `len - window` tokens as codes, the last
/// `window` tokens in the element type.
pub struct PqCache {
    /// Subspaces.
    pub m: usize,
    /// Recent tokens kept unquantized.
    pub window: usize,
    /// Key codes `[batch, kv_heads, len - window, m]`.
    pub codes_k: Vec<u8>,
    /// Value codes, same layout.
    pub codes_v: Vec<u8>,
    /// Key codebooks, one per KV head: `[kv_heads][m][256][dsub]` (element type).
    pub cb_k: Vec<u16>,
    /// Value codebooks.
    pub cb_v: Vec<u16>,
    /// Window keys `[batch, kv_heads, window, head_dim]`.
    pub win_k: Vec<u16>,
    /// Window values.
    pub win_v: Vec<u16>,
}

impl PqCache {
    /// Quantized tokens per sequence.
    pub fn quantized(&self, p: &DecodeProblem) -> usize {
        p.len - self.window
    }

    fn check_shape(p: &DecodeProblem, m: usize, window: usize) -> Result<()> {
        p.validate()?;
        if ![16, 32, 64].contains(&m) || !p.head_dim.is_multiple_of(m) {
            return Err(GpuError::unsupported(
                "pq subspaces",
                format!("{m} (valid: 16, 32, 64)"),
            ));
        }
        if window >= p.len {
            return Err(GpuError::unsupported(
                "pq window",
                format!("{window} must be below the context {}", p.len),
            ));
        }
        Ok(())
    }

    fn split_window(p: &DecodeProblem, h: &[u16], window: usize) -> (Vec<u16>, Vec<u16>) {
        let (d, lq) = (p.head_dim, p.len - window);
        let mut old = Vec::with_capacity(p.batch * p.kv_heads * lq * d);
        let mut win = Vec::with_capacity(p.batch * p.kv_heads * window * d);
        for bh in 0..p.batch * p.kv_heads {
            let s = &h[bh * p.len * d..(bh + 1) * p.len * d];
            old.extend_from_slice(&s[..lq * d]);
            win.extend_from_slice(&s[lq * d..]);
        }
        (old, win)
    }

    /// Quantizes `h`'s cache: per KV head, codebooks trained by k-means (`iters` Lloyd
    /// iterations) on that head's tokens, every older token encoded.
    pub fn encode(
        p: &DecodeProblem,
        h: &HostDecode,
        m: usize,
        window: usize,
        iters: usize,
        seed: u64,
    ) -> Result<Self> {
        Self::check_shape(p, m, window)?;
        let (d, lq) = (p.head_dim, p.len - window);
        let (old_k, win_k) = Self::split_window(p, &h.k, window);
        let (old_v, win_v) = Self::split_window(p, &h.v, window);
        let mut cb_k = Vec::new();
        let mut cb_v = Vec::new();
        let mut books_k = Vec::new();
        let mut books_v = Vec::new();
        for hk in 0..p.kv_heads {
            let gather = |src: &[u16]| -> Vec<f32> {
                (0..p.batch)
                    .flat_map(|b| {
                        let base = (b * p.kv_heads + hk) * lq * d;
                        src[base..base + lq * d]
                            .iter()
                            .map(|&x| p.dtype.decode(x))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let bk = Codebook::train(&gather(&old_k), d, m, iters, seed ^ hk as u64);
            let bv = Codebook::train(&gather(&old_v), d, m, iters, seed ^ (hk as u64 + 1000));
            cb_k.extend(bk.centroids.iter().map(|&x| p.dtype.encode(x)));
            cb_v.extend(bv.centroids.iter().map(|&x| p.dtype.encode(x)));
            books_k.push(bk);
            books_v.push(bv);
        }
        let mut codes_k = Vec::with_capacity(p.batch * p.kv_heads * lq * m);
        let mut codes_v = Vec::with_capacity(p.batch * p.kv_heads * lq * m);
        for bh in 0..p.batch * p.kv_heads {
            let hk = bh % p.kv_heads;
            let dec = |src: &[u16]| -> Vec<f32> {
                src[bh * lq * d..(bh + 1) * lq * d]
                    .iter()
                    .map(|&x| p.dtype.decode(x))
                    .collect()
            };
            codes_k.extend(books_k[hk].encode(&dec(&old_k)));
            codes_v.extend(books_v[hk].encode(&dec(&old_v)));
        }
        Ok(PqCache {
            m,
            window,
            codes_k,
            codes_v,
            cb_k,
            cb_v,
            win_k,
            win_v,
        })
    }

    /// A cache with uniformly random codes and random normal codebooks: the timing workload
    /// (the kernel's work does not depend on the values), checked like any other.
    pub fn random(p: &DecodeProblem, m: usize, window: usize, seed: u64) -> Result<Self> {
        Self::check_shape(p, m, window)?;
        let lq = p.len - window;
        let ncodes = p.batch * p.kv_heads * lq * m;
        let codes = |s: u64| -> Vec<u8> {
            let mut out = vec![0u8; ncodes];
            out.par_chunks_mut(1 << 16)
                .enumerate()
                .for_each(|(c, dst)| {
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        s ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    );
                    rng.fill(dst);
                });
            out
        };
        let ncb = p.kv_heads * m * CENTROIDS * (p.head_dim / m);
        let nwin = p.batch * p.kv_heads * window * p.head_dim;
        Ok(PqCache {
            m,
            window,
            codes_k: codes(seed),
            codes_v: codes(seed + 1),
            cb_k: random_elems(ncb, p.dtype, seed + 2),
            cb_v: random_elems(ncb, p.dtype, seed + 3),
            win_k: random_elems(nwin, p.dtype, seed + 4),
            win_v: random_elems(nwin, p.dtype, seed + 5),
        })
    }

    /// The cache the kernel attends over, dequantized to f32 `[batch, kv_heads, len, head_dim]`.
    pub fn dequantize(&self, p: &DecodeProblem) -> (Vec<f32>, Vec<f32>) {
        let (d, lq, m) = (p.head_dim, p.len - self.window, self.m);
        let dsub = d / m;
        let deq = |codes: &[u8], cb: &[u16], win: &[u16]| -> Vec<f32> {
            let mut out = Vec::with_capacity(p.cache_len());
            for bh in 0..p.batch * p.kv_heads {
                let hk = bh % p.kv_heads;
                for t in 0..lq {
                    for s in 0..m {
                        let c = codes[(bh * lq + t) * m + s] as usize;
                        let o = ((hk * m + s) * CENTROIDS + c) * dsub;
                        out.extend(cb[o..o + dsub].iter().map(|&x| p.dtype.decode(x)));
                    }
                }
                out.extend(
                    win[bh * self.window * d..(bh + 1) * self.window * d]
                        .iter()
                        .map(|&x| p.dtype.decode(x)),
                );
            }
            out
        };
        (
            deq(&self.codes_k, &self.cb_k, &self.win_k),
            deq(&self.codes_v, &self.cb_v, &self.win_v),
        )
    }

    /// fp64 reference of attention over the dequantized cache (what the kernel computes).
    pub fn reference(&self, p: &DecodeProblem, q: &[u16]) -> Vec<(Vec<f64>, f64)> {
        let (k, v) = self.dequantize(p);
        reference_rows(p, q, &k, &v, p.len)
    }

    /// Bytes a PQ decode step must move: both code arrays, the window, the codebooks once per
    /// KV head, Q and O.
    pub fn bytes(&self, p: &DecodeProblem) -> f64 {
        (self.codes_k.len()
            + self.codes_v.len()
            + 2 * (self.win_k.len() + self.win_v.len() + self.cb_k.len() + self.cb_v.len())
            + 4 * p.batch * p.heads * p.head_dim) as f64
    }
}

/// Which PQ decode kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PqKernel {
    /// `decode_pq`: codes in their natural layout; table and codebook lookups hit random
    /// shared-memory banks.
    Smem,
    /// `decode_pq_lanes`: codes packed on upload into the lanes layout ([`pack_lanes`]), whose
    /// lookups never share a bank; needs `head_dim / m >= 2`.
    Lanes,
}

impl PqKernel {
    /// Name in bench files and result labels.
    pub fn name(self) -> &'static str {
        match self {
            PqKernel::Smem => "smem",
            PqKernel::Lanes => "lanes",
        }
    }
    /// Whether the kernel handles `m` subspaces at `head_dim`.
    pub fn supports(self, m: usize, head_dim: usize) -> bool {
        match self {
            PqKernel::Smem => true,
            PqKernel::Lanes => head_dim / m >= 2,
        }
    }
    /// Valid block sizes.
    pub fn threads(self) -> &'static [usize] {
        match self {
            PqKernel::Smem => &[256, 512, 1024],
            PqKernel::Lanes => &[256, 512],
        }
    }
}

/// Keys per tile of the lanes layout (one per lane of a warp).
pub const LANE_TILE: usize = 32;

/// Packs PQ codes `[rows][lq][m]` into the lanes layout of `decode_pq_lanes` (decode.cu has the
/// why): per row, `lq` padded to whole tiles of 32 keys (padding codes 0), and per tile
/// - key codes `[m / 16][32 lanes][16 bytes]`: lane l's 16-byte words hold key l's codes, each
///   group of `g = min(m, 32)` subspaces rotated by `l mod g` (byte x of group j is the code of
///   subspace `j g + (x + l) mod g`);
/// - value codes `[2 head_dim / 64][64 / dsub groups][16 bytes]`: lane group j (the lanes whose
///   output words share subspaces) holds, for key k and its i-th word (`i < head_dim / 64`),
///   the code of subspace `j + 64 i / dsub` at byte `k head_dim / 64 + i` of its run.
///
/// Returns (key codes, value codes, tiles per row).
pub fn pack_lanes(
    codes_k: &[u8],
    codes_v: &[u8],
    rows: usize,
    lq: usize,
    m: usize,
    head_dim: usize,
) -> (Vec<u8>, Vec<u8>, usize) {
    let tiles = lq.div_ceil(LANE_TILE);
    let g = m.min(32);
    let (dsub, vw) = (head_dim / m, head_dim / 64);
    let vj = 64 / dsub;
    let tile_bytes = LANE_TILE * m;
    let mut pk = vec![0u8; rows * tiles * tile_bytes];
    let mut pv = vec![0u8; rows * tiles * tile_bytes];
    let row_bytes = (tiles * tile_bytes).max(1);
    pk.par_chunks_mut(row_bytes)
        .zip(pv.par_chunks_mut(row_bytes))
        .enumerate()
        .for_each(|(r, (pk, pv))| {
            let (ck, cv) = (&codes_k[r * lq * m..], &codes_v[r * lq * m..]);
            for tt in 0..tiles {
                let base = tt * tile_bytes;
                let code = |src: &[u8], k: usize, s: usize| -> u8 {
                    let t = tt * LANE_TILE + k;
                    if t < lq {
                        src[t * m + s]
                    } else {
                        0
                    }
                };
                for l in 0..LANE_TILE {
                    for beta in 0..m {
                        let (grp, x) = (beta / g, beta % g);
                        let src = grp * g + (x + l) % g;
                        pk[base + ((beta / 16) * LANE_TILE + l) * 16 + beta % 16] =
                            code(ck, l, src);
                    }
                }
                for j in 0..vj {
                    for k in 0..LANE_TILE {
                        for i in 0..vw {
                            let bt = k * vw + i;
                            pv[base + ((bt / 16) * vj + j) * 16 + bt % 16] =
                                code(cv, k, j + 64 * i / dsub);
                        }
                    }
                }
            }
        });
    (pk, pv, tiles)
}

/// Codebooks `[kv_heads][m][256][dsub]` rearranged centroid-major, `[kv_heads][256][m dsub]`:
/// centroid c of every subspace in one row, the layout `decode_pq_lanes` reads.
pub fn centroid_major(cb: &[u16], kv_heads: usize, m: usize, dsub: usize) -> Vec<u16> {
    let mut out = vec![0u16; cb.len()];
    for hk in 0..kv_heads {
        for s in 0..m {
            for c in 0..CENTROIDS {
                let src = ((hk * m + s) * CENTROIDS + c) * dsub;
                let dst = (hk * CENTROIDS + c) * m * dsub + s * dsub;
                out[dst..dst + dsub].copy_from_slice(&cb[src..src + dsub]);
            }
        }
    }
    out
}

/// PQ decode on the device.
pub struct PqDecode {
    q: CudaSlice<u16>,
    codes_k: CudaSlice<u8>,
    codes_v: CudaSlice<u8>,
    cb_k: CudaSlice<u16>,
    cb_v: CudaSlice<u16>,
    win_k: CudaSlice<u16>,
    win_v: CudaSlice<u16>,
    lens: CudaSlice<i32>,
    win_lens: CudaSlice<i32>,
    part_o: CudaSlice<f32>,
    part_lse: CudaSlice<f32>,
    /// Output `[batch, heads, head_dim]`.
    pub o: CudaSlice<u16>,
    /// Log-sum-exp.
    pub lse: CudaSlice<f32>,
    m: usize,
    window: usize,
    /// Tiles of 32 keys per (batch, KV head) in the lanes layout.
    tiles: usize,
    /// The kernel.
    pub kernel: PqKernel,
    /// Splits of the quantized part.
    pub splits: usize,
    /// Threads per block of the PQ kernel ([`PqKernel::threads`]).
    pub threads: usize,
}

/// Keys per sub-chunk in the PQ kernel (PQ_SUB in decode.cu).
const PQ_SUB: usize = 512;

impl PqDecode {
    /// Uploads a PQ cache (packed into the lanes layout for [`PqKernel::Lanes`]) and the query.
    pub fn new(
        gpu: &Gpu,
        p: &DecodeProblem,
        q: &[u16],
        c: &PqCache,
        kernel: PqKernel,
        splits: usize,
        threads: usize,
    ) -> Result<Self> {
        let valid = kernel.threads();
        if !valid.contains(&threads) {
            return Err(GpuError::unsupported(
                format!("pq {} threads", kernel.name()),
                format!("{threads} (valid: {valid:?})"),
            ));
        }
        if !kernel.supports(c.m, p.head_dim) {
            return Err(GpuError::unsupported(
                format!("pq {} kernel", kernel.name()),
                format!(
                    "m {} at head_dim {} (needs head_dim / m >= 2)",
                    c.m, p.head_dim
                ),
            ));
        }
        let lq = c.quantized(p);
        let books = |cb: &[u16], what: &str| match kernel {
            PqKernel::Smem => upload(gpu, cb, what),
            PqKernel::Lanes => upload(
                gpu,
                &centroid_major(cb, p.kv_heads, c.m, p.head_dim / c.m),
                what,
            ),
        };
        let (codes_k, codes_v, tiles, splits) = match kernel {
            PqKernel::Smem => (
                upload(gpu, &c.codes_k, "key codes")?,
                upload(gpu, &c.codes_v, "value codes")?,
                0,
                splits.clamp(1, lq.max(1)),
            ),
            PqKernel::Lanes => {
                let rows = p.batch * p.kv_heads;
                let (pk, pv, tiles) = pack_lanes(&c.codes_k, &c.codes_v, rows, lq, c.m, p.head_dim);
                // Every split gets whole tiles; trailing empty splits are dropped.
                let chunk = tiles.div_ceil(splits.clamp(1, tiles.max(1))).max(1);
                (
                    upload(gpu, &pk, "packed key codes")?,
                    upload(gpu, &pv, "packed value codes")?,
                    tiles,
                    tiles.div_ceil(chunk).max(1),
                )
            }
        };
        let slots = splits + 1;
        Ok(PqDecode {
            q: upload(gpu, q, "q")?,
            codes_k,
            codes_v,
            cb_k: books(&c.cb_k, "key codebooks")?,
            cb_v: books(&c.cb_v, "value codebooks")?,
            win_k: upload(
                gpu,
                if c.window > 0 { &c.win_k } else { &[0u16][..] },
                "window keys",
            )?,
            win_v: upload(
                gpu,
                if c.window > 0 { &c.win_v } else { &[0u16][..] },
                "window values",
            )?,
            lens: upload(gpu, &vec![lq as i32; p.batch], "lens")?,
            win_lens: upload(gpu, &vec![c.window as i32; p.batch], "window lens")?,
            part_o: gpu.zeros(p.batch * p.heads * slots * p.head_dim, "partial outputs")?,
            part_lse: gpu.zeros(p.batch * p.heads * slots, "partial lse")?,
            o: gpu.zeros(p.batch * p.heads * p.head_dim, "output")?,
            lse: gpu.zeros(p.batch * p.heads, "lse")?,
            m: c.m,
            window: c.window,
            tiles,
            kernel,
            splits,
            threads,
        })
    }

    /// Dynamic shared memory of a PQ kernel.
    pub fn smem_bytes(kernel: PqKernel, m: usize, head_dim: usize) -> usize {
        match kernel {
            PqKernel::Smem => {
                m * CENTROIDS * 4 + CENTROIDS * head_dim * 2 + PQ_SUB * 4 + PQ_SUB * m
            }
            // One 64 KiB table per group of 32 subspaces, one 64 KiB value codebook.
            PqKernel::Lanes => (m / m.min(32) + 1) << 16,
        }
    }

    /// Enqueues the PQ kernel, the window (fp16 split kernel into the last slot) and the merge.
    pub fn launch(&mut self, gpu: &Gpu, p: &DecodeProblem) -> Result<()> {
        let lq = p.len - self.window;
        let slots = self.splits + 1;
        let (chunk, cap, entry) = match self.kernel {
            PqKernel::Smem => (lq.div_ceil(self.splits), lq, "decode_pq"),
            PqKernel::Lanes => (
                self.tiles.div_ceil(self.splits),
                self.tiles,
                "decode_pq_lanes",
            ),
        };
        let mut defs = crate::kernels::elem_defines(p.head_dim, p.dtype);
        defs.extend([
            ("PQ_M", self.m as i64),
            ("PQ_THREADS", self.threads as i64),
            ("PQ_LW", self.threads as i64 / 32),
        ]);
        let f = gpu.function(Source::Decode, &defs, entry)?;
        let smem = Self::smem_bytes(self.kernel, self.m, p.head_dim);
        f.set_attribute(
            FnAttr::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )
        .map_err(|e| GpuError::driver("raising the shared-memory limit", e))?;
        let (h, hkv, cap, ch, sl) = (
            p.heads as i32,
            p.kv_heads as i32,
            cap as i32,
            chunk as i32,
            slots as i32,
        );
        let sc = p.scale_log2();
        let cfg = LaunchConfig {
            grid_dim: (self.splits as u32, p.heads as u32, p.batch as u32),
            block_dim: (self.threads as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        #[allow(unsafe_code)]
        // SAFETY: argument order and types match decode_pq and decode_pq_lanes (which take the
        // tile count as `cap` and tiles per split as `chunk`); codes hold batch * kv_heads * lq * m
        // bytes (whole tiles of 32 keys when packed), codebooks kv_heads * 256 * head_dim
        // elements, partials batch * heads * slots.
        unsafe {
            gpu.stream
                .launch_builder(&f)
                .arg(&self.q)
                .arg(&self.codes_k)
                .arg(&self.codes_v)
                .arg(&self.cb_k)
                .arg(&self.cb_v)
                .arg(&mut self.part_o)
                .arg(&mut self.part_lse)
                .arg(&h)
                .arg(&hkv)
                .arg(&cap)
                .arg(&self.lens)
                .arg(&ch)
                .arg(&sl)
                .arg(&sc)
                .launch(cfg)
                .map_err(|e| GpuError::driver(entry, e))?;
        }
        // The window always writes its slot (an empty window writes lse = -inf).
        launch_split(
            gpu,
            p,
            &self.q,
            &self.win_k,
            &self.win_v,
            self.window.max(1),
            &self.win_lens,
            self.window.max(1),
            1,
            self.splits,
            slots,
            &mut self.part_o,
            &mut self.part_lse,
        )?;
        launch_combine(
            gpu,
            p,
            &self.part_o,
            &self.part_lse,
            slots,
            &mut self.o,
            &mut self.lse,
        )
    }

    /// Downloads the output and compares it with `want` (from [`PqCache::reference`]).
    pub fn check(
        &self,
        gpu: &Gpu,
        p: &DecodeProblem,
        want: &[(Vec<f64>, f64)],
    ) -> Result<ErrorStats> {
        check_output(gpu, p, &self.o, want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `__byte_perm(a, b, sel)`: result byte n is byte `sel` nibble n of the 8 bytes {b, a}.
    fn byte_perm(a: u32, b: u32, sel: u32) -> u32 {
        let x = (u64::from(b) << 32) | u64::from(a);
        (0..4).fold(0, |r, n| {
            let s = (sel >> (4 * n)) & 7;
            r | ((((x >> (8 * s)) & 0xff) as u32) << (8 * n))
        })
    }

    /// Word `w` of a lane's uint4 registers, the `u`-th of which is `uint4` number `idx(u)`.
    fn word(bytes: &[u8], idx: impl Fn(usize) -> usize, w: usize) -> u32 {
        let o = idx(w / 4) * 16 + (w % 4) * 4;
        u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap())
    }

    /// Centroid-major codebooks: row c of head hk holds centroid c of every subspace in order.
    #[test]
    fn centroid_major_puts_each_centroid_in_one_row() {
        let (kv, m, dsub) = (2, 4, 3);
        let cb: Vec<u16> = (0..kv * m * CENTROIDS * dsub).map(|i| i as u16).collect();
        let t = centroid_major(&cb, kv, m, dsub);
        for hk in 0..kv {
            for c in 0..CENTROIDS {
                for s in 0..m {
                    for e in 0..dsub {
                        assert_eq!(
                            t[(hk * CENTROIDS + c) * m * dsub + s * dsub + e],
                            cb[((hk * m + s) * CENTROIDS + c) * dsub + e]
                        );
                    }
                }
            }
        }
    }

    /// Runs the lookups of `decode_pq_lanes` (decode.cu) on the packed layout, word for word as
    /// the kernel addresses them, with tables whose entries name their (subspace, code) and
    /// value words that name their (code, word): every key's score and every lane's value words
    /// must be the ones of its natural codes, and at each step the 32 lanes of a warp must read
    /// 32 different banks.
    #[test]
    fn lanes_layout_addresses_the_right_entries_without_bank_conflicts() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (m, d) in [(16, 64), (32, 64), (16, 128), (32, 128), (64, 128)] {
            let (rows, lq) = (3, 75);
            let ck: Vec<u8> = (0..rows * lq * m).map(|_| rng.random()).collect();
            let cv: Vec<u8> = (0..rows * lq * m).map(|_| rng.random()).collect();
            let (pk, pv, tiles) = pack_lanes(&ck, &cv, rows, lq, m, d);
            assert_eq!(tiles, 3);
            let (g, ng, dsub, vw) = (m.min(32), m / m.min(32), d / m, d / 64);
            let (ku, vu, vj) = (m / 16, 2 * vw, 64 / dsub);
            // Score tables as the kernel fills them: entry (mm, c) = mm * 256 + c.
            let mut tab = vec![f32::NAN; ng * 16384];
            for mm in 0..m {
                for c in 0..256 {
                    for j in (mm % g..64).step_by(g) {
                        tab[(mm / g) * 16384 + c * 64 + j] = (mm * 256 + c) as f32;
                    }
                }
            }
            for r in 0..rows {
                for t in 0..tiles {
                    let mut banks = vec![Vec::new(); m];
                    for lane in 0..32 {
                        let kidx = |u: usize| (r * tiles + t) * ku * 32 + u * 32 + lane;
                        let key = t * 32 + lane;
                        let mut seen = vec![false; m];
                        for grp in 0..ng {
                            for x in 0..g {
                                let pos = grp * g + x;
                                let sel = 0x5504 | ((pos as u32 & 3) << 4);
                                let a = byte_perm(word(&pk, kidx, pos / 4), lane as u32 * 4, sel);
                                let addr = grp * 65536 + a as usize + 4 * x;
                                banks[pos].push((addr / 4) % 32);
                                let e = tab[addr / 4] as usize;
                                let (mm, c) = (e / 256, e % 256);
                                assert!(!seen[mm], "m {m}: subspace {mm} looked up twice");
                                seen[mm] = true;
                                if key < lq {
                                    assert_eq!(
                                        c,
                                        ck[(r * lq + key) * m + mm] as usize,
                                        "m {m} d {d} key {key} subspace {mm}"
                                    );
                                }
                            }
                        }
                        // Values: lane's words lane + 32 i of each key's centroid row.
                        let vidx =
                            |u: usize| (r * tiles + t) * vu * vj + u * vj + lane / (dsub / 2);
                        for k in 0..32 {
                            for i in 0..vw {
                                let byte = k * vw + i;
                                let sel = 0x5504 | ((byte as u32 & 3) << 4);
                                let a = byte_perm(word(&pv, vidx, byte / 4), lane as u32 * 4, sel);
                                let w = (a as usize + 128 * i) / 4;
                                let (c, wd) = (w / 64, w % 64);
                                assert_eq!(wd, lane + 32 * i);
                                assert_eq!(w % 32, lane, "value bank");
                                let key = t * 32 + k;
                                if key < lq {
                                    let mm = 2 * wd / dsub;
                                    assert_eq!(c, cv[(r * lq + key) * m + mm] as usize);
                                }
                            }
                        }
                    }
                    for (pos, b) in banks.iter_mut().enumerate() {
                        b.sort_unstable();
                        b.dedup();
                        assert_eq!(b.len(), 32, "m {m}: step {pos} has a bank conflict");
                    }
                }
            }
        }
    }
}

//! Low-bit weight GEMV and small-batch GEMM (`kernels/lowbit.cu`): clustered 2/3/4-bit weights
//! with a per-row centroid table, INT8 weights with a per-row scale, and INT4 weights nested in
//! the INT8 ones (the high nibbles, stored as their own plane, so switching precision needs no
//! second copy), plus an fp16 baseline. The packed layouts, the values each format stands for
//! (the fp64 reference multiplies exactly those), the launcher and the bench driver behind the
//! `lowbitbench` binary.

use crate::device::Gpu;
use crate::harness::{Harness, Timing, TimingConfig};
use crate::kernels::Source;
use crate::reference::ErrorStats;
use crate::{GpuError, Result};
use cudarc::driver::sys::CUfunction_attribute as FnAttr;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Warps per block of the tensor-core kernel, and the CUDA-core kernel's default.
pub const WARPS: usize = 4;

/// A weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Clustered 2-bit codes, 4 fp16 centroids per row.
    Lut2,
    /// Clustered 3-bit codes, 8 centroids per row.
    Lut3,
    /// Clustered 4-bit codes, 16 centroids per row.
    Lut4,
    /// INT8 with a per-row scale (high- and low-nibble planes).
    Int8,
    /// The high-nibble plane of the INT8 weights alone.
    Int4,
    /// fp16 weights.
    Fp16,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 6] = [
        Format::Lut2,
        Format::Lut3,
        Format::Lut4,
        Format::Int8,
        Format::Int4,
        Format::Fp16,
    ];
    /// The kernel's FMT define.
    pub fn code(self) -> i64 {
        match self {
            Format::Lut2 => 1,
            Format::Lut3 => 2,
            Format::Lut4 => 3,
            Format::Int8 => 4,
            Format::Int4 => 5,
            Format::Fp16 => 6,
        }
    }
    /// Name in configs and CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Format::Lut2 => "lut2",
            Format::Lut3 => "lut3",
            Format::Lut4 => "lut4",
            Format::Int8 => "int8",
            Format::Int4 => "int4",
            Format::Fp16 => "fp16",
        }
    }
    /// Bits per weight of the codes.
    pub fn bits(self) -> u32 {
        match self {
            Format::Lut2 => 2,
            Format::Lut3 => 3,
            Format::Lut4 | Format::Int4 => 4,
            Format::Int8 => 8,
            Format::Fp16 => 16,
        }
    }
    /// Bytes the kernel reads for an `n` x `k` weight: codes, tables, scales.
    pub fn weight_bytes(self, n: usize, k: usize) -> usize {
        let codes = n * k * self.bits() as usize / 8;
        match self {
            Format::Lut2 | Format::Lut3 | Format::Lut4 => codes + n * (2 << self.bits()),
            Format::Int8 | Format::Int4 => codes + n * 4,
            Format::Fp16 => codes,
        }
    }
    /// Pair-table entries per warp (LUT formats).
    fn pairs(self) -> usize {
        match self {
            Format::Lut2 | Format::Lut3 | Format::Lut4 => 1 << (2 * self.bits()),
            _ => 0,
        }
    }
}

/// An `n` x `k` weight matrix packed for the kernel.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Format.
    pub format: Format,
    /// Rows (outputs).
    pub n: usize,
    /// Columns (inputs); a multiple of 64.
    pub k: usize,
    /// First plane: P2 (LUT2, LUT3), P4 (LUT4), high nibbles (INT8, INT4), fp16 words (FP16).
    pub plane_a: Vec<u32>,
    /// Second plane: P1 (LUT3), low nibbles (INT8); empty otherwise.
    pub plane_b: Vec<u32>,
    /// LUT formats: 2^bits fp16 centroids per row.
    pub tables: Vec<u16>,
    /// INT formats: per-row scale of the INT8 weights.
    pub scales: Vec<f32>,
}

fn check_shape(n: usize, k: usize) -> Result<()> {
    if n == 0 || k == 0 || !k.is_multiple_of(64) {
        return Err(GpuError::unsupported(
            "low-bit weight shape",
            format!("{n} x {k}: rows must be positive and columns a positive multiple of 64"),
        ));
    }
    Ok(())
}

fn pack_bits(values: impl Iterator<Item = u32>, bits: usize, len: usize) -> Vec<u32> {
    let per = 32 / bits;
    let mut out = vec![0u32; len.div_ceil(per)];
    for (i, v) in values.enumerate() {
        out[i / per] |= v << (bits * (i % per));
    }
    out
}

impl Packed {
    /// Clustered weights: `codes` (row-major, each below 2^bits) and `tables` (2^bits centroids
    /// per row, rounded to fp16 here).
    pub fn lut(n: usize, k: usize, bits: u32, codes: &[u8], tables: &[f32]) -> Result<Packed> {
        check_shape(n, k)?;
        let format = match bits {
            2 => Format::Lut2,
            3 => Format::Lut3,
            4 => Format::Lut4,
            _ => {
                return Err(GpuError::unsupported(
                    "clustered bits",
                    format!("{bits}; choose 2, 3 or 4"),
                ))
            }
        };
        let levels = 1usize << bits;
        if codes.len() != n * k || tables.len() != n * levels {
            return Err(GpuError::unsupported(
                "clustered weights",
                format!(
                    "{} codes and {} centroids for {n} x {k} at {bits} bits",
                    codes.len(),
                    tables.len()
                ),
            ));
        }
        if let Some(c) = codes.iter().find(|&&c| c as usize >= levels) {
            return Err(GpuError::unsupported(
                "clustered code",
                format!("{c} at {bits} bits"),
            ));
        }
        let (plane_a, plane_b) = match bits {
            2 => (pack_bits(codes.iter().map(|&c| c as u32), 2, n * k), vec![]),
            3 => (
                pack_bits(codes.iter().map(|&c| c as u32 & 3), 2, n * k),
                pack_bits(codes.iter().map(|&c| (c as u32 >> 2) & 1), 1, n * k),
            ),
            _ => (pack_bits(codes.iter().map(|&c| c as u32), 4, n * k), vec![]),
        };
        Ok(Packed {
            format,
            n,
            k,
            plane_a,
            plane_b,
            tables: tables
                .iter()
                .map(|&t| half::f16::from_f32(t).to_bits())
                .collect(),
            scales: vec![],
        })
    }

    /// INT8 weights `q8` in -119..=119 (row-major) with per-row `scales`, as INT8 or as the
    /// nested INT4. The stored code is `q + 8`: its high nibble is `q` rounded to a multiple of
    /// 16, the INT4 weight.
    pub fn nested(n: usize, k: usize, q8: &[i8], scales: &[f32], int4: bool) -> Result<Packed> {
        check_shape(n, k)?;
        if q8.len() != n * k || scales.len() != n {
            return Err(GpuError::unsupported(
                "INT8 weights",
                format!(
                    "{} values and {} scales for {n} x {k}",
                    q8.len(),
                    scales.len()
                ),
            ));
        }
        if let Some(q) = q8.iter().find(|q| **q > 119 || **q < -119) {
            return Err(GpuError::unsupported(
                "INT8 weight",
                format!("{q}: nested INT8 values lie in -119..=119"),
            ));
        }
        let code = |q: i8| q as i32 + 8;
        let hi = pack_bits(q8.iter().map(|&q| ((code(q) >> 4) + 8) as u32), 4, n * k);
        let lo = pack_bits(q8.iter().map(|&q| (code(q) & 15) as u32), 4, n * k);
        Ok(Packed {
            format: if int4 { Format::Int4 } else { Format::Int8 },
            n,
            k,
            plane_a: hi,
            plane_b: if int4 { vec![] } else { lo },
            tables: vec![],
            scales: scales.to_vec(),
        })
    }

    /// fp16 weights (rounded here).
    pub fn fp16(n: usize, k: usize, w: &[f32]) -> Result<Packed> {
        check_shape(n, k)?;
        let h: Vec<u16> = w
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        Ok(Packed {
            format: Format::Fp16,
            n,
            k,
            plane_a: h
                .chunks_exact(2)
                .map(|p| p[0] as u32 | (p[1] as u32) << 16)
                .collect(),
            plane_b: vec![],
            tables: vec![],
            scales: vec![],
        })
    }

    /// The value the kernel uses for weight (`row`, `col`), from the packed data.
    pub fn value(&self, row: usize, col: usize) -> f64 {
        let i = row * self.k + col;
        let field = |plane: &[u32], bits: usize| -> u32 {
            let per = 32 / bits;
            (plane[i / per] >> (bits * (i % per))) & ((1 << bits) - 1)
        };
        let f16 = |b: u16| half::f16::from_bits(b).to_f64();
        match self.format {
            Format::Lut2 | Format::Lut3 | Format::Lut4 => {
                let code = match self.format {
                    Format::Lut2 => field(&self.plane_a, 2),
                    Format::Lut3 => field(&self.plane_a, 2) | field(&self.plane_b, 1) << 2,
                    _ => field(&self.plane_a, 4),
                };
                f16(self.tables[(row << self.format.bits()) + code as usize])
            }
            Format::Int8 => {
                let c = (field(&self.plane_a, 4) as i32 - 8) * 16 + field(&self.plane_b, 4) as i32;
                (c - 8) as f64 * self.scales[row] as f64
            }
            Format::Int4 => (field(&self.plane_a, 4) as f64 - 8.0) * 16.0 * self.scales[row] as f64,
            Format::Fp16 => {
                let w = self.plane_a[i / 2];
                f16(if i.is_multiple_of(2) {
                    w as u16
                } else {
                    (w >> 16) as u16
                })
            }
        }
    }

    /// Every weight's value, row-major.
    pub fn values(&self) -> Vec<f64> {
        (0..self.n * self.k)
            .map(|i| self.value(i / self.k, i % self.k))
            .collect()
    }
}

/// Random weights of `format` (random codes and centroid tables, or INT8 values with scales
/// of real-weight magnitude, or fp16 weights), for checks and timing.
pub fn random(format: Format, n: usize, k: usize, seed: u64) -> Result<Packed> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match format {
        Format::Lut2 | Format::Lut3 | Format::Lut4 => {
            let bits = format.bits();
            let levels = 1usize << bits;
            let codes: Vec<u8> = (0..n * k)
                .map(|_| rng.random_range(0..levels) as u8)
                .collect();
            let tables: Vec<f32> = (0..n * levels)
                .map(|_| rng.random_range(-0.08f32..0.08))
                .collect();
            Packed::lut(n, k, bits, &codes, &tables)
        }
        Format::Int8 | Format::Int4 => {
            let q8: Vec<i8> = (0..n * k).map(|_| rng.random_range(-119i8..=119)).collect();
            let scales: Vec<f32> = (0..n).map(|_| rng.random_range(2e-4f32..8e-4)).collect();
            Packed::nested(n, k, &q8, &scales, format == Format::Int4)
        }
        Format::Fp16 => {
            let w: Vec<f32> = (0..n * k)
                .map(|_| rng.random_range(-0.08f32..0.08))
                .collect();
            Packed::fp16(n, k, &w)
        }
    }
}

/// Random fp16 activations `[batch][k]` (normal-like, with a few large outliers as real
/// activations have).
pub fn random_x(batch: usize, k: usize, seed: u64) -> Vec<u16> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9);
    (0..batch * k)
        .map(|i| {
            let g: f32 = (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum();
            let v = if i % 97 == 0 { g * 20.0 } else { g };
            half::f16::from_f32(v).to_bits()
        })
        .collect()
}

/// Launch parameters: rows per warp, the k-chunk per block (a split of k when below k) and the
/// blocks per SM per k-chunk (each block stages its activations once and loops over rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Rows each warp computes at once.
    pub rows: usize,
    /// k per block (multiple of 64).
    pub kc: usize,
    /// Blocks per SM (per k-chunk), at most; fewer when the rows run out (CUDA-core kernel).
    /// 0: one wave, as many blocks as fit on the GPU at once, shared by the k-chunks.
    pub per_sm: usize,
    /// The tensor-core kernel (batch 8-32): `rows` counts tiles of 16 rows per warp, one block
    /// per 64 x `rows` rows.
    pub mma: bool,
    /// Warps per block of the CUDA-core kernel (4, 8 or 16): the warps of a block share one
    /// staged copy of the activations. The tensor-core kernel always runs 4.
    pub warps: usize,
}

impl Tiling {
    /// The variants the search measures for a shape: rows per warp 1, 2, 4, 8 (at most
    /// 32 rows x batch columns of accumulators); k split into the fewest chunks whose
    /// activations fit in 96 KB of shared memory, and into 2x and 4x as many (more blocks for
    /// short outputs); blocks of 4 warps, 1, 4 or 8 per SM, of 8 warps, 2 or 4 per SM, and of
    /// 16 warps, 1 or 2 per SM, or for each block size one wave of as many as fit. At batch
    /// 8-32 the tensor-core kernel is tried too, with 1, 2 or 4 tiles of 16 rows per warp.
    pub fn candidates(k: usize, batch: usize) -> Vec<Tiling> {
        let mut out = Vec::new();
        let fewest = (1..).find(|s| batch * k.div_ceil(*s).div_ceil(64) * 64 * 2 <= 96 << 10);
        let fewest = fewest.unwrap_or(1);
        let mut last = 0;
        let mma = batch >= 8;
        for splits in [fewest, 2 * fewest, 4 * fewest] {
            let kc = k.div_ceil(splits).div_ceil(64) * 64;
            if kc == last || kc < 64 {
                continue;
            }
            last = kc;
            // Accumulators: rows x batch per thread (twice, fp16 pairs and fp32). Blocks of 4
            // warps, 1-8 per SM or a wave; blocks of 8 and 16 warps (fewer copies of x per SM),
            // 16 or 32 warps per SM, or a wave.
            for rows in [1, 2, 4, 8].into_iter().filter(|r| r * batch <= 32) {
                for (warps, per_sm) in [
                    (4, 1),
                    (4, 4),
                    (4, 8),
                    (4, 0),
                    (8, 2),
                    (8, 4),
                    (8, 0),
                    (16, 1),
                    (16, 2),
                    (16, 0),
                ] {
                    out.push(Tiling {
                        rows,
                        kc,
                        per_sm,
                        mma: false,
                        warps,
                    });
                }
            }
            if mma {
                for rows in [1, 2, 4] {
                    out.push(Tiling {
                        rows,
                        kc,
                        per_sm: 0,
                        mma: true,
                        warps: WARPS,
                    });
                }
            }
        }
        out
    }
    /// Warps per block as launched (the tensor-core kernel always runs [`WARPS`]).
    pub fn block_warps(&self) -> usize {
        if self.mma {
            WARPS
        } else {
            self.warps
        }
    }
    /// "r2/kc2048/s4"; with blocks of 8 or 16 warps "r2/kc2048/s4/w8".
    pub fn label(&self) -> String {
        let warps = if self.warps == WARPS {
            String::new()
        } else {
            format!("/w{}", self.warps)
        };
        if self.mma {
            format!("mma-r{}/kc{}", self.rows, self.kc)
        } else if self.per_sm == 0 {
            format!("r{}/kc{}/wave{warps}", self.rows, self.kc)
        } else {
            format!("r{}/kc{}/s{}{warps}", self.rows, self.kc, self.per_sm)
        }
    }
}

/// Weights and buffers on the device.
pub struct Gemv {
    /// Format.
    pub format: Format,
    n: usize,
    k: usize,
    batch: usize,
    a: CudaSlice<u32>,
    b: CudaSlice<u32>,
    tables: CudaSlice<u16>,
    scales: CudaSlice<f32>,
    /// Activations `[batch][k]` fp16.
    pub x: CudaSlice<u16>,
    /// Output `[batch][n]` fp32.
    pub y: CudaSlice<f32>,
}

fn upload<T: cudarc::driver::DeviceRepr + Default + Clone>(
    gpu: &Gpu,
    v: &[T],
    what: &str,
) -> Result<CudaSlice<T>> {
    let fallback = [T::default()];
    let data = if v.is_empty() { &fallback[..] } else { v };
    gpu.stream
        .clone_htod(data)
        .map_err(|e| GpuError::driver(format!("uploading {what}"), e))
}

impl Gemv {
    /// Uploads `w` and activations `x` (`[batch][k]`).
    pub fn new(gpu: &Gpu, w: &Packed, x: &[u16], batch: usize) -> Result<Gemv> {
        if !(1..=32).contains(&batch) || !batch.is_power_of_two() || x.len() != batch * w.k {
            return Err(GpuError::unsupported(
                "batch",
                format!(
                    "{batch} with {} activations; choose 1, 2, 4, 8, 16 or 32",
                    x.len()
                ),
            ));
        }
        Ok(Gemv {
            format: w.format,
            n: w.n,
            k: w.k,
            batch,
            a: upload(gpu, &w.plane_a, "weights")?,
            b: upload(gpu, &w.plane_b, "weights (second plane)")?,
            tables: upload(gpu, &w.tables, "centroid tables")?,
            scales: upload(gpu, &w.scales, "scales")?,
            x: upload(gpu, x, "activations")?,
            y: gpu.zeros(batch * w.n, "output")?,
        })
    }

    /// Dynamic shared memory for a tiling.
    pub fn smem_bytes(&self, t: Tiling) -> usize {
        if t.mma {
            let bits = self.format.bits();
            let tables = if bits < 8 && self.format.pairs() > 0 {
                WARPS * 16 * t.rows * (2 << bits)
            } else {
                0
            };
            self.batch * t.kc * 2 + tables
        } else {
            // The pair tables are aligned to their size: up to one table of padding.
            // (At least 256 bytes each, as the kernel's TBYTES.) Then each row's staged
            // centroids (2^bits fp16).
            let pairs = self.format.pairs();
            let (table, stage) = if pairs > 0 {
                ((pairs * 4).max(256), 2 << self.format.bits())
            } else {
                (0, 0)
            };
            self.batch * t.kc * 2 + (t.warps * t.rows + 1) * table + t.warps * t.rows * stage
        }
    }

    /// Enqueues y = W x (zeroing y first when k is split).
    pub fn launch(&mut self, gpu: &Gpu, t: Tiling) -> Result<()> {
        let rows_ok = if t.mma {
            [1, 2, 4].contains(&t.rows)
        } else {
            [1, 2, 4, 8].contains(&t.rows)
                && t.rows * self.batch <= 32
                && [4, 8, 16].contains(&t.warps)
        };
        if !t.kc.is_multiple_of(64) || t.kc == 0 || !rows_ok {
            return Err(GpuError::unsupported(
                "tiling",
                format!(
                    "{}: kc a multiple of 64; rows 1, 2, 4 or 8 with rows x batch <= 32 and \
                     4, 8 or 16 warps (the tensor-core kernel: rows 1, 2 or 4)",
                    t.label()
                ),
            ));
        }
        let defs = [
            ("FMT", self.format.code()),
            ("BATCH", self.batch as i64),
            ("ROWS", t.rows as i64),
            ("IS_BF16", 0),
            ("WARPS", t.block_warps() as i64),
        ];
        if t.mma && self.batch < 8 {
            return Err(GpuError::unsupported(
                "tiling",
                format!(
                    "{}: the tensor-core kernel takes batch 8-32, not {}",
                    t.label(),
                    self.batch
                ),
            ));
        }
        let name = if t.mma { "lowbit_mma" } else { "lowbit_gemv" };
        let f = gpu.function(Source::Lowbit, &defs, name)?;
        let smem = self.smem_bytes(t);
        if smem > gpu.info.smem_optin_bytes as usize {
            return Err(GpuError::unsupported(
                "tiling",
                format!("{} needs {smem} B of shared memory", t.label()),
            ));
        }
        f.set_attribute(
            FnAttr::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            smem as i32,
        )
        .map_err(|e| GpuError::driver("raising the shared-memory limit", e))?;
        let splits = self.k.div_ceil(t.kc);
        if splits > 1 {
            gpu.stream
                .memset_zeros(&mut self.y)
                .map_err(|e| GpuError::driver("zeroing the output", e))?;
        }
        let blocks = if t.mma {
            self.n.div_ceil(WARPS * 16 * t.rows)
        } else if t.per_sm == 0 {
            let fit = f
                .occupancy_max_active_blocks_per_multiprocessor((t.warps * 32) as u32, smem, None)
                .map_err(|e| GpuError::driver("occupancy of lowbit_gemv", e))?
                as usize;
            self.n
                .div_ceil(t.warps * t.rows)
                .min((gpu.info.sms as usize * fit.max(1)).div_ceil(splits))
                .max(1)
        } else {
            self.n
                .div_ceil(t.warps * t.rows)
                .min(gpu.info.sms as usize * t.per_sm)
        };
        let cfg = LaunchConfig {
            grid_dim: (blocks as u32, splits as u32, 1),
            block_dim: ((t.block_warps() * 32) as u32, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        let (n, k, kc) = (self.n as i32, self.k as i32, t.kc as i32);
        #[allow(unsafe_code)]
        // SAFETY: argument order and types match lowbit_gemv; the planes hold n * k codes of
        // the format, tables 2^bits per row, scales one per row, x batch * k, y batch * n.
        unsafe {
            gpu.stream
                .launch_builder(&f)
                .arg(&self.a)
                .arg(&self.b)
                .arg(&self.tables)
                .arg(&self.scales)
                .arg(&self.x)
                .arg(&mut self.y)
                .arg(&n)
                .arg(&k)
                .arg(&kc)
                .launch(cfg)
                .map_err(|e| GpuError::driver(name, e))?;
        }
        Ok(())
    }

    /// The output, copied back.
    pub fn output(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.stream
            .clone_dtoh(&self.y)
            .map_err(|e| GpuError::driver("reading the output", e))
    }
}

/// Norm-relative error (infinite when an output is not finite) and largest absolute error of
/// `got` against `want`.
pub fn errors(got: &[f32], want: &[f64]) -> (f64, f64) {
    let got: Vec<f64> = got.iter().map(|&v| v as f64).collect();
    let mut e = ErrorStats::default();
    e.add(&got, want);
    (e.relative(), e.max_abs)
}

/// Runs the kernel once on fresh random inputs with a poisoned output and checks it against
/// the fp64 reference: (norm-relative error, largest absolute error).
pub fn check(
    gpu: &Gpu,
    format: Format,
    n: usize,
    k: usize,
    batch: usize,
    t: Tiling,
    seed: u64,
) -> Result<(f64, f64)> {
    let w = random(format, n, k, seed)?;
    let x = random_x(batch, k, seed);
    let want = reference(&w, &x, batch);
    let mut g = Gemv::new(gpu, &w, &x, batch)?;
    let h = Harness::new(gpu)?;
    h.poison(&mut g.y, 0xffff_ffff)?;
    g.launch(gpu, t)?;
    gpu.sync()?;
    Ok(errors(&g.output(gpu)?, &want))
}

/// The bench file of `lowbitbench`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowbitConfig {
    /// Timing settings.
    #[serde(default)]
    pub timing: TimingConfig,
    /// Bytes for the copy-bandwidth probe.
    #[serde(default = "default_copy")]
    pub copy_bytes: usize,
    /// Seed of the random inputs.
    #[serde(default)]
    pub seed: u64,
    /// Largest accepted norm-relative error against fp64.
    #[serde(default = "default_tol")]
    pub max_rel_err: f64,
    /// Shapes as [k, n] (inputs, outputs).
    pub shapes: Vec<[usize; 2]>,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Formats.
    pub formats: Vec<Format>,
    /// Tilings to run, by label (`"r2/kc4096/s4"`, `"mma-r2/kc4096"`); empty: every candidate.
    /// For profiling one kernel; each (shape, batch) must have at least one of them.
    #[serde(default)]
    pub tilings: Vec<String>,
}

fn default_copy() -> usize {
    1 << 31
}
fn default_tol() -> f64 {
    4e-3
}

impl LowbitConfig {
    /// Parses a bench file, naming it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let c: LowbitConfig =
            toml::from_str(text).map_err(|e| GpuError::Config(format!("{path}: {e}")))?;
        for &[k, n] in &c.shapes {
            check_shape(n, k).map_err(|e| GpuError::Config(format!("{path}: shapes: {e}")))?;
        }
        if let Some(b) = c
            .batches
            .iter()
            .find(|b| !(1..=32).contains(*b) || !b.is_power_of_two())
        {
            return Err(GpuError::Config(format!(
                "{path}: batches: {b}; choose 1, 2, 4, 8, 16 or 32"
            )));
        }
        Ok(c)
    }
}

impl LowbitConfig {
    /// The tilings run for (k, batch): every candidate, or those named in `tilings` (an error
    /// listing the candidates where none of them is one).
    pub fn tilings_for(&self, k: usize, batch: usize) -> Result<Vec<Tiling>> {
        let all = Tiling::candidates(k, batch);
        if self.tilings.is_empty() {
            return Ok(all);
        }
        let some: Vec<Tiling> = all
            .iter()
            .copied()
            .filter(|t| self.tilings.contains(&t.label()))
            .collect();
        if some.is_empty() {
            let names: Vec<String> = all.iter().map(|t| t.label()).collect();
            return Err(GpuError::Config(format!(
                "tilings: none of {:?} is a tiling of k = {k}, batch {batch}; choose from {}",
                self.tilings,
                names.join(", ")
            )));
        }
        Ok(some)
    }
}

/// CSV header of the bench rows.
pub const CSV_HEADER: &str = "format,k,n,batch,variant,selected,median_us,p10_us,p90_us,min_us,reps,weight_bytes,gbytes_per_s,bw_fraction,rel_err,max_abs_err,copy_gbytes_per_s,device";

/// The `variant` of the rows that time a plain read of a case's bytes (`Harness::read_time`),
/// not a kernel: the floor a GEMV of those bytes can approach. Never selected; error 0.
pub const READ_VARIANT: &str = "read";

/// Runs every (shape, batch, format): each tiling candidate is checked on fresh random inputs
/// and timed (L2 flushed before each repetition); the fastest is marked selected. Then a plain
/// read of the same bytes is timed the same way (variant [`READ_VARIANT`]). CSV text.
pub fn run(gpu: &Gpu, cfg: &LowbitConfig, mut log: impl FnMut(&str)) -> Result<String> {
    let mut h = Harness::new(gpu)?;
    let (copy_bw, _) = h.copy_bandwidth(cfg.copy_bytes, &cfg.timing)?;
    log(&format!("copy bandwidth {:.0} GB/s", copy_bw / 1e9));
    let dev = gpu.describe().replace(',', ";");
    let mut csv = format!("{CSV_HEADER}\n");
    let mut seed = cfg.seed;
    for &[k, n] in &cfg.shapes {
        for &batch in &cfg.batches {
            for &format in &cfg.formats {
                seed += 1;
                let w = random(format, n, k, seed)?;
                let x = random_x(batch, k, seed);
                let want = reference(&w, &x, batch);
                let mut g = Gemv::new(gpu, &w, &x, batch)?;
                let bytes = format.weight_bytes(n, k) + batch * (k * 2 + n * 4);
                let mut rows: Vec<(Tiling, Timing, f64, f64)> = Vec::new();
                for t in cfg.tilings_for(k, batch)? {
                    if g.smem_bytes(t) > gpu.info.smem_optin_bytes as usize {
                        continue;
                    }
                    h.poison(&mut g.y, 0xffff_ffff)?;
                    g.launch(gpu, t)?;
                    gpu.sync()?;
                    let (rel, max) = errors(&g.output(gpu)?, &want);
                    if rel.is_nan() || rel > cfg.max_rel_err {
                        return Err(GpuError::Check(format!(
                            "{} {k}x{n} batch {batch} {}: error {rel:.2e} above {:.1e}",
                            format.name(),
                            t.label(),
                            cfg.max_rel_err
                        )));
                    }
                    let timing = h.time(&cfg.timing, || g.launch(gpu, t))?;
                    rows.push((t, timing, rel, max));
                }
                let best = rows
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1 .1.median_us.total_cmp(&b.1 .1.median_us))
                    .map(|(i, _)| i);
                let mut labelled: Vec<(String, bool, Timing, f64, f64)> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, (t, tm, rel, max))| (t.label(), Some(i) == best, *tm, *rel, *max))
                    .collect();
                // The floor: a plain read of as many bytes, timed the same way.
                let floor = h.read_time(bytes, &cfg.timing)?;
                labelled.push((READ_VARIANT.to_string(), false, floor, 0.0, 0.0));
                for (label, selected, tm, rel, max) in &labelled {
                    let (rel, max) = (*rel, *max);
                    let gbs = bytes as f64 / (tm.median_us * 1e-6) / 1e9;
                    csv += &format!(
                        "{},{k},{n},{batch},{label},{selected},{:.3},{:.3},{:.3},{:.3},{},{},{:.1},{:.4},{:.3e},{:.3e},{:.1},{dev}\n",
                        format.name(),
                        tm.median_us,
                        tm.p10_us,
                        tm.p90_us,
                        tm.min_us,
                        tm.reps,
                        format.weight_bytes(n, k),
                        gbs,
                        gbs * 1e9 / copy_bw,
                        rel,
                        max,
                        copy_bw / 1e9
                    );
                    if *selected || label == READ_VARIANT {
                        log(&format!(
                            "{:>5} {k:>5}x{n:<5} b{batch:<2} {:<12} {:>9.2} us {:>7.0} GB/s ({:.0}% of copy) err {rel:.1e}",
                            format.name(),
                            label,
                            tm.median_us,
                            gbs,
                            100.0 * gbs * 1e9 / copy_bw
                        ));
                    }
                }
            }
        }
    }
    Ok(csv)
}

/// One row of a `lowbitbench` CSV file (the fields models and regression checks use).
#[derive(Debug, Clone, PartialEq)]
pub struct LowbitRow {
    /// Weight format.
    pub format: Format,
    /// Inputs.
    pub k: usize,
    /// Outputs.
    pub n: usize,
    /// Batch.
    pub batch: usize,
    /// Tiling label.
    pub variant: String,
    /// Whether it was the fastest tiling of its (format, shape, batch).
    pub selected: bool,
    /// Median time, µs.
    pub median_us: f64,
    /// Weight, table and scale bytes.
    pub weight_bytes: usize,
    /// Measured copy bandwidth of the run, GB/s.
    pub copy_gbytes_per_s: f64,
    /// Norm-relative error against fp64.
    pub rel_err: f64,
    /// Device description (name, then clocks and driver in parentheses).
    pub device: String,
}

impl crate::results::Timed for LowbitRow {
    fn key(&self) -> String {
        format!(
            "lowbit {} {}x{} batch {} {}",
            self.format.name(),
            self.k,
            self.n,
            self.batch,
            self.variant
        )
    }
    fn median_us(&self) -> f64 {
        self.median_us
    }
    /// The device name alone: clocks, power and temperature change from run to run.
    fn device(&self) -> &str {
        self.device
            .split(" (")
            .next()
            .unwrap_or(&self.device)
            .trim()
    }
}

impl Format {
    /// The format named `name` (as in configs and CSV files).
    pub fn parse(name: &str) -> Result<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                GpuError::Config(format!(
                    "format {name:?}; choose one of {}",
                    Format::ALL.map(Format::name).join(", ")
                ))
            })
    }
}

/// Parses a `lowbitbench` CSV file; `path` names it in errors (with the line and column).
pub fn read_results(text: &str, path: &str) -> Result<Vec<LowbitRow>> {
    let t = crate::results::CsvTable::parse(text, path)?;
    let i = t.columns([
        "format",
        "k",
        "n",
        "batch",
        "variant",
        "selected",
        "median_us",
        "weight_bytes",
        "copy_gbytes_per_s",
        "rel_err",
        "device",
    ])?;
    t.rows()
        .map(|r| {
            Ok(LowbitRow {
                format: Format::parse(r.get(i[0])?)
                    .map_err(|e| GpuError::Config(format!("{path}: {e}")))?,
                k: r.int(i[1])?,
                n: r.int(i[2])?,
                batch: r.int(i[3])?,
                variant: r.get(i[4])?.into(),
                selected: r.flag(i[5])?,
                median_us: r.num(i[6])?,
                weight_bytes: r.int(i[7])?,
                copy_gbytes_per_s: r.num(i[8])?,
                rel_err: r.num(i[9])?,
                device: r.get(i[10])?.into(),
            })
        })
        .collect()
}

/// One row of the peers' CSV file (`scripts/lowbit_peers.py run`).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRow {
    /// `cublas_fp16` or `torch_int_mm`.
    pub peer: String,
    /// Inputs.
    pub k: usize,
    /// Outputs.
    pub n: usize,
    /// Batch asked for.
    pub batch: usize,
    /// Rows the peer actually ran (int_mm pads small batches).
    pub rows_run: usize,
    /// Median time, µs.
    pub median_us: f64,
}

/// Parses the peers' CSV file.
pub fn read_peers(text: &str, path: &str) -> Result<Vec<PeerRow>> {
    let t = crate::results::CsvTable::parse(text, path)?;
    let i = t.columns(["peer", "k", "n", "batch", "rows_run", "median_us"])?;
    t.rows()
        .map(|r| {
            Ok(PeerRow {
                peer: r.get(i[0])?.into(),
                k: r.int(i[1])?,
                n: r.int(i[2])?,
                batch: r.int(i[3])?,
                rows_run: r.int(i[4])?,
                median_us: r.num(i[5])?,
            })
        })
        .collect()
}

/// y[b][n] = sum_k W[n][k] x[b][k] in fp64 over the packed values, `x` as fp16 bit patterns
/// `[batch][k]`; rows spread over threads (bench shapes have up to 235M weights).
pub fn reference(w: &Packed, x: &[u16], batch: usize) -> Vec<f64> {
    use rayon::prelude::*;
    let xf: Vec<f64> = x
        .iter()
        .map(|&b| half::f16::from_bits(b).to_f64())
        .collect();
    let rows: Vec<Vec<f64>> = (0..w.n)
        .into_par_iter()
        .map(|r| {
            let row: Vec<f64> = (0..w.k).map(|c| w.value(r, c)).collect();
            (0..batch)
                .map(|b| {
                    row.iter()
                        .zip(&xf[b * w.k..(b + 1) * w.k])
                        .map(|(a, c)| a * c)
                        .sum()
                })
                .collect()
        })
        .collect();
    let mut y = vec![0.0; batch * w.n];
    for (r, v) in rows.iter().enumerate() {
        for b in 0..batch {
            y[b * w.n + r] = v[b];
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_values_are_the_codes_tables_and_nibbles() {
        let (n, k) = (3, 64);
        let codes: Vec<u8> = (0..n * k).map(|i| (i * 7 % 8) as u8).collect();
        let tables: Vec<f32> = (0..n * 8).map(|i| i as f32 * 0.25 - 3.0).collect();
        let w = Packed::lut(n, k, 3, &codes, &tables).unwrap();
        for r in 0..n {
            for c in 0..k {
                let want = tables[r * 8 + codes[r * k + c] as usize] as f64;
                assert_eq!(w.value(r, c), want, "({r}, {c})");
            }
        }
        let q8: Vec<i8> = (0..n * k)
            .map(|i| (i as i32 * 37 % 239 - 119) as i8)
            .collect();
        let s = [0.5f32, 0.25, 2.0];
        let w8 = Packed::nested(n, k, &q8, &s, false).unwrap();
        let w4 = Packed::nested(n, k, &q8, &s, true).unwrap();
        assert!(w4.plane_b.is_empty());
        assert_eq!(w4.plane_a.len() * 2, w8.plane_a.len() + w8.plane_b.len());
        for r in 0..n {
            for c in 0..k {
                let q = q8[r * k + c] as f64;
                assert_eq!(w8.value(r, c), q * s[r] as f64);
                // INT4: q rounded to a multiple of 16.
                let v4 = w4.value(r, c) / s[r] as f64;
                assert!((v4 - q).abs() <= 8.0 && v4.rem_euclid(16.0) == 0.0);
            }
        }
        assert!(Packed::nested(1, 64, &[120; 64], &[1.0], false).is_err());
        assert!(Packed::lut(2, 96, 3, &[0; 192], &[0.0; 16]).is_err());
        assert!(Packed::lut(2, 64, 5, &[0; 128], &[0.0; 64]).is_err());
        assert!(Packed::lut(1, 64, 2, &[4; 64], &[0.0; 4]).is_err());
    }

    #[test]
    fn weight_bytes_follow_the_bits() {
        let fp16 = Format::Fp16.weight_bytes(4096, 4096) as f64;
        for (f, ratio) in [
            (Format::Lut2, 8.0),
            (Format::Lut3, 16.0 / 3.0),
            (Format::Int4, 4.0),
            (Format::Int8, 2.0),
        ] {
            let r = fp16 / f.weight_bytes(4096, 4096) as f64;
            assert!(r < ratio && r > 0.97 * ratio, "{f:?}: {r}");
        }
    }

    #[test]
    fn tilings_fit_shared_memory_and_split_k() {
        let t = Tiling::candidates(28672, 32);
        assert!(!t.is_empty() && t.iter().all(|t| 32 * t.kc * 2 <= 96 << 10));
        assert!(t.iter().any(|t| t.mma) && t.iter().any(|t| !t.mma));
        assert!(Tiling::candidates(4096, 8).iter().any(|t| t.mma));
        let one = Tiling::candidates(4096, 1);
        assert!(one.iter().any(|t| t.kc == 4096) && one.iter().all(|t| !t.mma));
        assert!(one.iter().any(|t| t.rows == 8));
        let wave = one.iter().find(|t| t.per_sm == 0 && t.warps == 4).unwrap();
        assert_eq!(wave.label(), format!("r{}/kc{}/wave", wave.rows, wave.kc));
        // Blocks of 8 and 16 warps, named by a suffix; the tensor-core kernel keeps 4.
        for w in [8, 16] {
            let t = one.iter().find(|t| t.warps == w && t.per_sm > 0).unwrap();
            assert_eq!(
                t.label(),
                format!("r{}/kc{}/s{}/w{w}", t.rows, t.kc, t.per_sm)
            );
        }
        assert!(Tiling::candidates(4096, 32)
            .iter()
            .all(|t| !t.mma || t.warps == WARPS));
        assert!(Tiling::candidates(4096, 8)
            .iter()
            .all(|t| t.mma || t.rows * 8 <= 32));
        assert!(
            LowbitConfig::parse("shapes=[[4096,4096]]\nbatches=[3]\nformats=[\"lut2\"]", "x")
                .is_err()
        );
        assert!(
            LowbitConfig::parse("shapes=[[100,4096]]\nbatches=[1]\nformats=[\"lut2\"]", "x")
                .is_err()
        );
        assert!(
            LowbitConfig::parse("shapes=[[4096,4096]]\nbatches=[1]\nformats=[\"lut5\"]", "x")
                .is_err()
        );
        let base = "shapes=[[8192,28672]]\nbatches=[1,8]\nformats=[\"lut2\"]\n";
        let c = LowbitConfig::parse(&format!("{base}tilings=[\"r2/kc4096/s4\"]"), "x").unwrap();
        let t = c.tilings_for(8192, 1).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].label(), "r2/kc4096/s4");
        // Not a tiling of batch 8 (whose kc differ): the error lists the candidates.
        let c = LowbitConfig::parse(&format!("{base}tilings=[\"r2/kc9999/s4\"]"), "x").unwrap();
        let e = c.tilings_for(8192, 8).unwrap_err().to_string();
        assert!(e.contains("choose from") && e.contains("mma-r1/"), "{e}");
        let all = LowbitConfig::parse(base, "x").unwrap();
        assert_eq!(
            all.tilings_for(8192, 8).unwrap(),
            Tiling::candidates(8192, 8)
        );
    }

    #[test]
    fn committed_results_read_back_and_compare_across_runs() {
        use crate::results::{regress, Timed};
        let rows = read_results(
            include_str!("../../results/gpu/lowbit_h100/ours.csv"),
            "ours.csv",
        )
        .unwrap();
        assert!(rows.len() > 500);
        // One selected tiling per (format, shape, batch).
        let sel = rows.iter().filter(|r| r.selected).count();
        assert_eq!(sel, 6 * 4 * 3);
        assert_eq!(rows[0].device(), "NVIDIA H100 80GB HBM3");
        let mut slower = rows.clone();
        slower[3].median_us *= 1.2;
        slower[3].device = slower[3].device.replace("35;", "41;");
        let rep = regress(&rows, &slower, 0.1).unwrap();
        assert_eq!((rep.compared, rep.slower.len()), (rows.len(), 1));
        assert!(rep.slower[0]
            .key
            .starts_with("lowbit lut2 4096x4096 batch 1"));
        let peers = read_peers(
            include_str!("../../results/gpu/lowbit_h100/peers.csv"),
            "peers.csv",
        )
        .unwrap();
        assert_eq!(peers.iter().filter(|p| p.peer == "cublas_fp16").count(), 12);
        let bad = "format,k,n,batch,variant,selected,median_us,weight_bytes,copy_gbytes_per_s,rel_err,device\nlut9,1,1,1,x,true,1,1,1,0,d\n";
        let e = read_results(bad, "b.csv").unwrap_err().to_string();
        assert!(
            e.contains("b.csv") && e.contains("lut9") && e.contains("int8"),
            "{e}"
        );
        let bad = bad.replace("lut9", "lut2").replace(",true,", ",yes,");
        let e = read_results(&bad, "b.csv").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("selected"), "{e}");
    }
}

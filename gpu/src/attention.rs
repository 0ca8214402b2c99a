//! Masked prefill attention on the GPU: problem shapes, kernel variants, launches, and the check
//! against the fp64 reference.

use crate::device::Gpu;
use crate::kernels::Source;
use crate::mask::{MaskSpec, RowLists, TileLists};
use crate::reference::{attention_row, ErrorStats};
use crate::{Dtype, GpuError, Result};
use cudarc::driver::sys::CUfunction_attribute_enum as FnAttr;
use cudarc::driver::{
    CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchArgs, LaunchConfig, PushKernelArg,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Shape of a prefill attention problem. Q, O: `[batch, heads, n_q, head_dim]`; K, V:
/// `[batch, kv_heads, n_kv, head_dim]` (grouped-query attention when kv_heads < heads).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AttnProblem {
    /// Sequences.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (divides `heads`).
    pub kv_heads: usize,
    /// Query tokens per sequence.
    pub n_q: usize,
    /// Key tokens per sequence.
    pub n_kv: usize,
    /// Head dimension (64 or 128).
    pub head_dim: usize,
    /// Element type.
    pub dtype: Dtype,
}

impl AttnProblem {
    /// Checks what the kernels support.
    pub fn validate(&self) -> Result<()> {
        if ![64, 128].contains(&self.head_dim) {
            return Err(GpuError::unsupported(
                "head_dim",
                format!("{} (valid: 64, 128)", self.head_dim),
            ));
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(GpuError::unsupported(
                "kv_heads",
                format!("{} must divide heads = {}", self.kv_heads, self.heads),
            ));
        }
        if self.batch == 0
            || self.n_q == 0
            || self.n_kv == 0
            || self.batch > 65535
            || self.heads > 65535
        {
            return Err(GpuError::unsupported("shape", format!("{self:?}")));
        }
        Ok(())
    }
    /// Elements of Q (and O).
    pub fn q_len(&self) -> usize {
        self.batch * self.heads * self.n_q * self.head_dim
    }
    /// Elements of K (and V).
    pub fn kv_len(&self) -> usize {
        self.batch * self.kv_heads * self.n_kv * self.head_dim
    }
    /// Softmax scale 1/sqrt(d).
    pub fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
    /// Useful FLOPs for `allowed` unmasked (query, key) pairs per head: 2 d for QK^T, 2 d for PV.
    pub fn flops(&self, allowed_per_head: u64) -> f64 {
        4.0 * self.head_dim as f64 * allowed_per_head as f64 * self.heads as f64
    }
}

/// A kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AttnVariant {
    /// Tensor-core tile kernel: `16 * warps` query rows, `block_n` keys per tile.
    Block {
        /// Warps per block (4 or 8).
        warps: usize,
        /// Keys per tile (32, 64 or 128).
        block_n: usize,
    },
    /// Hopper warpgroup-MMA tile kernel (sm_90a): `64 * warpgroups` query rows, `block_n` keys.
    Wgmma {
        /// Warpgroups (of 4 warps) per block: 1 or 2.
        warpgroups: usize,
        /// Keys per tile (64 or 128).
        block_n: usize,
        /// Issue the next tile's QK^T before this tile's softmax (3 load stages).
        pipe: bool,
    },
    /// One warp per query row over its key list.
    Rows,
}

impl AttnVariant {
    /// "block-m128-n64" or "rows".
    pub fn label(&self) -> String {
        match self {
            AttnVariant::Block { warps, block_n } => format!("block-m{}-n{}", 16 * warps, block_n),
            AttnVariant::Wgmma {
                warpgroups,
                block_n,
                pipe,
            } => format!(
                "wgmma-m{}-n{}{}",
                64 * warpgroups,
                block_n,
                if *pipe { "-pipe" } else { "" }
            ),
            AttnVariant::Rows => "rows".into(),
        }
    }
    /// Parses a label: "rows", "block-mM-nN" or "wgmma-mM-nN".
    pub fn parse(label: &str) -> Result<AttnVariant> {
        if label == "rows" {
            return Ok(AttnVariant::Rows);
        }
        let bad = || {
            GpuError::Config(format!("variant {label:?} (valid: \"rows\", \"block-mM-nN\" with M in 64, 128 and N in 32, 64, 128, or \"wgmma-mM-nN\" or \"wgmma-mM-nN-pipe\" with M, N in 64, 128)"))
        };
        if let Some(rest) = label.strip_prefix("wgmma-m") {
            let (rest, pipe) = match rest.strip_suffix("-pipe") {
                Some(r) => (r, true),
                None => (rest, false),
            };
            let (m, n) = rest.split_once("-n").ok_or_else(bad)?;
            let (m, n): (usize, usize) =
                (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
            if ![64, 128].contains(&m) || ![64, 128].contains(&n) {
                return Err(bad());
            }
            return Ok(AttnVariant::Wgmma {
                warpgroups: m / 64,
                block_n: n,
                pipe,
            });
        }
        let rest = label.strip_prefix("block-m").ok_or_else(bad)?;
        let (m, n) = rest.split_once("-n").ok_or_else(bad)?;
        let (m, n): (usize, usize) = (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if ![64, 128].contains(&m) || ![32, 64, 128].contains(&n) {
            return Err(bad());
        }
        Ok(AttnVariant::Block {
            warps: m / 16,
            block_n: n,
        })
    }
    /// Query rows and keys of a tile (the row-wise kernel has none).
    pub fn tile(&self) -> Option<(usize, usize)> {
        match self {
            AttnVariant::Block { warps, block_n } => Some((16 * warps, *block_n)),
            AttnVariant::Wgmma {
                warpgroups,
                block_n,
                ..
            } => Some((64 * warpgroups, *block_n)),
            AttnVariant::Rows => None,
        }
    }
    /// The Hopper (sm_90a) variants.
    pub fn wgmma_candidates() -> Vec<AttnVariant> {
        let mut v = Vec::new();
        for warpgroups in [1, 2] {
            for block_n in [64, 128] {
                for pipe in [false, true] {
                    v.push(AttnVariant::Wgmma {
                        warpgroups,
                        block_n,
                        pipe,
                    });
                }
            }
        }
        v
    }
    /// The block variants the kernel supports for a head dimension.
    pub fn block_candidates(head_dim: usize) -> Vec<AttnVariant> {
        let mut v = Vec::new();
        for warps in [4, 8] {
            for block_n in [32, 64, 128] {
                if head_dim == 128 && block_n == 128 {
                    continue; // S and O accumulators would spill
                }
                v.push(AttnVariant::Block { warps, block_n });
            }
        }
        v
    }
    /// Dynamic shared memory of a block variant, in bytes.
    pub fn smem_bytes(&self, head_dim: usize) -> usize {
        match self {
            AttnVariant::Block { warps, block_n } => (16 * warps + 4 * block_n) * head_dim * 2,
            // + 1 KiB to align the swizzle atoms; the pipelined kernel with two warpgroups
            // adds its 6 stage barriers (8 bytes each).
            AttnVariant::Wgmma {
                warpgroups,
                block_n,
                pipe,
            } => {
                (64 * warpgroups + if *pipe { 6 } else { 4 } * block_n) * head_dim * 2
                    + 1024
                    + if *pipe && *warpgroups == 2 { 48 } else { 0 }
            }
            AttnVariant::Rows => 0,
        }
    }
}

/// Inputs drawn on the host (standard normal, rounded to the element type).
pub struct HostAttn {
    /// Q bit patterns.
    pub q: Vec<u16>,
    /// K bit patterns.
    pub k: Vec<u16>,
    /// V bit patterns.
    pub v: Vec<u16>,
}

/// Standard normal samples rounded to `dtype`, drawn in parallel chunks from `seed`.
pub fn random_elems(n: usize, dtype: Dtype, seed: u64) -> Vec<u16> {
    const CHUNK: usize = 1 << 16;
    let mut out = vec![0u16; n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        for x in dst.iter_mut() {
            let u1: f64 = rng.random::<f64>().max(1e-300);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            *x = dtype.encode(z as f32);
        }
    });
    out
}

impl HostAttn {
    /// Fresh random inputs for `p`.
    pub fn random(p: &AttnProblem, seed: u64) -> HostAttn {
        HostAttn {
            q: random_elems(p.q_len(), p.dtype, seed),
            k: random_elems(p.kv_len(), p.dtype, seed.wrapping_add(1)),
            v: random_elems(p.kv_len(), p.dtype, seed.wrapping_add(2)),
        }
    }
}

/// Device buffers of one problem.
pub struct DeviceAttn {
    /// Q.
    pub q: CudaSlice<u16>,
    /// K.
    pub k: CudaSlice<u16>,
    /// V.
    pub v: CudaSlice<u16>,
    /// Output.
    pub o: CudaSlice<u16>,
    /// Log-sum-exp per query row.
    pub lse: CudaSlice<f32>,
}

/// Copies a host slice to a new device buffer.
pub fn upload<T: cudarc::driver::DeviceRepr>(
    gpu: &Gpu,
    host: &[T],
    what: &str,
) -> Result<CudaSlice<T>> {
    gpu.stream
        .clone_htod(host)
        .map_err(|e| GpuError::driver(format!("upload {what}"), e))
}

/// Copies a device buffer back to the host.
pub fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
    gpu: &Gpu,
    dev: &CudaSlice<T>,
    what: &str,
) -> Result<Vec<T>> {
    gpu.stream
        .clone_dtoh(dev)
        .map_err(|e| GpuError::driver(format!("download {what}"), e))
}

impl DeviceAttn {
    /// Uploads `h` and allocates outputs.
    pub fn new(gpu: &Gpu, p: &AttnProblem, h: &HostAttn) -> Result<Self> {
        Ok(DeviceAttn {
            q: upload(gpu, &h.q, "Q")?,
            k: upload(gpu, &h.k, "K")?,
            v: upload(gpu, &h.v, "V")?,
            o: gpu
                .stream
                .alloc_zeros::<u16>(p.q_len())
                .map_err(|e| GpuError::driver("alloc O", e))?,
            lse: gpu
                .stream
                .alloc_zeros::<f32>(p.batch * p.heads * p.n_q)
                .map_err(|e| GpuError::driver("alloc LSE", e))?,
        })
    }
}

/// A mask on the device in the form a variant needs.
pub enum DeviceMask {
    /// Tile lists and column ranges (block kernel).
    Tiles {
        /// Host form (for counts).
        lists: TileLists,
        /// CSR offsets.
        ptr: CudaSlice<i32>,
        /// Entries.
        idx: CudaSlice<i32>,
        /// Column lower bounds.
        lo: CudaSlice<i32>,
        /// Column upper bounds.
        hi: CudaSlice<i32>,
    },
    /// Row lists (row-wise kernel).
    Rows {
        /// Host form.
        lists: RowLists,
        /// CSR offsets.
        ptr: CudaSlice<i32>,
        /// Key indices.
        idx: CudaSlice<i32>,
    },
}

impl DeviceMask {
    /// Compiles `mask` for `variant` and uploads it.
    pub fn new(gpu: &Gpu, mask: &MaskSpec, p: &AttnProblem, variant: AttnVariant) -> Result<Self> {
        // Empty CSR arrays still need one element on the device.
        let nonempty = |v: &[i32]| if v.is_empty() { vec![0] } else { v.to_vec() };
        match variant {
            AttnVariant::Block { .. } | AttnVariant::Wgmma { .. } => {
                let (bm, bn) = variant.tile().expect("tile variant");
                let lists = TileLists::build(mask, p.batch, p.n_q, p.n_kv, bm, bn)?;
                Ok(DeviceMask::Tiles {
                    ptr: upload(gpu, &lists.ptr, "tile offsets")?,
                    idx: upload(gpu, &nonempty(&lists.idx), "tile entries")?,
                    lo: upload(gpu, &lists.col_lo, "column ranges")?,
                    hi: upload(gpu, &lists.col_hi, "column ranges")?,
                    lists,
                })
            }
            AttnVariant::Rows => {
                let lists = RowLists::build(mask, p.batch, p.n_q, p.n_kv)?;
                Ok(DeviceMask::Rows {
                    ptr: upload(gpu, &lists.ptr, "row offsets")?,
                    idx: upload(gpu, &nonempty(&lists.idx), "row entries")?,
                    lists,
                })
            }
        }
    }
    /// Allowed elements per head over the whole batch.
    pub fn allowed_per_head(&self, batch: usize) -> u64 {
        match self {
            DeviceMask::Tiles { lists, .. } => {
                lists.allowed * if lists.batched { 1 } else { batch as u64 }
            }
            DeviceMask::Rows { lists, .. } => {
                lists.idx.len() as u64 * if lists.batched { 1 } else { batch as u64 }
            }
        }
    }
}

/// Compile-time defines of a variant.
pub fn defines(p: &AttnProblem, variant: AttnVariant) -> Vec<(&'static str, i64)> {
    let mut d = vec![
        ("HEAD_DIM", p.head_dim as i64),
        ("IS_BF16", i64::from(p.dtype == Dtype::Bf16)),
    ];
    if let AttnVariant::Block { warps, block_n } = variant {
        d.push(("NWARPS", warps as i64));
        d.push(("BLOCK_N", block_n as i64));
    } else if let AttnVariant::Wgmma {
        warpgroups,
        block_n,
        pipe,
    } = variant
    {
        d.push(("NWG", warpgroups as i64));
        d.push(("BLOCK_N", block_n as i64));
        d.push(("PIPE", i64::from(pipe)));
        // The two-warpgroup pipelined kernel loads K and V tiles with TMA.
        d.push(("TMA", i64::from(pipe && warpgroups == 2)));
    } else {
        d.push(("NWARPS", 4));
        d.push(("BLOCK_N", 64));
    }
    d
}

/// Source file and entry point of a variant.
pub fn kernel_of(variant: AttnVariant) -> (Source, &'static str) {
    match variant {
        AttnVariant::Block { .. } => (Source::Attention, "attn_block"),
        AttnVariant::Wgmma { .. } => (Source::AttentionSm90, "attn_wgmma"),
        AttnVariant::Rows => (Source::Attention, "attn_rows"),
    }
}

/// Registers, local (spill) bytes and static shared memory of the compiled variant.
pub fn resources(gpu: &Gpu, p: &AttnProblem, variant: AttnVariant) -> Result<(i32, i32)> {
    let (source, name) = kernel_of(variant);
    let f = gpu.function(source, &defines(p, variant), name)?;
    let regs = f.num_regs().map_err(|e| GpuError::driver("num_regs", e))?;
    let local = f
        .local_size_bytes()
        .map_err(|e| GpuError::driver("local_size_bytes", e))?;
    Ok((regs, local))
}

/// Borrowed buffers of one launch: Q, K, V in, O and LSE out.
pub struct AttnBufs<'a> {
    /// Q.
    pub q: &'a CudaSlice<u16>,
    /// K.
    pub k: &'a CudaSlice<u16>,
    /// V.
    pub v: &'a CudaSlice<u16>,
    /// Output.
    pub o: &'a mut CudaSlice<u16>,
    /// Log-sum-exp per query row.
    pub lse: &'a mut CudaSlice<f32>,
}

impl DeviceAttn {
    /// The buffers, borrowed for a launch.
    pub fn bufs(&mut self) -> AttnBufs<'_> {
        AttnBufs {
            q: &self.q,
            k: &self.k,
            v: &self.v,
            o: &mut self.o,
            lse: &mut self.lse,
        }
    }
}

/// A `CUtensorMap`, passed by value to a kernel (a `__grid_constant__` parameter).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct TensorMap(cudarc::driver::sys::CUtensorMap);

#[allow(unsafe_code)]
// SAFETY: a plain 128-byte C struct, which the driver copies into the kernel's parameters.
unsafe impl DeviceRepr for TensorMap {}

/// Tensor map of K or V, viewed as `[batch * kv_heads, n_kv, head_dim]` 16-bit elements, whose
/// box is one 64-column block of `block_n` keys, 128-byte swizzled: the shared-memory layout the
/// wgmma kernel reads. Rows past `n_kv` read as zeros.
fn kv_tensor_map(
    buf: &CudaSlice<u16>,
    stream: &CudaStream,
    p: &AttnProblem,
    block_n: usize,
) -> Result<TensorMap> {
    use cudarc::driver::sys;
    let (ptr, _sync) = buf.device_ptr(stream);
    let dims = [
        p.head_dim as u64,
        p.n_kv as u64,
        (p.batch * p.kv_heads) as u64,
    ];
    // Byte strides of dimensions 1 and 2.
    let strides = [(p.head_dim * 2) as u64, (p.n_kv * p.head_dim * 2) as u64];
    let box_dims = [64u32, block_n as u32, 1];
    let element_strides = [1u32; 3];
    let mut map = std::mem::MaybeUninit::<sys::CUtensorMap>::zeroed();
    #[allow(unsafe_code)]
    // SAFETY: every array has the rank's length (3; strides 2), `map` is writable, and `ptr`
    // is a live allocation of at least p.kv_len() elements (checked by the caller).
    let encoded = unsafe {
        sys::cuTensorMapEncodeTiled(
            map.as_mut_ptr(),
            sys::CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_UINT16,
            3,
            ptr as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            box_dims.as_ptr(),
            element_strides.as_ptr(),
            sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    encoded
        .result()
        .map_err(|e| GpuError::driver("encoding a TMA tensor map of K or V", e))?;
    #[allow(unsafe_code)]
    // SAFETY: zero-initialised, then written by the driver; plain data.
    Ok(TensorMap(unsafe { map.assume_init() }))
}

/// Pushes the arguments every attention kernel starts with: Q, K, V, O, LSE, H, HKV, NQ, NKV
/// and the softmax scale in base 2.
fn push_common<'a>(
    b: &mut LaunchArgs<'a>,
    bufs: &'a mut AttnBufs<'_>,
    dims: &'a [i32; 4],
    scale_log2: &'a f32,
) {
    b.arg(bufs.q).arg(bufs.k).arg(bufs.v);
    b.arg(&mut *bufs.o).arg(&mut *bufs.lse);
    for d in dims {
        b.arg(d);
    }
    b.arg(scale_log2);
}

/// Enqueues one forward pass on the GPU's stream.
pub fn launch(
    gpu: &Gpu,
    p: &AttnProblem,
    variant: AttnVariant,
    dev: &mut DeviceAttn,
    mask: &DeviceMask,
) -> Result<()> {
    launch_on(gpu, &gpu.stream, p, variant, dev.bufs(), mask)
}

/// Enqueues one forward pass on `stream` (of the GPU's context) with borrowed buffers.
pub fn launch_on(
    gpu: &Gpu,
    stream: &CudaStream,
    p: &AttnProblem,
    variant: AttnVariant,
    mut bufs: AttnBufs<'_>,
    mask: &DeviceMask,
) -> Result<()> {
    if bufs.q.len() < p.q_len()
        || bufs.k.len() < p.kv_len()
        || bufs.v.len() < p.kv_len()
        || bufs.o.len() < p.q_len()
        || bufs.lse.len() < p.batch * p.heads * p.n_q
    {
        return Err(GpuError::Check(format!(
            "attention buffers smaller than the problem {p:?}"
        )));
    }
    p.validate()?;
    let scale_log2 = (p.scale() * std::f64::consts::LOG2_E) as f32;
    let dims = [
        p.heads as i32,
        p.kv_heads as i32,
        p.n_q as i32,
        p.n_kv as i32,
    ];
    match (variant, mask) {
        (
            AttnVariant::Block { .. } | AttnVariant::Wgmma { .. },
            DeviceMask::Tiles {
                lists,
                ptr,
                idx,
                lo,
                hi,
            },
        ) => {
            if matches!(variant, AttnVariant::Wgmma { .. }) && gpu.arch() != "sm_90a" {
                return Err(GpuError::unsupported(
                    "kernel variant",
                    format!(
                        "{} needs a Hopper GPU (sm_90a), not {}",
                        variant.label(),
                        gpu.arch()
                    ),
                ));
            }
            let (source, name) = kernel_of(variant);
            let f = gpu.function(source, &defines(p, variant), name)?;
            let threads = match variant {
                AttnVariant::Block { warps, .. } => 32 * warps,
                AttnVariant::Wgmma { warpgroups, .. } => 128 * warpgroups,
                AttnVariant::Rows => unreachable!("row-wise variant with tile lists"),
            };
            let smem = variant.smem_bytes(p.head_dim);
            if smem > gpu.info.smem_optin_bytes as usize {
                return Err(GpuError::unsupported(
                    "tile shape",
                    format!(
                        "{} needs {smem} B of shared memory, the device allows {}",
                        variant.label(),
                        gpu.info.smem_optin_bytes
                    ),
                ));
            }
            f.set_attribute(
                FnAttr::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem as i32,
            )
            .map_err(|e| GpuError::driver("raising the shared-memory limit", e))?;
            let batched = i32::from(lists.batched);
            // The two-warpgroup pipelined kernel takes tensor maps of K and V (TMA loads).
            let maps = match variant {
                AttnVariant::Wgmma {
                    warpgroups: 2,
                    block_n,
                    pipe: true,
                } => Some((
                    kv_tensor_map(bufs.k, stream, p, block_n)?,
                    kv_tensor_map(bufs.v, stream, p, block_n)?,
                )),
                _ => None,
            };
            let cfg = LaunchConfig {
                grid_dim: (lists.n_qtiles as u32, p.heads as u32, p.batch as u32),
                block_dim: (threads as u32, 1, 1),
                shared_mem_bytes: smem as u32,
            };
            #[allow(unsafe_code)]
            // SAFETY: argument order and types match attn_block and attn_wgmma (the same
            // signature, plus the two tensor maps of the TMA variant, built for `p` from K and
            // V, which outlive the launch); every buffer is sized for `p`
            // and the lists were built for this tile shape and problem.
            unsafe {
                let mut b = stream.launch_builder(&f);
                push_common(&mut b, &mut bufs, &dims, &scale_log2);
                b.arg(ptr).arg(idx).arg(lo).arg(hi).arg(&batched);
                if let Some((map_k, map_v)) = &maps {
                    b.arg(map_k).arg(map_v);
                }
                b.launch(cfg)
                    .map_err(|e| GpuError::driver("attn_block", e))?;
            }
        }
        (AttnVariant::Rows, DeviceMask::Rows { lists, ptr, idx }) => {
            let f = gpu.function(Source::Attention, &defines(p, variant), "attn_rows")?;
            let batched = i32::from(lists.batched);
            let cfg = LaunchConfig {
                grid_dim: (p.n_q.div_ceil(4) as u32, p.heads as u32, p.batch as u32),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            #[allow(unsafe_code)]
            // SAFETY: argument order and types match attn_rows; buffers sized for `p`.
            unsafe {
                let mut b = stream.launch_builder(&f);
                push_common(&mut b, &mut bufs, &dims, &scale_log2);
                b.arg(ptr)
                    .arg(idx)
                    .arg(&batched)
                    .launch(cfg)
                    .map_err(|e| GpuError::driver("attn_rows", e))?;
            }
        }
        _ => {
            return Err(GpuError::Check(
                "mask form does not match the kernel variant".into(),
            ))
        }
    }
    Ok(())
}

/// Result of checking a GPU output against the fp64 reference.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AttnCheck {
    /// Output error over the sampled rows.
    pub out: ErrorStats,
    /// Largest absolute log-sum-exp error over sampled rows with at least one key.
    pub lse_max_abs: f64,
    /// Output elements (all rows) that are not finite: unwritten poison.
    pub unwritten: u64,
}

/// Compares `o`/`lse` (downloaded) with the fp64 reference on `rows` random (b, h, i) rows
/// (every row when `rows` is at least their number).
pub fn check(
    p: &AttnProblem,
    mask: &MaskSpec,
    h: &HostAttn,
    o: &[u16],
    lse: &[f32],
    rows: usize,
    seed: u64,
) -> AttnCheck {
    let d = p.head_dim;
    let unwritten = o
        .par_iter()
        .filter(|&&x| !p.dtype.decode(x).is_finite())
        .count() as u64;
    let total = p.batch * p.heads * p.n_q;
    let picks: Vec<usize> = if rows >= total {
        (0..total).collect()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows).map(|_| rng.random_range(0..total)).collect()
    };
    let dec = |x: &[u16]| -> Vec<f32> { x.iter().map(|&b| p.dtype.decode(b)).collect() };
    let group = p.heads / p.kv_heads;
    let results: Vec<(Vec<f64>, Vec<f64>, f64, f64)> = picks
        .par_iter()
        .map(|&r| {
            let (bh, i) = (r / p.n_q, r % p.n_q);
            let (b, hh) = (bh / p.heads, bh % p.heads);
            let kvb = (b * p.kv_heads + hh / group) * p.n_kv * d;
            let k = dec(&h.k[kvb..kvb + p.n_kv * d]);
            let v = dec(&h.v[kvb..kvb + p.n_kv * d]);
            let q: Vec<f64> = h.q[r * d..(r + 1) * d]
                .iter()
                .map(|&x| p.dtype.decode(x) as f64)
                .collect();
            let keys = (0..p.n_kv).filter(|&j| mask.allowed(b, i, j, p.n_q, p.n_kv));
            let (want, wl) = attention_row(&q, &k, &v, d, keys, p.scale());
            let got: Vec<f64> = o[r * d..(r + 1) * d]
                .iter()
                .map(|&x| p.dtype.decode(x) as f64)
                .collect();
            (got, want, lse[r] as f64, wl)
        })
        .collect();
    let mut out = ErrorStats::default();
    let mut lse_max_abs: f64 = 0.0;
    for (got, want, gl, wl) in &results {
        out.add(got, want);
        if wl.is_finite() {
            lse_max_abs = lse_max_abs.max((gl - wl).abs());
        } else if gl.is_finite() {
            lse_max_abs = f64::INFINITY;
        }
    }
    AttnCheck {
        out,
        lse_max_abs,
        unwritten,
    }
}

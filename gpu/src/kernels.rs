//! The CUDA sources (kept as `.cu` files beside this crate) and their run-time compilation.
//!
//! NVRTC compiles them without any CUDA header: `common.cuh` defines the element conversions
//! with PTX. Variants are selected with `-D` defines (head dim, tile sizes, element type), so
//! each variant is its own fully specialised module.

use crate::{GpuError, Result};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

const COMMON: &str = include_str!("../kernels/common.cuh");

/// A kernel source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `copy.cu`: bandwidth probe and buffer fill.
    Copy,
    /// `attention.cu`: masked prefill attention (block and row-wise kernels).
    Attention,
    /// `decode.cu`: split-KV decode over fp16 and product-quantized caches, and the merge.
    Decode,
    /// `attention_sm90.cu`: masked prefill attention with Hopper's warpgroup MMA (sm_90a).
    AttentionSm90,
    /// `ring.cu`: partial-result merge and conversion for sequence-parallel attention.
    Ring,
    /// `lowbit.cu`: GEMV and small-batch GEMM over clustered, INT8, nested INT4 and fp16
    /// weights.
    Lowbit,
}

impl Source {
    /// File name of the source.
    pub fn file(self) -> &'static str {
        match self {
            Source::Copy => "copy.cu",
            Source::Attention => "attention.cu",
            Source::Decode => "decode.cu",
            Source::AttentionSm90 => "attention_sm90.cu",
            Source::Ring => "ring.cu",
            Source::Lowbit => "lowbit.cu",
        }
    }
    /// The source text (common helpers prepended).
    pub fn text(self) -> String {
        let body = match self {
            Source::Copy => include_str!("../kernels/copy.cu"),
            Source::Attention => include_str!("../kernels/attention.cu"),
            Source::Decode => include_str!("../kernels/decode.cu"),
            Source::AttentionSm90 => include_str!("../kernels/attention_sm90.cu"),
            Source::Ring => include_str!("../kernels/ring.cu"),
            Source::Lowbit => include_str!("../kernels/lowbit.cu"),
        };
        let body = body
            .replace("#include_wgmma", include_str!("../kernels/wgmma.cuh"))
            .replace("#include_softmax", include_str!("../kernels/softmax.cuh"));
        format!("{COMMON}\n{body}")
    }
}

/// The defines every kernel takes: head dimension and element type.
pub fn elem_defines(head_dim: usize, dtype: crate::Dtype) -> Vec<(&'static str, i64)> {
    vec![
        ("HEAD_DIM", head_dim as i64),
        ("IS_BF16", i64::from(dtype == crate::Dtype::Bf16)),
    ]
}

/// A source and its defines: one compiled module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// The source file.
    pub source: Source,
    /// `-D` defines, in the order given.
    pub defines: Vec<(String, i64)>,
}

impl KernelKey {
    /// A key from a source and its defines.
    pub fn new(source: Source, defines: &[(&str, i64)]) -> Self {
        KernelKey {
            source,
            defines: defines.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
    /// "attention.cu[HEAD_DIM=128,NWARPS=4,...]".
    pub fn label(&self) -> String {
        let d: Vec<String> = self
            .defines
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}[{}]", self.source.file(), d.join(","))
    }
    /// Compiles to PTX for `arch` (e.g. "sm_90a").
    pub fn compile(&self, arch: &str) -> Result<Ptx> {
        let mut options: Vec<String> =
            vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()];
        options.extend(self.defines.iter().map(|(k, v)| format!("-D{k}={v}")));
        let opts = CompileOptions {
            options,
            ..Default::default()
        };
        compile_ptx_with_opts(self.source.text(), opts).map_err(|e| GpuError::Compile {
            kernel: self.label(),
            log: e.to_string(),
        })
    }
}

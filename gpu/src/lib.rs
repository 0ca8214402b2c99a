//! The GPU side of archsweep: CUDA kernels kept as `.cu` files and compiled at run time with
//! NVRTC (through cudarc, loaded dynamically), a measurement harness, and the fp64 CPU references
//! every kernel is checked against.
//!
//! Every machine builds and tests this crate. Without a CUDA driver, [`device::Gpu::open`] returns
//! [`GpuError::NoDevice`] and callers say visibly that GPU work was skipped; the CPU parts (mask
//! representation, references, product quantization, the bench configuration) run everywhere.
//!
//! - [`device`]: the device, its properties and clocks, and run-time compiled kernels ([`kernels`]).
//! - [`harness`]: warm-up, CUDA-event timing, medians, L2 flushing, poisoned outputs.
//! - [`mask`]: one mask representation for masked attention (tile lists + per-column row ranges,
//!   row lists for the row-wise kernel).
//! - [`attention`], [`decode`]: host launchers of the prefill and decode kernels.
//! - [`lowbit`]: GEMV/GEMM over clustered 2-4-bit, INT8 and nested INT4 weights.
//! - [`pq`]: product quantization of KV caches (k-means codebooks, codes).
//! - [`reference`]: fp64 CPU attention and error measures.
//! - [`bench`]: the lean bench driver behind the `gpubench` binary (TOML in, CSV out).
#![deny(missing_docs)]

pub mod attention;
pub mod bench;
pub mod decode;
pub mod device;
pub mod harness;
pub mod kernels;
pub mod lowbit;
pub mod mask;
pub mod pq;
pub mod reference;
pub mod results;
pub mod ring;
pub mod ring_bench;
pub mod search;

/// Errors of the GPU crate.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No usable CUDA device or driver library on this machine.
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    /// A CUDA driver call failed.
    #[error("CUDA driver error in {context}: {message}")]
    Driver {
        /// What was being done.
        context: String,
        /// The driver's message.
        message: String,
    },
    /// NVRTC rejected a kernel.
    #[error("NVRTC could not compile {kernel}: {log}")]
    Compile {
        /// Kernel source and defines.
        kernel: String,
        /// Compiler log.
        log: String,
    },
    /// A problem shape or parameter the kernels do not support.
    #[error("unsupported {what}: {why}")]
    Unsupported {
        /// The parameter.
        what: String,
        /// Why, with the valid choices.
        why: String,
    },
    /// A bench configuration error.
    #[error("{0}")]
    Config(String),
    /// A kernel's output failed its check.
    #[error("{0}")]
    Check(String),
    /// I/O error with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl GpuError {
    /// Wraps a driver error with what was being done.
    pub fn driver(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        GpuError::Driver {
            context: context.into(),
            message: e.to_string(),
        }
    }
    /// An unsupported parameter with the valid choices.
    pub fn unsupported(what: impl Into<String>, why: impl Into<String>) -> Self {
        GpuError::Unsupported {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, GpuError>;

/// Element type of attention inputs and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl Dtype {
    /// Name as written in configs and CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
        }
    }
    /// Rounds an f32 to this type's 16-bit pattern (round to nearest even).
    pub fn encode(self, x: f32) -> u16 {
        match self {
            Dtype::F16 => half::f16::from_f32(x).to_bits(),
            Dtype::Bf16 => half::bf16::from_f32(x).to_bits(),
        }
    }
    /// The value of a 16-bit pattern of this type.
    pub fn decode(self, bits: u16) -> f32 {
        match self {
            Dtype::F16 => half::f16::from_bits(bits).to_f32(),
            Dtype::Bf16 => half::bf16::from_bits(bits).to_f32(),
        }
    }
    /// Unit roundoff (half an ulp at 1): the scale of the expected kernel error.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Dtype::F16 => 2f64.powi(-11),
            Dtype::Bf16 => 2f64.powi(-8),
        }
    }
}

/// The `main` of the GPU command-line tools (`gpubench`, `ringbench`): `NAME CONFIG OUT`, with
/// the config file read and an existing output refused before `go` runs. Exits 0 on success, 2
/// on bad usage or any error, 3 when no CUDA device (or no NCCL) is present.
pub fn tool_main(name: &str, usage: &str, go: impl FnOnce(&str, &str, &str) -> Result<()>) -> ! {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: {name} {usage}");
        std::process::exit(2);
    }
    let (cfg_path, out_path) = (&args[1], &args[2]);
    let run = || -> Result<()> {
        let text = std::fs::read_to_string(cfg_path).map_err(|e| GpuError::Io {
            path: cfg_path.into(),
            source: e,
        })?;
        if std::path::Path::new(out_path).exists() {
            return Err(GpuError::Config(format!(
                "{out_path} exists: results are never overwritten; choose a new file"
            )));
        }
        go(&text, cfg_path, out_path)
    };
    let code = match run() {
        Ok(()) => 0,
        Err(GpuError::NoDevice(why)) => {
            eprintln!("{name}: skipped: no CUDA device ({why})");
            3
        }
        Err(e) => {
            eprintln!("{name}: error: {e}");
            2
        }
    };
    std::process::exit(code);
}

//! ReRAM processing-in-memory for second-order training (RePAST, arXiv 2210.15255).
//!
//! - [`tech`]: technology files (component latency, power, area; ISAAC 32 nm by default);
//! - [`xbar`]: device non-idealities and bit-sliced VMM crossbars with DACs and ADCs;
//! - [`inv`]: closed-loop analog inversion (INV) and high-precision solves from 8-bit INV plus
//!   a precise VMM (refinement or series expansion);
//! - [`cost`]: activity counts rolled up into latency, energy and area; the ISAAC tile;
//! - [`kfac`]: K-FAC training of an MLP and a small CNN on the 8x8 digits with simulated
//!   inverses in the loop, against SGD and Adam;
//! - [`arch`]: the K-FAC training accelerator (factor mapping, fused or separate INV and VMM)
//!   and a PipeLayer-style first-order pipeline.

pub mod arch;
pub mod cost;
pub mod inv;
pub mod kfac;
pub mod tech;
pub mod xbar;

/// Why a ReRAM simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReramError {
    /// A technology file that cannot be read or parsed (the message carries line and column).
    #[error("{file}: {message}")]
    TechFile {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A technology value out of range.
    #[error("{file}: field `{field}` {message}")]
    TechValue {
        /// The file.
        file: String,
        /// The field (section.key).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A design or workload parameter out of range.
    #[error("{0}")]
    Param(String),
    /// The INV loop would be unstable.
    #[error("the INV loop is unstable: an eigenvalue has real part {min_real:.3e} (relative to the largest entry); it must be positive")]
    Unstable {
        /// Smallest real part over the largest entry.
        min_real: f64,
    },
    /// The stability check's eigenvalue iteration did not converge.
    #[error("the eigenvalues of the programmed matrix did not converge; its stability is unknown")]
    Eigen,
    /// The programmed matrix is singular.
    #[error("the programmed matrix is singular")]
    Singular,
    /// A dataset that cannot be parsed.
    #[error("dataset line {line}: {message}")]
    Data {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

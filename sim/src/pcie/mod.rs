//! PCIe links at TLP granularity: the link layer and its overheads ([`link`]), TLP rules
//! ([`tlp`]), an event-driven simulator of DMA and NIC workloads that predicts bandwidth and
//! latency and writes TLP traces ([`engine`]), the trace format ([`trace`]), a validator that
//! checks every rule a real trace obeys ([`validate`]), and a learned trace generator with a
//! constraint layer and fidelity metrics ([`generate`]).
//!
//! The pcie-bench model (Neugebauer et al., SIGCOMM 2018) is reproduced in closed form by
//! [`link::bench`]; the simulator deliberately differs from it where the wire does (DLLPs ride
//! the reverse direction and are billed by their 8 wire bytes; host latency and cache lines
//! matter), see the README.

pub mod engine;
pub mod generate;
pub mod link;
pub mod tlp;
pub mod trace;
pub mod validate;

/// Why a link, workload, trace or generator request is rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcieError {
    /// A parameter out of range, with the field name and the valid choices.
    #[error("{field}: {why}")]
    Config {
        /// Field.
        field: String,
        /// What is wrong and what is valid.
        why: String,
    },
    /// A malformed trace: the line (1-based, counting the header) and what is wrong.
    #[error("{file}:{line}: {message}")]
    Trace {
        /// The trace file (or `<memory>`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a trace failed.
    #[error("{0}")]
    Io(String),
    /// The reference trace cannot train a generator (too short, no TLPs of some kind).
    #[error("reference trace: {0}")]
    Reference(String),
}

pub(crate) fn config_err(field: &str, why: impl Into<String>) -> PcieError {
    PcieError::Config {
        field: field.into(),
        why: why.into(),
    }
}

//! Sequence-parallel attention across devices: Ring Attention, zigzag Ring, TokenRing and
//! zigzag TokenRing, as explicit plans ([`Plan`]), timed by an event-driven simulator with
//! link contention ([`simulate`]) and executed in fp64 ([`reference`]).
//!
//! Ring Attention passes K/V shards one hop per step; TokenRing (arXiv 2412.20501) passes Q
//! one hop forward and sends each step's partial output and log-sum-exp straight back to the
//! Q's owner, using the other direction of the links. Per step and device, Ring moves
//! `2 n H_kv d` elements one way; TokenRing `n H d` forward and `n H d` plus `n H` fp32
//! log-sum-exps back.
//!
//! Compute comes from a [`ComputeModel`] (the calibrated GPU kernel model in `models`, or a
//! [`Roofline`]); the network from a [`Topology`] with a bandwidth per link direction.

mod engine;
pub mod reference;
mod schedule;
mod topology;

pub use engine::{
    finalize_bytes, merge_bytes, simulate, simulate_on, Activity, Cluster, ComputeModel, Interval,
    Roofline, Timeline,
};
pub use schedule::{AttnShape, Call, Partition, Payload, Plan, Schedule, Transfer, Work};
pub use topology::{Link, Network, Topology};

/// Why a schedule cannot be planned, simulated or executed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RingError {
    /// A parameter out of range, with the field name and the valid choices.
    #[error("{field}: {why}")]
    Config {
        /// Field.
        field: String,
        /// What is wrong and what is valid.
        why: String,
    },
    /// The plan cannot run: a task waits for data that never arrives (a schedule bug).
    #[error("schedule cannot complete: {0}")]
    Deadlock(String),
}

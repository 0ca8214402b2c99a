//! Cycle-approximate simulators: pure functions from a configuration to results and statistics.
//!
//! - [`modred`]: LUT-based large-number modular reducers (conventional, iterative, ALLMod-style
//!   hybrid) and the Barrett and Montgomery baselines, bit-exact, with cycle counts and resource
//!   inventories.
//!
//! - [`ring`]: sequence-parallel attention schedules (Ring, zigzag Ring, TokenRing, zigzag
//!   TokenRing) on NVSwitch, mesh, PCIe-tree, ring and torus networks, with an fp64 execution.
//!
//! - [`reram`]: ReRAM crossbars (bit-sliced VMM, closed-loop analog inversion, high-precision
//!   solves), component costs, and K-FAC training with simulated inverses in the loop.
//!
//! - [`pcie`]: PCIe links at TLP granularity: link-layer overheads, an event-driven DMA and NIC
//!   simulator with traces, a trace validator and a constrained trace generator.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod modred;
pub mod pcie;
pub mod reram;
pub mod ring;

//! Cycle-approximate simulators: pure functions from a configuration to results and statistics.
//!
//! - [`modred`]: LUT-based large-number modular reducers (conventional, iterative, ALLMod-style
//!   hybrid) and the Barrett and Montgomery baselines, bit-exact, with cycle counts and resource
//!   inventories.
//!
//! - [`ring`]: sequence-parallel attention schedules (Ring, zigzag Ring, TokenRing, zigzag
//!   TokenRing) on NVSwitch, mesh, PCIe-tree, ring and torus networks, with an fp64 execution.
//!
//! The ReRAM and PCIe simulators arrive with their issues.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod modred;
pub mod ring;

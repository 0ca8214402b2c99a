//! Cycle-approximate simulators: pure functions from a configuration to results and statistics.
//!
//! - [`modred`]: LUT-based large-number modular reducers (conventional, iterative, ALLMod-style
//!   hybrid) and the Barrett and Montgomery baselines, bit-exact, with cycle counts and resource
//!   inventories.
//!
//! The ReRAM, PCIe and sequence-parallel attention simulators arrive with their issues.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod modred;

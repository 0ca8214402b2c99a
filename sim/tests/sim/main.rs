//! Integration tests of the simulators (one test binary for the crate).

mod modred;
mod pcie;
mod reram;
mod ring;

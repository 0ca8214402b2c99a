//! Cycle-approximate simulators (ReRAM crossbars, modular reducers, PCIe links, sequence-parallel attention schedules). No simulator has landed yet; each arrives with its issue.
#![deny(missing_docs)]

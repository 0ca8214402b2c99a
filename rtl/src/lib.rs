//! Verilog export (syntax tree and emitters), testbench generation, and the Icarus Verilog, Verilator and Yosys drivers. Nothing has landed yet; it arrives with the first design that exports RTL.
#![deny(missing_docs)]

//! Verilog export: a small syntax tree ([`ast`]) and its Verilog-2001 emitter ([`emit`]), and
//! drivers for the open-source EDA tools ([`tools`]: Icarus Verilog, Verilator, Yosys,
//! nextpnr-ice40) that lint, simulate and synthesize what is emitted.
//!
//! Designs are built as syntax trees, never by gluing strings, so that every emitted module is
//! well formed by construction and snapshot tests compare whole modules.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ast;
pub mod emit;
pub mod tools;

pub use ast::{Expr, Item, Module, Port, Stmt};

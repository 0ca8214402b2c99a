//! Verilog generation for modred designs (arrives next).

//! Design parameters of a reducer and their validation.

use std::fmt;
use std::str::FromStr;

use super::ModredError;

/// Largest group (table index) width, in bits: a 2^12-entry table is already a BRAM-sized ROM.
pub const MAX_GROUP_BITS: u32 = 12;
/// Width of the overflow-round table indices, in bits.
pub const MAX_OVERFLOW_BITS: u32 = 8;

/// The reducer architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Conventional LUT reduction: one table per group, all in parallel.
    Lut,
    /// Iterative reduction: a small unit of position-indexed tables reused over several cycles.
    Iter,
    /// ALLMod-style hybrid: parallel tables for the low groups, the iterative unit for the rest.
    Hybrid,
    /// Barrett reduction (two multiplications, at most two subtractions).
    Barrett,
    /// Montgomery reduction (two multiplications, one conditional subtraction).
    Montgomery,
}

impl Arch {
    /// All architectures with their names.
    pub const ALL: [(Arch, &'static str); 5] = [
        (Arch::Lut, "lut"),
        (Arch::Iter, "iter"),
        (Arch::Hybrid, "hybrid"),
        (Arch::Barrett, "barrett"),
        (Arch::Montgomery, "montgomery"),
    ];

    /// Whether the architecture is one of the table-based family (conventional, iterative, hybrid).
    pub fn is_table_based(self) -> bool {
        matches!(self, Arch::Lut | Arch::Iter | Arch::Hybrid)
    }
}

/// How the adder trees combine their operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Two-input carry-propagate adders.
    Binary,
    /// Three-input carry-propagate adders (one LUT6 per bit on Xilinx parts).
    Ternary,
    /// 3:2 carry-save compressors and one final carry-propagate adder.
    Csa,
}

impl Arity {
    /// All arities with their names.
    pub const ALL: [(Arity, &'static str); 3] = [
        (Arity::Binary, "2"),
        (Arity::Ternary, "3"),
        (Arity::Csa, "csa"),
    ];
}

/// Where the tables are stored on an FPGA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableMem {
    /// Whichever of LUT ROM and block RAM costs less area (by the cost model's weights).
    #[default]
    Auto,
    /// LUT6 ROMs (with F7/F8 multiplexers for deeper tables).
    Lut,
    /// 36-kbit block RAMs.
    Bram,
}

impl TableMem {
    /// All choices with their names.
    pub const ALL: [(TableMem, &'static str); 3] = [
        (TableMem::Auto, "auto"),
        (TableMem::Lut, "lut"),
        (TableMem::Bram, "bram"),
    ];
}

macro_rules! named_enum {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let name = <$t>::ALL.iter().find(|(a, _)| a == self).map(|(_, n)| *n);
                f.write_str(name.unwrap_or("?"))
            }
        }
        impl FromStr for $t {
            type Err = ModredError;
            fn from_str(s: &str) -> Result<Self, ModredError> {
                <$t>::ALL
                    .iter()
                    .find(|(_, n)| *n == s)
                    .map(|(a, _)| *a)
                    .ok_or_else(|| ModredError::Parameter {
                        name: $what,
                        value: s.to_string(),
                        valid: format!(
                            "one of {}",
                            <$t>::ALL
                                .iter()
                                .map(|(_, n)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            }
        }
    };
}
named_enum!(Arch, "arch");
named_enum!(Arity, "arity");
named_enum!(TableMem, "table_mem");

/// Checks an input width against a modulus width: more than `n`, at most 4 x the largest modulus.
pub(super) fn check_input_width(n: u64, w: u64) -> Result<(), ModredError> {
    let max = 4 * super::MAX_MODULUS_BITS;
    if w <= n || w > max {
        return Err(ModredError::Parameter {
            name: "input_bits",
            value: w.to_string(),
            valid: format!("{} to {max} (more than the modulus width)", n + 1),
        });
    }
    Ok(())
}

/// One reducer design: architecture, input width and the parameters of the table-based family
/// (ignored by Barrett and Montgomery).
#[derive(Debug, Clone, PartialEq)]
pub struct DesignSpec {
    /// Architecture.
    pub arch: Arch,
    /// Input width `w` in bits (e.g. `2n` for a product); must exceed the modulus width.
    pub input_bits: u64,
    /// Group width `k` of the parallel tables (1..=[`MAX_GROUP_BITS`]).
    pub k: u32,
    /// Digit width of the iterative unit's tables (1..=[`MAX_GROUP_BITS`]).
    pub k_iter: u32,
    /// Cycles per result of the iterative and hybrid designs (their initiation interval), >= 1.
    pub cycles: u32,
    /// Share of the bits above the modulus width served by parallel tables (hybrid only, 0..1).
    pub lut_share: f64,
    /// Iteration at which the LUT partial sum is added into the accumulator; `>= cycles` (or
    /// earlier than the LUT tree can deliver it past the last iteration) means a separate
    /// adder after the last iteration.
    pub fusion: u32,
    /// Adder-tree arity.
    pub arity: Arity,
    /// Adder-tree levels between pipeline registers (>= 1).
    pub regs_every: u32,
    /// Table storage on an FPGA.
    pub table_mem: TableMem,
}

impl DesignSpec {
    /// The conventional LUT design with `k`-bit groups for `input_bits`-bit inputs, binary
    /// adder tree registered at every level.
    pub fn lut(input_bits: u64, k: u32) -> Self {
        DesignSpec {
            arch: Arch::Lut,
            input_bits,
            k,
            k_iter: k,
            cycles: 1,
            lut_share: 1.0,
            fusion: 0,
            arity: Arity::Binary,
            regs_every: 1,
            table_mem: TableMem::Auto,
        }
    }

    /// The same parameters with another architecture.
    pub fn with_arch(mut self, arch: Arch) -> Self {
        self.arch = arch;
        self
    }

    /// Checks every parameter's range (not yet the combination: see [`super::Plan::new`]).
    pub fn validate(&self) -> Result<(), ModredError> {
        let range = |name: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ModredError::Parameter {
                    name,
                    value: v.to_string(),
                    valid: format!("{lo} to {hi}"),
                })
            }
        };
        range("k", self.k as u64, 1, MAX_GROUP_BITS as u64)?;
        range("k_iter", self.k_iter as u64, 1, MAX_GROUP_BITS as u64)?;
        range("cycles", self.cycles as u64, 1, 4096)?;
        range("regs_every", self.regs_every as u64, 1, 64)?;
        range("fusion", self.fusion as u64, 0, 4096)?;
        if !(0.0..=1.0).contains(&self.lut_share) || self.lut_share.is_nan() {
            return Err(ModredError::Parameter {
                name: "lut_share",
                value: self.lut_share.to_string(),
                valid: "0 to 1".into(),
            });
        }
        Ok(())
    }
}

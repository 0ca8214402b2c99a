//! Large-number modular reduction: bit-exact, cycle-approximate models of LUT-based reducers.
//!
//! Architectures ([`Arch`]):
//! - **conventional LUT**: the input `X < 2^w` is split at the modulus width `n`; every `k`-bit
//!   group `g_i` above it is looked up in its own table `T_i[g] = (g 2^(n + k i)) mod q`, and the
//!   tables' outputs and the low part are summed by a pipelined adder tree (II = 1);
//! - **iterative**: a unit of `c` position-indexed tables processes the groups over `C` cycles,
//!   accumulating into one register (II = C);
//! - **hybrid** (ALLMod): the low groups go to parallel tables, the high groups to the iterative
//!   unit, sized by a template so that both finish within the same `C` cycles; the LUT partial
//!   sum is fused into the accumulator at a chosen iteration or after it;
//! - **Barrett** and **Montgomery** reducers as baselines.
//!
//! Every LUT-family design then runs overflow rounds (small tables on the bits above `n`) until
//! at most two conditional subtractions remain, and a final correction stage.
//! [`Plan`] is the structure (groups, adder trees, bounds, widths, pipeline stages), from which
//! the latency, initiation interval and resource inventory follow; [`Reducer`] computes residues
//! with exactly the additions the hardware performs; [`cost`] turns inventories into FPGA and
//! ASIC area and a clock estimate.

mod baseline;
pub mod cost;
mod design;
mod func;
mod modulus;
mod plan;

pub use baseline::{BarrettPlan, MontgomeryPlan};
pub use design::{Arch, Arity, DesignSpec, TableMem, MAX_GROUP_BITS, MAX_OVERFLOW_BITS};
pub use func::Reducer;
pub use modulus::{
    edge_cases, is_probable_prime, ntt_prime, parse_number, presets_text, random_bits,
    random_prime, Modulus, MAX_MODULUS_BITS, MIN_MODULUS_BITS, NTT_TWO_ADICITY, PRESET_WIDTHS,
    RANDOM_PRIME_SEED,
};
pub use plan::{Fusion, Group, IterPlan, LutPlan, Plan, Round, Tree, TreeLevel, TreeNode};

/// Why a reducer cannot be built or an input cannot be reduced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModredError {
    /// The modulus is even (the table methods and Montgomery need an odd modulus).
    #[error("the modulus must be odd")]
    EvenModulus,
    /// The modulus width is out of range.
    #[error("the modulus has {bits} bits; it must have {min} to {max}")]
    ModulusWidth {
        /// Its width.
        bits: u64,
        /// Smallest accepted width.
        min: u64,
        /// Largest accepted width.
        max: u64,
    },
    /// A preset name that does not exist.
    #[error("unknown modulus preset `{0}`; presets are ntt:BITS and random:BITS with BITS one of 128, 256, 512, 1024, 2048, 4096, 8192")]
    UnknownPreset(String),
    /// A number that is neither decimal nor `0x` hexadecimal.
    #[error("`{0}` is not a number (write decimal digits, or hexadecimal after 0x)")]
    BadNumber(String),
    /// A design parameter out of its range.
    #[error("{name} = {value} is out of range: {valid}")]
    Parameter {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: String,
        /// The valid range or choices.
        valid: String,
    },
    /// The parameters are individually valid but do not make a buildable design.
    #[error("infeasible design: {0}")]
    Infeasible(String),
    /// An input wider than the declared input width.
    #[error("input has {bits} bits but the reducer's input width is {width}")]
    InputTooWide {
        /// The input's width.
        bits: u64,
        /// The declared input width.
        width: u64,
    },
    /// The functional model would need too much memory for its tables.
    #[error("the tables of this design need {need_mib} MiB, more than the functional model's limit of {limit_mib} MiB (the analytic model still evaluates it)")]
    TooLarge {
        /// Memory needed.
        need_mib: u64,
        /// The limit.
        limit_mib: u64,
    },
}

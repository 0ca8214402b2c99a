//! Resource inventories and their cost: FPGA resources (LUT6, flip-flops, CARRY4, BRAM36,
//! DSP48), an ASIC gate-equivalent estimate and a clock estimate from the logic depth of every
//! pipeline stage.
//!
//! The FPGA figures are first-principles counts (a 64x1 ROM per LUT6, one LUT per adder bit,
//! one flip-flop per register bit) scaled by [`FpgaCoeffs`], which `archsweep rtl calibrate`
//! fits to Yosys synthesis results. Delays are approximate Xilinx 7-series (-1 speed grade)
//! figures; gate equivalents are textbook values (full adder 7 GE, D flip-flop 5.5 GE, 2:1
//! multiplexer 2.33 GE, array multiplier 8 GE per partial-product bit, constant ROM bit as
//! logic 0.3 GE).

use std::collections::BTreeMap;

use super::baseline::{BarrettPlan, MontgomeryPlan};
use super::design::TableMem;
use super::plan::{Fusion, Plan, TreeNode};

/// Clock-to-out plus setup of a flip-flop, ns.
pub const T_FF_NS: f64 = 0.55;
/// One LUT level with its local routing, ns.
pub const T_LUT_NS: f64 = 0.60;
/// One CARRY4 (4 bits of carry chain), ns.
pub const T_CARRY4_NS: f64 = 0.12;
/// F7/F8 wide-multiplexer level, ns.
pub const T_MUXF_NS: f64 = 0.30;
/// Block-RAM read (clock to data out, unregistered output) plus routing, ns.
pub const T_BRAM_NS: f64 = 3.05;
/// One pipelined DSP48 stage, ns.
pub const T_DSP_NS: f64 = 2.50;

/// Block-RAM (36 kbit) aspect ratios: (depth, width).
pub const BRAM36_SHAPES: [(u64, u64); 7] = [
    (512, 72),
    (1024, 36),
    (2048, 18),
    (4096, 9),
    (8192, 4),
    (16384, 2),
    (32768, 1),
];

/// Tables of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableUse {
    /// Entries.
    pub depth: u64,
    /// Bits per entry.
    pub width: u64,
    /// How many such tables.
    pub count: u64,
    /// Whether the table is read combinationally (overflow rounds) rather than registered.
    pub combinational: bool,
}

/// A multiplier of `a x b` bits of which only the `keep` low bits are needed (or all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Multiplier {
    /// First operand width.
    pub a: u64,
    /// Second operand width.
    pub b: u64,
    /// Product bits needed from the bottom (`a + b` for a full product).
    pub keep: u64,
}

impl Multiplier {
    /// DSP48 tiles (24 x 17 unsigned) needed: those whose partial product touches a kept bit.
    pub fn dsp_tiles(&self) -> u64 {
        let (ta, tb) = (self.a.div_ceil(24), self.b.div_ceil(17));
        if self.keep >= self.a + self.b {
            return ta * tb;
        }
        let mut n = 0;
        for i in 0..ta {
            let lo = i * 24;
            if lo >= self.keep {
                break;
            }
            n += ((self.keep - lo).div_ceil(17)).min(tb);
        }
        n
    }

    /// Pipeline stages: three inside the DSP, then a registered compressor level per factor
    /// of four in the number of partial products.
    pub fn stages(&self) -> u32 {
        let t = self.dsp_tiles().max(1);
        3 + (64 - (t - 1).leading_zeros()).div_ceil(2)
    }
}

/// One pipeline stage's logic depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageDepth {
    /// What the stage does.
    pub name: &'static str,
    /// LUT levels.
    pub luts: f64,
    /// Longest carry chain, bits.
    pub carry_bits: u64,
    /// Fixed delay (block RAM, DSP), ns.
    pub fixed_ns: f64,
}

impl StageDepth {
    /// Register-to-register delay, ns.
    pub fn delay_ns(&self) -> f64 {
        T_FF_NS
            + self.luts * T_LUT_NS
            + self.carry_bits.div_ceil(4) as f64 * T_CARRY4_NS
            + self.fixed_ns
    }
}

/// Everything a design is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Tables by shape.
    pub tables: Vec<TableUse>,
    /// Carry-propagate adders and subtractors: width -> count.
    pub adders: BTreeMap<u64, u64>,
    /// Bits of 3:2 compressors.
    pub csa_bits: u64,
    /// Bits of 2:1 multiplexing and gating.
    pub mux_bits: u64,
    /// Register bits.
    pub register_bits: u64,
    /// Multipliers.
    pub multipliers: Vec<Multiplier>,
    /// Pipeline stages with their logic depth.
    pub stages: Vec<StageDepth>,
    /// Latency in cycles.
    pub latency: u32,
    /// Initiation interval in cycles.
    pub ii: u32,
    /// Table storage choice.
    pub table_mem: TableMem,
}

impl Inventory {
    fn add(&mut self, width: u64, count: u64) {
        if count > 0 {
            *self.adders.entry(width).or_default() += count;
        }
    }

    fn table(&mut self, depth: u64, width: u64, count: u64, combinational: bool) {
        let same = self
            .tables
            .iter_mut()
            .find(|t| t.depth == depth && t.width == width && t.combinational == combinational);
        if let Some(t) = same {
            t.count += count;
        } else if count > 0 {
            self.tables.push(TableUse {
                depth,
                width,
                count,
                combinational,
            });
        }
    }

    /// Bits of table contents.
    pub fn table_bits(&self) -> u64 {
        self.tables
            .iter()
            .map(|t| t.depth * t.width * t.count)
            .sum()
    }

    /// Adder bits (sum of widths over all carry-propagate adders).
    pub fn adder_bits(&self) -> u64 {
        self.adders.iter().map(|(w, c)| w * c).sum()
    }

    /// The inventory of a table-based plan.
    pub fn of_plan(p: &Plan) -> Inventory {
        let n = p.n;
        let mut inv = Inventory {
            latency: p.latency,
            ii: p.ii,
            table_mem: p.table_mem,
            ..Default::default()
        };
        inv.register_bits += p.w + p.latency as u64; // input register, valid pipeline
        let mut rom_depth = 0u64;
        if let Some(l) = &p.lut {
            for g in &l.groups {
                inv.table(1 << g.bits, n, 1, false);
                rom_depth = rom_depth.max(1 << g.bits);
            }
            inv.register_bits += n * l.groups.len() as u64 + if l.with_low { n } else { 0 };
            let mut stage = StageDepth {
                name: "adder tree",
                luts: 0.0,
                carry_bits: 0,
                fixed_ns: 0.0,
            };
            for level in &l.tree.levels {
                for (node, w) in level.nodes.iter().zip(out_widths(level)) {
                    match node {
                        TreeNode::Add(ops) => {
                            inv.add(w, ops.len() as u64 - 1);
                            stage.carry_bits = stage.carry_bits.max(w);
                        }
                        TreeNode::Csa(_) => inv.csa_bits += w,
                        TreeNode::Pass(_) => {}
                    }
                }
                stage.luts += 1.0;
                if level.registered {
                    inv.register_bits += level.widths.iter().sum::<u64>();
                    inv.stages.push(stage);
                    stage.luts = 0.0;
                    stage.carry_bits = 0;
                }
            }
        }
        if let Some(it) = &p.iter {
            let depth = (1u64 << it.k) * it.cycles as u64;
            rom_depth = rom_depth.max(depth);
            inv.table(depth, n, it.per_cycle as u64, false);
            let acc = it.acc_bits();
            let inject = matches!(p.fusion, Fusion::At(_));
            inv.add(acc, it.per_cycle as u64 + u64::from(inject));
            inv.mux_bits += acc; // accumulator initialisation
            let counter = 64 - (it.cycles as u64).leading_zeros() as u64;
            inv.register_bits += n * it.per_cycle as u64 + acc + counter;
            if inject {
                inv.mux_bits += p.lut.as_ref().map(|l| l.tree.out_width()).unwrap_or(0);
            }
            inv.stages.push(StageDepth {
                name: "accumulator",
                luts: 1.0 + it.per_cycle as f64 + f64::from(u8::from(inject)),
                carry_bits: acc,
                fixed_ns: 0.0,
            });
            if p.fusion == Fusion::After {
                let w = p.fused_bound.bits();
                inv.add(w, 1);
                inv.register_bits += w;
                inv.stages.push(StageDepth {
                    name: "fusion",
                    luts: 1.0,
                    carry_bits: w,
                    fixed_ns: 0.0,
                });
            }
        }
        // Table read stage.
        let bram = match p.table_mem {
            TableMem::Bram => true,
            TableMem::Lut => false,
            TableMem::Auto => {
                let (luts, deep, brams) =
                    table_split(&inv.tables, TableMem::Auto, &Weights::default());
                brams > 0.0 && luts + deep == 0.0
            }
        };
        inv.stages.push(if bram {
            StageDepth {
                name: "table read (BRAM)",
                luts: 0.0,
                carry_bits: 0,
                fixed_ns: T_BRAM_NS,
            }
        } else {
            StageDepth {
                name: "table read (LUT ROM)",
                luts: 1.0 + rom_mux_levels(rom_depth) as f64,
                carry_bits: 0,
                fixed_ns: if rom_depth > 64 { T_MUXF_NS } else { 0.0 },
            }
        });
        for r in &p.rounds {
            let w = r.out_bound.bits();
            for g in &r.groups {
                inv.table(1 << g.bits, n, 1, true);
            }
            inv.add(w, r.groups.len() as u64);
            inv.register_bits += w;
            inv.stages.push(StageDepth {
                name: "overflow round",
                luts: 2.0 + r.groups.len() as f64,
                carry_bits: w,
                fixed_ns: T_MUXF_NS,
            });
        }
        inv.add(p.correction_bits, p.corrections as u64);
        inv.mux_bits += n * p.corrections as u64;
        inv.register_bits += n;
        inv.stages.push(StageDepth {
            name: "correction",
            luts: 2.0,
            carry_bits: p.correction_bits,
            fixed_ns: 0.0,
        });
        inv
    }

    /// The inventory of a Barrett reducer (fully pipelined, II = 1).
    pub fn of_barrett(b: &BarrettPlan) -> Inventory {
        let [(a1, b1), (a2, b2)] = b.multiplications();
        let m1 = Multiplier {
            a: a1,
            b: b1,
            keep: a1 + b1,
        };
        let m2 = Multiplier {
            a: a2,
            b: b2,
            keep: b.n + 2,
        };
        Inventory::of_multiplying(b.w, b.n, [m1, m2], 2, b.n + 2)
    }

    /// The inventory of a Montgomery reducer (fully pipelined, II = 1).
    pub fn of_montgomery(m: &MontgomeryPlan) -> Inventory {
        let [(a1, b1), (a2, b2)] = m.multiplications();
        let m1 = Multiplier {
            a: a1,
            b: b1,
            keep: m.r_bits,
        };
        let m2 = Multiplier {
            a: a2,
            b: b2,
            keep: a2 + b2,
        };
        Inventory::of_multiplying(m.w, m.n, [m1, m2], 1, m.w + 1)
    }

    fn of_multiplying(
        w: u64,
        n: u64,
        mults: [Multiplier; 2],
        subtractions: u64,
        final_add_bits: u64,
    ) -> Inventory {
        let mut inv = Inventory {
            ii: 1,
            ..Default::default()
        };
        let mut latency = 1u32; // input register
        for m in mults {
            let s = m.stages();
            latency += s;
            // The partial products are summed by a registered compressor tree; the input
            // travels alongside the multiplier pipeline.
            inv.csa_bits += m.dsp_tiles() * 41;
            inv.register_bits += m.dsp_tiles() * 41 + (m.keep.min(m.a + m.b)) * s as u64;
            inv.register_bits += w * s as u64;
            inv.stages.push(StageDepth {
                name: "DSP multiplier",
                luts: 0.0,
                carry_bits: 0,
                fixed_ns: T_DSP_NS,
            });
            inv.stages.push(StageDepth {
                name: "partial-product compression",
                luts: 2.0,
                carry_bits: 48,
                fixed_ns: 0.0,
            });
            inv.multipliers.push(m);
        }
        inv.add(final_add_bits, 1);
        inv.register_bits += final_add_bits;
        inv.stages.push(StageDepth {
            name: "add/subtract",
            luts: 1.0,
            carry_bits: final_add_bits,
            fixed_ns: 0.0,
        });
        inv.add(n + 2, subtractions);
        inv.mux_bits += n * subtractions;
        inv.register_bits += n;
        inv.stages.push(StageDepth {
            name: "correction",
            luts: 2.0,
            carry_bits: n + 2,
            fixed_ns: 0.0,
        });
        latency += 2;
        inv.register_bits += latency as u64;
        inv.latency = latency;
        inv
    }

    /// Estimated maximum clock frequency, MHz (the slowest stage).
    pub fn fmax_mhz(&self) -> f64 {
        let worst = self
            .stages
            .iter()
            .map(StageDepth::delay_ns)
            .fold(0.0, f64::max);
        1000.0 / worst
    }
}

fn out_widths(level: &super::plan::TreeLevel) -> Vec<u64> {
    // One width per node: a compressor's two outputs share its width.
    let mut out = Vec::with_capacity(level.nodes.len());
    let mut i = 0;
    for node in &level.nodes {
        out.push(level.widths[i]);
        i += if matches!(node, TreeNode::Csa(_)) {
            2
        } else {
            1
        };
    }
    out
}

/// Extra LUT levels of the multiplexers behind a LUT ROM of `depth` entries (F7/F8 cover up
/// to 256 entries; deeper tables add a level of 4:1 multiplexers per factor of four).
fn rom_mux_levels(depth: u64) -> u32 {
    let mut levels = 0;
    let mut d = 256;
    while depth > d {
        levels += 1;
        d *= 4;
    }
    levels
}

/// LUT6 count of a ROM of `depth x width`: one LUT per output bit per 64 entries (shallower
/// tables still take one LUT cell per bit), with F7/F8 multiplexers free up to 256 entries and
/// a level of 4:1 multiplexer LUTs per further factor of four.
pub fn rom_luts(depth: u64, width: u64) -> f64 {
    let base = width * depth.div_ceil(64);
    let mut extra = 0;
    let mut d = depth.div_ceil(256);
    while d > 1 {
        let muxes = d.div_ceil(4);
        extra += width * muxes;
        d = muxes;
    }
    (base + extra) as f64
}

/// BRAM36 count of a ROM of `depth x width`; two shallow tables share one block through its two
/// ports, so the count may be fractional (rounded up over the design).
pub fn rom_bram36(depth: u64, width: u64) -> f64 {
    BRAM36_SHAPES
        .iter()
        .map(|&(d, w)| {
            if 2 * depth <= d {
                width.div_ceil(w) as f64 / 2.0
            } else {
                (depth.div_ceil(d) * width.div_ceil(w)) as f64
            }
        })
        .fold(f64::INFINITY, f64::min)
}

/// Area weights of the hard blocks, in LUT6 equivalents. Default: a 7-series BRAM36 tile is as
/// tall as five CLB tiles (40 LUT6), a DSP48E1 takes half of such a tile (20 LUT6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// LUT6 equivalents of one BRAM36.
    pub bram36: f64,
    /// LUT6 equivalents of one DSP48.
    pub dsp: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            bram36: 40.0,
            dsp: 20.0,
        }
    }
}

/// Registered tables go to block RAM when that is allowed and cheaper; combinational ones stay
/// in LUTs. Returns (LUTs of tables up to 64 entries, LUTs of deeper tables, BRAM36).
fn table_split(tables: &[TableUse], mem: TableMem, w: &Weights) -> (f64, f64, f64) {
    let mut luts = 0.0;
    let mut deep = 0.0;
    let mut brams = 0.0;
    for t in tables {
        let l = rom_luts(t.depth, t.width) * t.count as f64;
        let b = rom_bram36(t.depth, t.width) * t.count as f64;
        let to_bram = !t.combinational
            && match mem {
                TableMem::Bram => true,
                TableMem::Lut => false,
                TableMem::Auto => b * w.bram36 < l,
            };
        if to_bram {
            brams += b;
        } else if t.depth > 64 {
            deep += l;
        } else {
            luts += l;
        }
    }
    (luts, deep, brams.ceil())
}

/// Scale factors from first-principles counts to LUTs and flip-flops, fitted by calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpgaCoeffs {
    /// LUTs per first-principles ROM LUT (tables of up to 64 entries).
    pub rom: f64,
    /// LUTs per first-principles ROM LUT of deeper tables (wide multiplexers).
    pub rom_deep: f64,
    /// LUTs per adder bit.
    pub add: f64,
    /// LUTs per compressor bit.
    pub csa: f64,
    /// LUTs per multiplexer bit.
    pub mux: f64,
    /// Flip-flops per register bit.
    pub ff: f64,
}

impl Default for FpgaCoeffs {
    fn default() -> Self {
        FpgaCoeffs {
            rom: 1.0,
            rom_deep: 1.0,
            add: 1.0,
            csa: 2.0,
            mux: 1.0,
            ff: 1.0,
        }
    }
}

impl FpgaCoeffs {
    /// LUTs estimated from first-principles features.
    pub fn luts(&self, f: &Features) -> f64 {
        let c = self.lut_factors();
        f.lut_features().iter().zip(c).map(|(x, c)| x * c).sum()
    }

    /// Flip-flops estimated from first-principles features.
    pub fn ffs(&self, f: &Features) -> f64 {
        self.ff * f.register_bits
    }

    /// The LUT factors in [`Features::lut_features`] order.
    pub fn lut_factors(&self) -> [f64; 5] {
        [self.rom, self.rom_deep, self.add, self.csa, self.mux]
    }
}

/// The first-principles LUT features the calibration regresses on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// ROM LUTs of LUT-mapped tables of up to 64 entries.
    pub rom_luts: f64,
    /// ROM LUTs of deeper LUT-mapped tables.
    pub rom_deep_luts: f64,
    /// Adder bits.
    pub add_bits: f64,
    /// Compressor bits.
    pub csa_bits: f64,
    /// Multiplexer bits.
    pub mux_bits: f64,
    /// Register bits.
    pub register_bits: f64,
}

impl Features {
    /// The LUT features in [`FpgaCoeffs::lut_factors`] order.
    pub fn lut_features(&self) -> [f64; 5] {
        [
            self.rom_luts,
            self.rom_deep_luts,
            self.add_bits,
            self.csa_bits,
            self.mux_bits,
        ]
    }
}

/// FPGA and ASIC cost of one design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// LUT6s.
    pub luts: f64,
    /// Flip-flops.
    pub ffs: f64,
    /// CARRY4 primitives.
    pub carry4: f64,
    /// BRAM36 blocks.
    pub bram36: f64,
    /// DSP48 slices.
    pub dsp: f64,
    /// Area in LUT6 equivalents: max(LUTs, FFs / 2) plus the weighted hard blocks.
    pub area_lut_eq: f64,
    /// ASIC area, NAND2 gate equivalents.
    pub asic_ge: f64,
    /// Estimated clock limit, MHz.
    pub fmax_mhz: f64,
}

impl Inventory {
    /// The features of this inventory under a table-storage choice and weights.
    pub fn features(&self, w: &Weights) -> (Features, f64) {
        let (rom_luts, rom_deep_luts, bram) = table_split(&self.tables, self.table_mem, w);
        (
            Features {
                rom_luts,
                rom_deep_luts,
                add_bits: self.adder_bits() as f64,
                csa_bits: self.csa_bits as f64,
                mux_bits: self.mux_bits as f64,
                register_bits: self.register_bits as f64,
            },
            bram,
        )
    }

    /// FPGA and ASIC cost.
    pub fn cost(&self, c: &FpgaCoeffs, w: &Weights) -> Cost {
        let (f, bram36) = self.features(w);
        let luts = c.luts(&f);
        let ffs = c.ffs(&f);
        let carry4: u64 = self.adders.iter().map(|(w, n)| w.div_ceil(4) * n).sum();
        let dsp: u64 = self.multipliers.iter().map(Multiplier::dsp_tiles).sum();
        let area_lut_eq = luts.max(ffs / 2.0) + w.bram36 * bram36 + w.dsp * dsp as f64;
        let mult_bits: u64 = self.multipliers.iter().map(|m| m.a * m.b.min(m.keep)).sum();
        let asic_ge = 0.3 * self.table_bits() as f64
            + 7.0 * (self.adder_bits() + self.csa_bits) as f64
            + 2.33 * self.mux_bits as f64
            + 5.5 * self.register_bits as f64
            + 8.0 * mult_bits as f64;
        Cost {
            luts,
            ffs,
            carry4: carry4 as f64,
            bram36,
            dsp: dsp as f64,
            area_lut_eq,
            asic_ge,
            fmax_mhz: self.fmax_mhz(),
        }
    }
}

//! Modular-reduction design models: `modred.lut` (conventional, iterative and hybrid table
//! designs), `modred.barrett` and `modred.montgomery`, on top of `sim::modred`.

use std::fmt::Write as _;
use std::sync::Arc;

use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};
use sim::modred::cost::{Cost, FpgaCoeffs, Inventory, Weights};
use sim::modred::{
    Arch, Arity, BarrettPlan, DesignSpec, ModredError, Modulus, MontgomeryPlan, Plan, TableMem,
    PRESET_WIDTHS,
};

pub mod calibration;
pub mod compare;
pub mod rtl;

/// Everything besides the design that turns an inventory into metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostSettings {
    /// LUT/FF scale factors (calibrated against Yosys).
    pub coeffs: FpgaCoeffs,
    /// Hard-block weights.
    pub weights: Weights,
    /// Clock at which throughput and area efficiency are compared, MHz.
    pub clock_mhz: f64,
}

impl Default for CostSettings {
    fn default() -> Self {
        CostSettings {
            coeffs: calibration::committed(),
            weights: Weights::default(),
            clock_mhz: 200.0,
        }
    }
}

/// The inventory of any design.
pub fn inventory(m: &Modulus, spec: &DesignSpec) -> Result<Inventory, ModredError> {
    Ok(match spec.arch {
        Arch::Barrett => Inventory::of_barrett(&BarrettPlan::new(m, spec.input_bits)?),
        Arch::Montgomery => Inventory::of_montgomery(&MontgomeryPlan::new(m, spec.input_bits)?),
        _ => Inventory::of_plan(&Plan::new(m, spec)?),
    })
}

/// The metrics of one design, in [`METRICS`] order.
pub fn metrics(inv: &Inventory, s: &CostSettings) -> Vec<f64> {
    let c: Cost = inv.cost(&s.coeffs, &s.weights);
    let throughput = s.clock_mhz / inv.ii as f64; // million results per second
    vec![
        c.luts,
        c.ffs,
        c.carry4,
        c.bram36,
        c.dsp,
        c.area_lut_eq,
        c.asic_ge / 1000.0,
        inv.table_bits() as f64 / 1024.0,
        inv.latency as f64,
        inv.ii as f64,
        inv.latency as f64 * 1000.0 / s.clock_mhz,
        c.fmax_mhz,
        throughput,
        throughput / (c.area_lut_eq / 1000.0),
    ]
}

/// Metric names, units, directions and docs.
pub const METRICS: [(&str, &str, Direction, &str); 14] = [
    ("luts", "LUT6", Direction::Minimize, "FPGA LUT6s"),
    ("ffs", "FF", Direction::Minimize, "FPGA flip-flops"),
    (
        "carry4",
        "CARRY4",
        Direction::Minimize,
        "FPGA carry-chain primitives",
    ),
    (
        "bram36",
        "BRAM36",
        Direction::Minimize,
        "36-kbit block RAMs",
    ),
    ("dsp", "DSP48", Direction::Minimize, "DSP slices"),
    (
        "area",
        "LUT-eq",
        Direction::Minimize,
        "FPGA area: max(LUT, FF/2) + weighted BRAM and DSP",
    ),
    (
        "asic_kge",
        "kGE",
        Direction::Minimize,
        "ASIC area estimate, thousand NAND2 equivalents",
    ),
    ("table_kbit", "kbit", Direction::Minimize, "table contents"),
    (
        "latency_cycles",
        "cycles",
        Direction::Minimize,
        "input register to output register",
    ),
    (
        "ii_cycles",
        "cycles",
        Direction::Minimize,
        "initiation interval (cycles per result)",
    ),
    (
        "latency_ns",
        "ns",
        Direction::Minimize,
        "latency at the comparison clock",
    ),
    (
        "fmax_mhz",
        "MHz",
        Direction::Maximize,
        "clock estimate from the slowest stage (7-series)",
    ),
    (
        "throughput",
        "Mops/s",
        Direction::Maximize,
        "results per microsecond at the comparison clock",
    ),
    (
        "area_eff",
        "Mops/s/kLUT-eq",
        Direction::Maximize,
        "area efficiency: throughput per area",
    ),
];

fn metric_specs() -> Vec<MetricSpec> {
    METRICS
        .iter()
        .map(|(n, u, d, doc)| MetricSpec::new(n, u, *d, doc))
        .collect()
}

fn width_choices() -> Vec<String> {
    PRESET_WIDTHS.iter().map(|w| w.to_string()).collect()
}

fn common_params(default_bits: &str) -> Vec<ParamSpec> {
    let widths = width_choices();
    let widths: Vec<&str> = widths.iter().map(String::as_str).collect();
    vec![
        ParamSpec::categorical(
            "bits",
            &widths,
            default_bits,
            "modulus width (a preset prime of that width)",
        ),
        ParamSpec::categorical(
            "modulus",
            &["ntt", "random"],
            "random",
            "preset family: random prime (dense tables) or NTT-friendly j 2^17 + 1 (sparser tables; the area model does not exploit them)",
        ),
        ParamSpec::int(
            "input_bits",
            0,
            65536,
            0,
            "bit",
            "input width; 0 = twice the modulus width (a product)",
        ),
    ]
}

fn cost_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::real(
            "clock_mhz",
            10.0,
            1000.0,
            200.0,
            "MHz",
            "comparison clock (the published comparison uses 200 MHz)",
        ),
        ParamSpec::real(
            "w_bram",
            0.0,
            1000.0,
            40.0,
            "LUT-eq",
            "area of one BRAM36 in LUT6 equivalents",
        ),
        ParamSpec::real(
            "w_dsp",
            0.0,
            1000.0,
            20.0,
            "LUT-eq",
            "area of one DSP48 in LUT6 equivalents",
        ),
    ]
}

/// A design model of one architecture family.
pub struct ModredModel {
    info: ModelInfo,
    table_based: bool,
    baseline: Arch,
}

impl ModredModel {
    /// `modred.lut`: conventional, iterative and hybrid table-based reducers.
    pub fn lut() -> Self {
        let mut params = common_params("128");
        params.extend([
            ParamSpec::categorical(
                "arch",
                &["lut", "iter", "hybrid"],
                "lut",
                "conventional parallel tables, iterative unit, or ALLMod-style hybrid",
            ),
            ParamSpec::int("k", 1, 12, 6, "bit", "group width of the parallel tables"),
            ParamSpec::int(
                "k_iter",
                1,
                12,
                6,
                "bit",
                "digit width of the iterative unit's tables",
            ),
            ParamSpec::int(
                "cycles",
                1,
                512,
                4,
                "cycle",
                "cycles per result of the iterative part (iter, hybrid)",
            ),
            ParamSpec::real(
                "lut_share",
                0.0,
                1.0,
                0.5,
                "",
                "share of the bits above the modulus served by parallel tables (hybrid)",
            ),
            ParamSpec::int(
                "fusion",
                0,
                512,
                0,
                "cycle",
                "iteration at which the LUT partial sum joins the accumulator (>= cycles: after)",
            ),
            ParamSpec::categorical(
                "arity",
                &["2", "3", "csa"],
                "2",
                "adder tree: binary, ternary, or 3:2 compressors",
            ),
            ParamSpec::int(
                "regs_every",
                1,
                8,
                1,
                "level",
                "adder-tree levels per pipeline register",
            ),
            ParamSpec::categorical(
                "table_mem",
                &["auto", "lut", "bram"],
                "auto",
                "table storage on the FPGA",
            ),
        ]);
        params.extend(cost_params());
        ModredModel {
            info: ModelInfo {
                name: "modred.lut".into(),
                version: "1".into(),
                summary: "LUT-based modular reduction (conventional, iterative, ALLMod hybrid): FPGA/ASIC area, latency, area efficiency".into(),
                params,
                metrics: metric_specs(),
            },
            table_based: true,
            baseline: Arch::Lut,
        }
    }

    /// `modred.barrett` or `modred.montgomery`.
    pub fn baseline(arch: Arch) -> Self {
        let mut params = common_params("128");
        params.extend(cost_params());
        let (name, summary) = match arch {
            Arch::Montgomery => (
                "modred.montgomery",
                "Montgomery reduction baseline (two DSP multiplications, one subtraction)",
            ),
            _ => (
                "modred.barrett",
                "Barrett reduction baseline (two DSP multiplications, up to two subtractions)",
            ),
        };
        ModredModel {
            info: ModelInfo {
                name: name.into(),
                version: "1".into(),
                summary: summary.into(),
                params,
                metrics: metric_specs(),
            },
            table_based: false,
            baseline: arch,
        }
    }

    /// The modulus, design and cost settings of a point.
    pub fn decode(
        &self,
        point: &[Value],
    ) -> Result<(Modulus, DesignSpec, CostSettings), ModelError> {
        let info = &self.info;
        let get = |name: &str| -> Result<&Value, ModelError> {
            info.param_index(name)
                .and_then(|i| point.get(i))
                .ok_or_else(|| ModelError::Failed(format!("missing parameter {name}")))
        };
        let int = |name: &str| -> Result<i64, ModelError> {
            match get(name)? {
                Value::Int(i) => Ok(*i),
                v => Err(ModelError::Failed(format!(
                    "{name}: expected an integer, got {v}"
                ))),
            }
        };
        let real = |name: &str| -> Result<f64, ModelError> {
            get(name)?
                .as_f64()
                .ok_or_else(|| ModelError::Failed(format!("{name}: expected a number")))
        };
        let cat = |name: &str| -> Result<String, ModelError> {
            match get(name)? {
                Value::Cat(s) => Ok(s.clone()),
                v => Err(ModelError::Failed(format!(
                    "{name}: expected a name, got {v}"
                ))),
            }
        };
        let err = |e: ModredError| ModelError::Infeasible(e.to_string());
        let bits: u64 = cat("bits")?
            .parse()
            .map_err(|_| ModelError::Failed("bits".into()))?;
        let m = Modulus::preset(&cat("modulus")?, bits).map_err(err)?;
        let input_bits = match int("input_bits")? {
            0 => 2 * bits,
            w => w as u64,
        };
        let mut spec = DesignSpec::lut(input_bits, 6).with_arch(self.baseline);
        if self.table_based {
            spec.arch = cat("arch")?.parse().map_err(err)?;
            spec.k = int("k")? as u32;
            spec.k_iter = int("k_iter")? as u32;
            spec.cycles = int("cycles")? as u32;
            spec.lut_share = real("lut_share")?;
            spec.fusion = int("fusion")? as u32;
            spec.arity = cat("arity")?.parse::<Arity>().map_err(err)?;
            spec.regs_every = int("regs_every")? as u32;
            spec.table_mem = cat("table_mem")?.parse::<TableMem>().map_err(err)?;
        }
        let settings = CostSettings {
            coeffs: calibration::committed(),
            weights: Weights {
                bram36: real("w_bram")?,
                dsp: real("w_dsp")?,
            },
            clock_mhz: real("clock_mhz")?,
        };
        Ok((m, spec, settings))
    }
}

impl Model for ModredModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn evaluate(&self, point: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let (m, spec, settings) = self.decode(point)?;
        let inv = inventory(&m, &spec).map_err(|e| ModelError::Infeasible(e.to_string()))?;
        Ok(metrics(&inv, &settings))
    }
}

/// The three modred models.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![
        Arc::new(ModredModel::lut()),
        Arc::new(ModredModel::baseline(Arch::Barrett)),
        Arc::new(ModredModel::baseline(Arch::Montgomery)),
    ]
}

/// A human-readable description of a design: structure, timing, resources and metrics.
pub fn describe(m: &Modulus, spec: &DesignSpec, s: &CostSettings) -> Result<String, ModredError> {
    let inv = inventory(m, spec)?;
    let mut o = String::new();
    let _ = writeln!(o, "modulus: {} bits, 0x{:x}", m.bits(), m.value());
    let _ = writeln!(
        o,
        "architecture: {}, input width {} bits",
        spec.arch, spec.input_bits
    );
    if spec.arch.is_table_based() {
        let p = Plan::new(m, spec)?;
        if let Some(l) = &p.lut {
            let _ = writeln!(
                o,
                "parallel tables: {} groups of up to {} bits, {}-level adder tree ({} register stages){}",
                l.groups.len(),
                spec.k,
                l.tree.levels.len(),
                l.tree.stages(),
                if l.with_low { ", low part as an operand" } else { "" }
            );
        }
        if let Some(i) = &p.iter {
            let _ = writeln!(
                o,
                "iterative unit: {} groups of up to {} bits, {} tables x {} cycles, accumulator {} bits",
                i.groups.len(),
                i.k,
                i.per_cycle,
                i.cycles,
                i.acc_bits()
            );
        }
        let _ = writeln!(
            o,
            "fusion: {:?}; fused sum < 2^{}",
            p.fusion,
            p.fused_bound.bits()
        );
        for (j, r) in p.rounds.iter().enumerate() {
            let _ = writeln!(
                o,
                "overflow round {}: {} bits in, {} tables",
                j + 1,
                r.in_bits,
                r.groups.len()
            );
        }
        let _ = writeln!(
            o,
            "correction: up to {} subtractions on {} bits",
            p.corrections, p.correction_bits
        );
    }
    let _ = writeln!(
        o,
        "latency: {} cycles, initiation interval: {} cycles",
        inv.latency, inv.ii
    );
    let _ = writeln!(o, "inventory:");
    for t in &inv.tables {
        let _ = writeln!(
            o,
            "  {} table(s) of {} x {} bits{}",
            t.count,
            t.depth,
            t.width,
            if t.combinational {
                " (combinational)"
            } else {
                ""
            }
        );
    }
    let adders: Vec<String> = inv
        .adders
        .iter()
        .map(|(w, c)| format!("{c} x {w}b"))
        .collect();
    let _ = writeln!(o, "  adders/subtractors: {}", adders.join(", "));
    if inv.csa_bits > 0 {
        let _ = writeln!(o, "  3:2 compressor bits: {}", inv.csa_bits);
    }
    for m in &inv.multipliers {
        let _ = writeln!(
            o,
            "  multiplier {} x {} bits (low {} kept): {} DSP48 tiles",
            m.a,
            m.b,
            m.keep,
            m.dsp_tiles()
        );
    }
    let _ = writeln!(
        o,
        "  register bits: {}, multiplexer bits: {}, table bits: {}",
        inv.register_bits,
        inv.mux_bits,
        inv.table_bits()
    );
    for st in &inv.stages {
        let _ = writeln!(o, "  stage {:<28} {:>6.2} ns", st.name, st.delay_ns());
    }
    let names = METRICS.iter().map(|m| m.0);
    for (name, v) in names.zip(metrics(&inv, s)) {
        let _ = writeln!(o, "{name:>15}: {v:.4}");
    }
    Ok(o)
}

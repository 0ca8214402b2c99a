//! ReRAM second-order training models:
//! - `reram.inv`: one high-precision solver (8-bit analog INV + precise VMM) on a matrix of a
//!   given order and condition number → achieved bits, rounds, latency, energy, area;
//! - `reram.kfac`: the K-FAC training accelerator on the digits workloads → per-iteration
//!   latency, energy, area (from [`sim::reram::arch`]), and the test accuracy of K-FAC training
//!   with the simulated inverses in the loop (from [`sim::reram::kfac`]), with the speedup and
//!   energy saving over the committed H100 measurement of the same iteration.
//!
//! Both take their component costs from a [`Technology`] (ISAAC 32 nm unless the CLI is given
//! `--tech FILE`); the model version carries the technology's name and a hash of its values,
//! so journals never mix results of different technologies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::{cat, num};
use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Value,
};
use dse::space::{PointHasher, StableHash};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::reram::arch::{kfac_iteration, Accel, Mapping, Workload};
use sim::reram::cost::{
    inv_solve_cost, inv_unit_area_mm2, program_cost, vmm_crossbar_area_mm2, vmm_energy_pj,
    vmm_latency_ns,
};
use sim::reram::inv::{achieved_bits, spd_with_condition, HpConfig, HpSolver, InvConfig, Scheme};
use sim::reram::kfac::{train, Dataset, EpochRecord, InverseKind, Net, Optimizer, TrainConfig};
use sim::reram::tech::Technology;
use sim::reram::xbar::{gauss, Device, Encoding, VmmConfig};
use sim::reram::ReramError;

pub mod study;

/// The committed H100 measurement of one K-FAC iteration (`scripts/kfac_gpu.py`).
pub const GPU_KFAC_CSV: &str = include_str!("../../../results/reram/gpu_kfac_h100.csv");

/// One row of the GPU measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuIter {
    /// Workload name.
    pub workload: String,
    /// `sgd` or `kfac`.
    pub optimizer: String,
    /// Iterations between inversions.
    pub inv_every: usize,
    /// Milliseconds per iteration.
    pub ms: f64,
    /// Joules per iteration (board energy), if measured.
    pub joules: Option<f64>,
    /// Device name.
    pub device: String,
}

/// Parses the GPU measurement CSV (header `workload,optimizer,inv_every,reps,ms_per_iter,
/// j_per_iter,...,device,...`); `origin` names it in errors.
pub fn parse_gpu_csv(text: &str, origin: &str) -> Result<Vec<GpuIter>, String> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split(',').collect(),
        None => return Err(format!("{origin}: empty file")),
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("{origin}: line 1: missing column `{name}`"))
    };
    let (cw, co, ci, cm, cj, cd) = (
        col("workload")?,
        col("optimizer")?,
        col("inv_every")?,
        col("ms_per_iter")?,
        col("j_per_iter")?,
        col("device")?,
    );
    let mut out = Vec::new();
    for (k, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() {
            return Err(format!(
                "{origin}: line {}: {} fields, the header has {}",
                k + 1,
                f.len(),
                header.len()
            ));
        }
        let num = |c: usize, name: &str| -> Result<f64, String> {
            f[c].parse::<f64>().map_err(|_| {
                format!(
                    "{origin}: line {}: {name} `{}` is not a number",
                    k + 1,
                    f[c]
                )
            })
        };
        out.push(GpuIter {
            workload: f[cw].to_string(),
            optimizer: f[co].to_string(),
            inv_every: num(ci, "inv_every")? as usize,
            ms: num(cm, "ms_per_iter")?,
            joules: if f[cj].is_empty() || f[cj] == "None" {
                None
            } else {
                Some(num(cj, "j_per_iter")?)
            },
            device: f[cd].to_string(),
        });
    }
    Ok(out)
}

/// The committed GPU measurements.
pub fn gpu_measurements() -> Vec<GpuIter> {
    parse_gpu_csv(GPU_KFAC_CSV, "results/reram/gpu_kfac_h100.csv")
        .expect("the committed GPU measurement parses")
}

fn tech_version(t: &Technology) -> String {
    // Any change of the technology's values changes the version.
    let mut h = StableHash::default();
    h.str(&toml::to_string(t).unwrap_or_default());
    format!("{}-{}", t.name, &h.hex()[..8])
}

fn bad(e: ReramError) -> ModelError {
    ModelError::Infeasible(e.to_string())
}

/// Parameters shared by both models: the INV, device and residual VMM.
fn solver_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::categorical(
            "inv_size",
            &["64", "128", "256"],
            "128",
            "INV crossbar rows and columns",
        ),
        ParamSpec::int(
            "level_bits",
            3,
            10,
            8,
            "bits",
            "conductance levels of an INV cell (2^bits)",
        ),
        ParamSpec::int(
            "inv_adc_bits",
            4,
            12,
            8,
            "bits",
            "INV output ADC resolution",
        ),
        ParamSpec::int("inv_dac_bits", 4, 12, 8, "bits", "INV input DAC resolution"),
        ParamSpec::real(
            "prog_sigma",
            0.0,
            0.05,
            0.002,
            "",
            "programming error, fraction of the conductance range",
        ),
        ParamSpec::real(
            "read_sigma",
            0.0,
            0.05,
            0.001,
            "",
            "read noise, fraction of the conductance range",
        ),
        ParamSpec::categorical(
            "scheme",
            &["refine", "expand"],
            "refine",
            "high-precision scheme: refinement with a precise residual, or series expansion",
        ),
        ParamSpec::int("iterations", 1, 20, 10, "", "most INV rounds per solve"),
        ParamSpec::real(
            "target_bits",
            8.0,
            24.0,
            16.0,
            "bits",
            "stop once the correction is below 2^-target of the solution",
        ),
        ParamSpec::int(
            "vmm_cell_bits",
            1,
            4,
            2,
            "bits",
            "residual VMM: bits per cell",
        ),
        ParamSpec::int(
            "vmm_bits",
            8,
            32,
            24,
            "bits",
            "residual VMM: weight and input precision",
        ),
        ParamSpec::int(
            "vmm_dac_bits",
            1,
            4,
            1,
            "bits",
            "residual VMM: DAC resolution (input bits per cycle)",
        ),
        ParamSpec::int(
            "vmm_adc_bits",
            4,
            14,
            9,
            "bits",
            "residual VMM: ADC resolution (9 is lossless for 128 rows, 2-bit cells, 1-bit DACs)",
        ),
    ]
}

fn solver_config(p: &[Value], base: usize, tech: &Technology) -> Result<HpConfig, ModelError> {
    let size: usize = cat(p, base)
        .parse()
        .map_err(|_| ModelError::Infeasible(format!("inv_size {}", cat(p, base))))?;
    let device = Device {
        prog_sigma: num(p, base + 4),
        read_sigma: num(p, base + 5),
        on_off_ratio: tech.on_off_ratio(),
        ..Device::ideal()
    };
    let vmm_bits = num(p, base + 10) as u32;
    let cfg = HpConfig {
        inv: InvConfig {
            size,
            level_bits: num(p, base + 1) as u32,
            adc_bits: num(p, base + 2) as u32,
            dac_bits: num(p, base + 3) as u32,
            gbw_hz: tech.opamp.gbw_mhz * 1e6,
            device,
        },
        vmm: VmmConfig {
            rows: 128,
            cols: 128,
            cell_bits: num(p, base + 9) as u32,
            weight_bits: vmm_bits,
            input_bits: vmm_bits,
            dac_bits: num(p, base + 11) as u32,
            adc_bits: num(p, base + 12) as u32,
            encoding: Encoding::Offset,
            // The same device: the same errors relative to the conductance range.
            device,
        },
        scheme: Scheme::parse(cat(p, base + 6)).map_err(bad)?,
        iterations: num(p, base + 7) as usize,
        target_bits: num(p, base + 8),
    };
    cfg.inv.check().map_err(bad)?;
    cfg.vmm.check().map_err(bad)?;
    Ok(cfg)
}

/// `reram.inv`: one high-precision solver.
pub struct ReramInv {
    info: ModelInfo,
    tech: Technology,
    hasher: PointHasher,
}

/// Right-hand sides solved per point.
pub const INV_RHS: usize = 3;

impl ReramInv {
    /// The model with technology `tech`.
    pub fn new(tech: Technology) -> Self {
        let mut params = vec![
            ParamSpec::int("n", 8, 512, 64, "", "matrix order"),
            ParamSpec::log_real(
                "kappa",
                1.0,
                1e5,
                30.0,
                "",
                "condition number of the (symmetric positive-definite) matrix",
            ),
        ];
        params.extend(solver_params());
        let metrics = vec![
            MetricSpec::new("bits", "bits", Direction::Maximize, "correct bits of the solution against fp64 (mean over the right-hand sides); an unstable INV loop fails the point").bounded(0.0, 52.0),
            MetricSpec::new("bits_min", "bits", Direction::Maximize, "worst right-hand side").bounded(0.0, 52.0),
            MetricSpec::new("rounds", "", Direction::Minimize, "INV rounds used per solve (mean)"),
            MetricSpec::new("latency_ns", "ns", Direction::Minimize, "one solve: rounds x (INV settle + conversion + residual VMM)"),
            MetricSpec::new("energy_nj", "nJ", Direction::Minimize, "one solve"),
            MetricSpec::new("program_us", "us", Direction::Minimize, "programming the matrix into the INV arrays and the residual VMM"),
            MetricSpec::new("area_mm2", "mm2", Direction::Minimize, "INV arrays with op-amps and converters, residual VMM crossbars with peripherals"),
            MetricSpec::new("settle_ns", "ns", Direction::Minimize, "INV settling time to the ADC resolution"),
        ];
        let info = ModelInfo {
            name: "reram.inv".into(),
            version: format!("1+{}", tech_version(&tech)),
            summary: "ReRAM high-precision solve: 8-bit analog INV + precise VMM (RePAST), achieved bits, latency, energy, area".into(),
            params,
            metrics,
        };
        let names: Vec<String> = info.params.iter().map(|p| p.name.clone()).collect();
        ReramInv {
            hasher: PointHasher::new(&info.name, &info.version, &names),
            info,
            tech,
        }
    }
}

impl Model for ReramInv {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let n = num(p, 0) as usize;
        let kappa = num(p, 1);
        let cfg = solver_config(p, 2, &self.tech)?;
        let t = &self.tech;
        // The matrix and right-hand sides depend only on the seed, n and kappa, so every
        // design sees the same problem; device randomness also on the design.
        let mut prob = ChaCha8Rng::seed_from_u64(ctx.seed ^ (n as u64) << 32 ^ kappa.to_bits());
        let a = spd_with_condition(n, kappa, &mut prob);
        let rhs: Vec<Vec<f64>> = (0..INV_RHS)
            .map(|_| (0..n).map(|_| gauss(&mut prob)).collect())
            .collect();
        let point = self.hasher.id(p).0 as u64;
        let mut dev = ChaCha8Rng::seed_from_u64(ctx.seed.wrapping_add(0x5eed) ^ point);
        let lu = a.clone().lu();
        let area = inv_unit_area_mm2(t, &cfg.inv) * (n.div_ceil(cfg.inv.size).pow(2)) as f64
            + cfg.vmm.crossbars_for(n, n) as f64 * vmm_crossbar_area_mm2(t, &cfg.vmm);
        let (p_inv, _) = program_cost(t, n.min(cfg.inv.size), 0, 1);
        let (p_res, _) = program_cost(t, n.min(cfg.vmm.rows), 0, 1);
        let program_us = p_inv.max(p_res) / 1e3;
        let ra = cfg.vmm.vmm_activity(n, n);
        let (res_ns, res_pj) = (
            vmm_latency_ns(t, &cfg.vmm, &ra),
            vmm_energy_pj(t, &cfg.vmm, &ra),
        );
        // An unstable loop is the design's failure region: the point fails with the reason
        // (the report lists failed points by error).
        let solver = HpSolver::program(&a, &cfg, &mut dev).map_err(bad)?;
        let settle = solver.inv().settle_ns();
        let (inv_ns, inv_pj) = inv_solve_cost(t, &cfg.inv, n, settle);
        let (mut bits, mut bits_min, mut rounds) = (0.0, f64::INFINITY, 0.0);
        for b in &rhs {
            let exact = lu
                .solve(&nalgebra::DVector::from_column_slice(b))
                .ok_or_else(|| ModelError::Failed("singular test matrix".into()))?;
            let r = solver.solve(b, &mut dev);
            let k = achieved_bits(&r.x, exact.as_slice());
            bits += k;
            bits_min = f64::min(bits_min, k);
            rounds += r.iterates.len() as f64;
        }
        let m = INV_RHS as f64;
        let rounds = rounds / m;
        // The first round solves b directly: no residual VMM.
        let latency = rounds * inv_ns + (rounds - 1.0) * res_ns;
        let energy = rounds * inv_pj + (rounds - 1.0) * res_pj;
        Ok(vec![
            bits / m,
            bits_min,
            rounds,
            latency,
            energy / 1e3,
            program_us,
            area,
            settle,
        ])
    }
}

/// What training with the simulated inverses gave (cached per accuracy-relevant design).
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Per-epoch records.
    pub records: Vec<EpochRecord>,
}

/// `reram.kfac`: the K-FAC training accelerator.
pub struct ReramKfac {
    info: ModelInfo,
    tech: Technology,
    data: (Dataset, Dataset),
    cache: Mutex<HashMap<String, Arc<TrainSummary>>>,
    gpu: Vec<GpuIter>,
}

/// Epochs of training behind the accuracy metric.
pub const KFAC_EPOCHS: usize = 5;

impl ReramKfac {
    /// The model with technology `tech`.
    pub fn new(tech: Technology) -> Self {
        let mut params = vec![
            ParamSpec::categorical("workload", &["digits-mlp", "digits-cnn"], "digits-mlp", "network trained on the 8x8 digits (MLP 64-32-10, or 3x3x8 conv + pool + 10), batch 64"),
            ParamSpec::categorical("mapping", &["fused", "separate"], "fused", "INV, residual VMM and preconditioning VMM of a factor in one tile, or in separate tiles"),
            ParamSpec::int("inv_units", 1, 4096, 16, "", "INV units (crossbar pairs with op-amps)"),
            ParamSpec::int("copies", 1, 64, 4, "", "replicas of the weight and inverse crossbars"),
            ParamSpec::log_real("damping", 1e-4, 0.1, 0.003, "", "K-FAC Tikhonov damping"),
            ParamSpec::int("inv_every", 1, 100, 10, "", "iterations between factor inversions"),
        ];
        params.extend(solver_params());
        let metrics = vec![
            MetricSpec::new("test_acc", "", Direction::Maximize, "digits test accuracy after 5 epochs of K-FAC with the simulated inverses").bounded(0.0, 1.0),
            MetricSpec::new("acc_loss", "", Direction::Minimize, "test accuracy below fp64 K-FAC with the same settings"),
            MetricSpec::new("inv_bits", "bits", Direction::Maximize, "mean correct bits of the factor inverses").bounded(0.0, 52.0),
            MetricSpec::new("inv_failures", "", Direction::Minimize, "factor inversions the INV loop could not perform (unstable)"),
            MetricSpec::new("iter_latency_us", "us", Direction::Minimize, "one training iteration on the accelerator"),
            MetricSpec::new("iter_energy_uj", "uJ", Direction::Minimize, "one training iteration"),
            MetricSpec::new("area_mm2", "mm2", Direction::Minimize, "chip area"),
            MetricSpec::new("speedup_vs_gpu", "", Direction::Maximize, "measured H100 PyTorch K-FAC iteration (same workload and inv_every when measured, else inv_every 10) over the accelerator's"),
            MetricSpec::new("energy_saving_vs_gpu", "", Direction::Maximize, "H100 board energy per iteration over the accelerator's"),
        ];
        ReramKfac {
            info: ModelInfo {
                name: "reram.kfac".into(),
                version: format!("1+{}", tech_version(&tech)),
                summary: "ReRAM K-FAC training accelerator (RePAST): iteration latency, energy, area, and accuracy with simulated inverses".into(),
                params,
                metrics,
            },
            tech,
            data: Dataset::digits().split(360, 1),
            cache: Mutex::new(HashMap::new()),
            gpu: gpu_measurements(),
        }
    }

    fn net(workload: &str) -> Net {
        match workload {
            "digits-cnn" => Net::Cnn { channels: 8 },
            _ => Net::Mlp { hidden: 32 },
        }
    }

    /// Trains (or recalls) K-FAC with `inverse` on `workload`.
    pub fn trained(
        &self,
        workload: &str,
        damping: f64,
        inv_every: usize,
        inverse: InverseKind,
        seed: u64,
    ) -> Result<Arc<TrainSummary>, ModelError> {
        let key = format!("{workload}|{damping}|{inv_every}|{inverse:?}|{seed}");
        if let Some(s) = self.cache.lock().expect("cache lock").get(&key) {
            return Ok(s.clone());
        }
        let cfg = TrainConfig {
            net: Self::net(workload),
            optimizer: Optimizer::Kfac {
                lr: 0.05,
                damping,
                inv_every,
                inverse,
            },
            epochs: KFAC_EPOCHS,
            batch: 64,
            seed,
        };
        let records = train(&cfg, &self.data.0, &self.data.1).map_err(bad)?;
        let s = Arc::new(TrainSummary { records });
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, s.clone());
        Ok(s)
    }
}

impl Model for ReramKfac {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let workload = cat(p, 0);
        let mapping = Mapping::parse(cat(p, 1)).map_err(bad)?;
        let inv_units = num(p, 2) as usize;
        let copies = num(p, 3) as usize;
        let damping = num(p, 4);
        let inv_every = num(p, 5) as usize;
        let hp = solver_config(p, 6, &self.tech)?;
        let seed = ctx.seed;
        let run = self.trained(
            workload,
            damping,
            inv_every,
            InverseKind::HighPrecision(hp),
            seed,
        )?;
        let exact = self.trained(workload, damping, inv_every, InverseKind::Exact, seed)?;
        let last = run
            .records
            .last()
            .ok_or_else(|| ModelError::Failed("no epochs".into()))?;
        let ref_acc = exact.records.last().map_or(f64::NAN, |r| r.test_acc);
        let bits = mean(run.records.iter().map(|r| r.inv_bits));
        let rounds = mean(run.records.iter().map(|r| r.inv_rounds));
        let lam = run
            .records
            .iter()
            .map(|r| r.inv_lambda_min)
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        let failures: usize = run.records.iter().map(|r| r.inv_failures).sum();
        let mut w = Workload::builtin(workload).map_err(bad)?;
        w.inv_every = inv_every;
        let acc = Accel {
            tech: self.tech.clone(),
            vmm: VmmConfig {
                device: Device::ideal(),
                ..VmmConfig::isaac()
            },
            hp,
            rounds: if rounds.is_finite() {
                rounds.max(1.0)
            } else {
                hp.iterations as f64
            },
            lambda_min: if lam.is_finite() && lam > 0.0 {
                lam
            } else {
                1e-3
            },
            mapping,
            inv_units,
            copies,
        };
        let it = kfac_iteration(&w, &acc).map_err(bad)?;
        let gpu = self
            .gpu
            .iter()
            .find(|g| g.workload == workload && g.optimizer == "kfac" && g.inv_every == inv_every)
            .or_else(|| {
                self.gpu
                    .iter()
                    .find(|g| g.workload == workload && g.optimizer == "kfac" && g.inv_every == 10)
            });
        let lat_us = it.latency_ns() / 1e3;
        let e_uj = it.energy_pj() / 1e6;
        let (speedup, saving) = match gpu {
            Some(g) => (
                g.ms * 1e3 / lat_us,
                g.joules.map_or(f64::NAN, |j| j * 1e6 / e_uj),
            ),
            None => (f64::NAN, f64::NAN),
        };
        Ok(vec![
            last.test_acc,
            ref_acc - last.test_acc,
            if bits.is_finite() { bits } else { 0.0 },
            failures as f64,
            lat_us,
            e_uj,
            it.area_mm2,
            speedup,
            saving,
        ])
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Both models with technology `tech`.
pub fn all_with(tech: &Technology) -> Vec<Arc<dyn Model>> {
    vec![
        Arc::new(ReramInv::new(tech.clone())),
        Arc::new(ReramKfac::new(tech.clone())),
    ]
}

/// Both models with the default technology (ISAAC 32 nm).
pub fn all() -> Vec<Arc<dyn Model>> {
    all_with(&Technology::isaac32())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EvalContext {
        EvalContext { seed: 1 }
    }

    #[test]
    fn reram_inv_default_reaches_16_bits_and_fails_unstable_designs() {
        let m = ReramInv::new(Technology::isaac32());
        let p = m.info().point_with(&[]).unwrap();
        let a = m.evaluate(&p, &ctx()).unwrap();
        let b = m.evaluate(&p, &ctx()).unwrap();
        assert_eq!(a, b, "deterministic");
        let idx = |n: &str| m.info().metric_index(n).unwrap();
        assert!(a[idx("bits")] >= 16.0, "{a:?}");
        assert!((1.0..=8.0).contains(&a[idx("rounds")]), "{a:?}");
        assert!(a.iter().all(|v| v.is_finite() && *v >= 0.0), "{a:?}");
        // A lower target stops earlier: fewer bits (still at least the target), less latency.
        // (Above about 19 bits, kappa 30 with the 24-bit residual VMM is at its floor.)
        let p2 = m.info().point_with(&["target_bits=12".into()]).unwrap();
        let c = m.evaluate(&p2, &ctx()).unwrap();
        assert!(
            c[idx("bits")] >= 12.0 && c[idx("bits")] < a[idx("bits")],
            "{a:?} {c:?}"
        );
        assert!(c[idx("latency_ns")] < a[idx("latency_ns")], "{a:?} {c:?}");
        let p3 = m.info().point_with(&["kappa=1e5".into()]).unwrap();
        let e = m.evaluate(&p3, &ctx()).unwrap_err().to_string();
        assert!(e.contains("unstable"), "{e}");
    }

    #[test]
    fn reram_kfac_default_matches_fp64_accuracy() {
        let m = ReramKfac::new(Technology::isaac32());
        let p = m.info().point_with(&[]).unwrap();
        let v = m.evaluate(&p, &ctx()).unwrap();
        let idx = |n: &str| m.info().metric_index(n).unwrap();
        assert!(v[idx("test_acc")] >= 0.95, "{v:?}");
        assert!(v[idx("acc_loss")].abs() <= 0.01, "{v:?}");
        assert!(v[idx("inv_bits")] >= 16.0, "{v:?}");
        assert_eq!(v[idx("inv_failures")], 0.0);
        assert!(v[idx("speedup_vs_gpu")].is_finite() && v[idx("speedup_vs_gpu")] > 0.0);
        let sep = m.info().point_with(&["mapping=separate".into()]).unwrap();
        let s = m.evaluate(&sep, &ctx()).unwrap();
        assert!(s[idx("iter_latency_us")] > v[idx("iter_latency_us")]);
        assert_eq!(
            s[idx("test_acc")],
            v[idx("test_acc")],
            "the mapping does not change the math"
        );
    }

    #[test]
    fn the_gpu_measurement_parses_and_bad_files_are_located() {
        let g = gpu_measurements();
        assert!(g
            .iter()
            .any(|r| r.workload == "digits-mlp" && r.optimizer == "kfac"));
        assert!(g.iter().all(|r| r.ms > 0.0 && r.device.contains("H100")));
        let e = parse_gpu_csv("workload,optimizer\n", "g.csv").unwrap_err();
        assert!(e.contains("g.csv") && e.contains("inv_every"), "{e}");
        let e = parse_gpu_csv(
            "workload,optimizer,inv_every,ms_per_iter,j_per_iter,device\nw,kfac,1,fast,,H100\n",
            "g.csv",
        )
        .unwrap_err();
        assert!(e.contains("line 2") && e.contains("ms_per_iter"), "{e}");
    }

    #[test]
    fn the_model_version_follows_the_technology() {
        let t = Technology::isaac32();
        let mut u = t.clone();
        u.adc.power_mw *= 2.0;
        let (a, b) = (ReramInv::new(t), ReramInv::new(u));
        assert_ne!(a.info().version, b.info().version);
        assert!(a.info().version.starts_with("1+isaac-32nm-"));
    }
}

//! The ReRAM studies behind `archsweep reram`: achieved precision against condition number and
//! noise, training curves with simulated inverses, and the accelerator against the measured GPU
//! and a PipeLayer-style pipeline.

use nalgebra::DVector;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::reram::arch::{kfac_iteration, pipelayer_iteration, Accel, IterCost, Mapping, Workload};
use sim::reram::inv::{achieved_bits, spd_with_condition, HpConfig, HpSolver, Scheme};
use sim::reram::kfac::{
    epochs_to, train, Dataset, EpochRecord, InverseKind, Net, Optimizer, TrainConfig,
};
use sim::reram::tech::Technology;
use sim::reram::xbar::{gauss, Device, VmmConfig};
use sim::reram::ReramError;

use super::GpuIter;

/// Published RePAST figures: speedup and energy saving vs GPU, and vs PipeLayer.
pub const PUBLISHED: [(&str, f64, f64); 2] = [("GPU", 115.8, 41.9), ("PipeLayer", 11.4, 12.8)];

/// A device-noise level of the precision study.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseLevel {
    /// Label.
    pub name: &'static str,
    /// Programming error (fraction of range).
    pub prog_sigma: f64,
    /// Read noise (fraction of range).
    pub read_sigma: f64,
}

/// The noise levels studied: none, the models' default, three and ten times more.
pub const NOISE: [NoiseLevel; 4] = [
    NoiseLevel {
        name: "ideal",
        prog_sigma: 0.0,
        read_sigma: 0.0,
    },
    NoiseLevel {
        name: "default",
        prog_sigma: 0.002,
        read_sigma: 0.001,
    },
    NoiseLevel {
        name: "3x",
        prog_sigma: 0.006,
        read_sigma: 0.003,
    },
    NoiseLevel {
        name: "10x",
        prog_sigma: 0.02,
        read_sigma: 0.01,
    },
];

/// One row of the precision study: correct bits after each round.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionRow {
    /// Scheme.
    pub scheme: Scheme,
    /// Noise level.
    pub noise: &'static str,
    /// Condition number.
    pub kappa: f64,
    /// Matrices tried.
    pub trials: usize,
    /// Matrices whose programmed loop was stable.
    pub stable: usize,
    /// Mean correct bits after round k (over stable trials), k = 1..=rounds.
    pub bits: Vec<f64>,
    /// Worst correct bits after round k.
    pub bits_min: Vec<f64>,
}

impl PrecisionRow {
    /// First round (1-based) after which even the worst trial reaches `target` bits.
    pub fn rounds_to(&self, target: f64) -> Option<usize> {
        self.bits_min
            .iter()
            .position(|&b| b >= target)
            .map(|k| k + 1)
    }
}

/// Correct bits per round for `trials` random SPD matrices of order `n` per condition number,
/// noise level and scheme; every solve runs all `rounds` (no early stop).
pub fn precision(
    n: usize,
    kappas: &[f64],
    rounds: usize,
    trials: usize,
    seed: u64,
) -> Result<Vec<PrecisionRow>, ReramError> {
    let mut out = Vec::new();
    for scheme in [Scheme::Refine, Scheme::Expand] {
        for noise in NOISE {
            for &kappa in kappas {
                let mut cfg = HpConfig::default_refine();
                cfg.scheme = scheme;
                cfg.iterations = rounds;
                cfg.target_bits = 0.0;
                let dev = Device::noisy(noise.prog_sigma, noise.read_sigma);
                cfg.inv.device = dev;
                cfg.vmm.device = dev;
                let mut sum = vec![0.0; rounds];
                let mut min = vec![f64::INFINITY; rounds];
                let mut stable = 0;
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ kappa.to_bits());
                for _ in 0..trials {
                    let a = spd_with_condition(n, kappa, &mut rng);
                    let b: Vec<f64> = (0..n).map(|_| gauss(&mut rng)).collect();
                    let exact = a
                        .clone()
                        .lu()
                        .solve(&DVector::from_column_slice(&b))
                        .ok_or(ReramError::Singular)?;
                    let s = match HpSolver::program(&a, &cfg, &mut rng) {
                        Ok(s) => s,
                        Err(
                            ReramError::Unstable { .. } | ReramError::Singular | ReramError::Eigen,
                        ) => continue,
                        Err(e) => return Err(e),
                    };
                    stable += 1;
                    let r = s.solve(&b, &mut rng);
                    // A solve that stopped early (diverging correction) keeps its last result.
                    for k in 0..rounds {
                        let x = &r.iterates[k.min(r.iterates.len() - 1)];
                        let bits = achieved_bits(x, exact.as_slice());
                        sum[k] += bits;
                        min[k] = min[k].min(bits);
                    }
                }
                let bits = sum
                    .iter()
                    .map(|s| if stable > 0 { s / stable as f64 } else { 0.0 })
                    .collect();
                let bits_min = min
                    .iter()
                    .map(|&m| if m.is_finite() { m } else { 0.0 })
                    .collect();
                out.push(PrecisionRow {
                    scheme,
                    noise: noise.name,
                    kappa,
                    trials,
                    stable,
                    bits,
                    bits_min,
                });
            }
        }
    }
    Ok(out)
}

/// The precision study as Markdown.
pub fn precision_markdown(rows: &[PrecisionRow], n: usize, target: f64) -> String {
    let rounds = rows.first().map_or(0, |r| r.bits.len());
    let mut s = format!(
        "Correct bits of `A x = b` against fp64 after each INV round: 8-bit INV (256 levels, 8-bit converters) + 24-bit residual VMM, {n}x{n} SPD matrices, mean (worst) over the stable trials.\n\n| scheme | noise | kappa | stable | {} | rounds to {target:.0} bits (worst) |\n|---|---|---|---|{}---|\n",
        (1..=rounds).map(|k| format!("r{k}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(rounds)
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.0e} | {}/{} | {} | {} |\n",
            match r.scheme {
                Scheme::Refine => "refine",
                Scheme::Expand => "expand",
            },
            r.noise,
            r.kappa,
            r.stable,
            r.trials,
            r.bits
                .iter()
                .zip(&r.bits_min)
                .map(|(b, m)| format!("{b:.1} ({m:.1})"))
                .collect::<Vec<_>>()
                .join(" | "),
            r.rounds_to(target)
                .map_or("never".to_string(), |k| k.to_string()),
        ));
    }
    s
}

/// One training curve.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Label (optimizer, inverse kind).
    pub label: String,
    /// Per-epoch records.
    pub records: Vec<EpochRecord>,
}

/// The optimizers compared in the training study, at the noise level `noise`.
pub fn training_runs(noise: NoiseLevel) -> Vec<(String, Optimizer)> {
    let dev = Device::noisy(noise.prog_sigma, noise.read_sigma);
    let mut hp = HpConfig::default_refine();
    hp.inv.device = dev;
    hp.vmm.device = dev;
    vec![
        (
            "sgd".into(),
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
            },
        ),
        ("adam".into(), Optimizer::Adam { lr: 0.003 }),
        ("kfac-fp64".into(), Optimizer::kfac(InverseKind::Exact)),
        (
            "kfac-inv8".into(),
            Optimizer::kfac(InverseKind::Analog(hp.inv)),
        ),
        (
            "kfac-hp".into(),
            Optimizer::kfac(InverseKind::HighPrecision(hp)),
        ),
    ]
}

/// Trains every run of [`training_runs`] on `net`.
pub fn training(
    net: Net,
    noise: NoiseLevel,
    epochs: usize,
    seed: u64,
) -> Result<Vec<Curve>, ReramError> {
    let (tr, te) = Dataset::digits().split(360, 1);
    training_runs(noise)
        .into_iter()
        .map(|(label, optimizer)| {
            let cfg = TrainConfig {
                net,
                optimizer,
                epochs,
                batch: 64,
                seed,
            };
            Ok(Curve {
                label,
                records: train(&cfg, &tr, &te)?,
            })
        })
        .collect()
}

/// Training summary as Markdown: final and best accuracy, epochs to `target`, inverse bits.
pub fn training_markdown(net: Net, noise: NoiseLevel, curves: &[Curve], target: f64) -> String {
    let mut s = format!(
        "{} on the 8x8 digits (1437 train / 360 test), batch 64, device noise `{}` (programming {}, read {}).\n\n| run | final test acc | best | epochs to {:.0}% | final train loss | inverse bits (mean / worst) | INV failures |\n|---|---|---|---|---|---|---|\n",
        net.name(),
        noise.name,
        noise.prog_sigma,
        noise.read_sigma,
        target * 100.0
    );
    for c in curves {
        let last = c.records.last();
        let best = c.records.iter().fold(0.0f64, |m, r| m.max(r.test_acc));
        let bits: Vec<f64> = c
            .records
            .iter()
            .map(|r| r.inv_bits)
            .filter(|v| v.is_finite())
            .collect();
        let worst = c
            .records
            .iter()
            .map(|r| r.inv_bits_min)
            .filter(|v| v.is_finite())
            .fold(f64::INFINITY, f64::min);
        let fails: usize = c.records.iter().map(|r| r.inv_failures).sum();
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {} | {:.4} | {} | {} |\n",
            c.label,
            last.map_or(f64::NAN, |r| r.test_acc),
            best,
            epochs_to(&c.records, target).map_or("not reached".into(), |e| e.to_string()),
            last.map_or(f64::NAN, |r| r.train_loss),
            if bits.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.1} / {:.1}",
                    bits.iter().sum::<f64>() / bits.len() as f64,
                    worst
                )
            },
            if c.label.starts_with("kfac-") && c.label != "kfac-fp64" {
                fails.to_string()
            } else {
                "-".into()
            },
        ));
    }
    s
}

/// One workload's comparison.
#[derive(Debug, Clone)]
pub struct CompareRow {
    /// Workload.
    pub workload: String,
    /// Iterations between inversions.
    pub inv_every: usize,
    /// Accelerator K-FAC iteration, fused mapping.
    pub fused: IterCost,
    /// Accelerator K-FAC iteration, separate mapping.
    pub separate: IterCost,
    /// PipeLayer-style SGD iteration.
    pub pipelayer: IterCost,
    /// Measured GPU K-FAC iteration, if any.
    pub gpu: Option<GpuIter>,
}

/// The default accelerator: ISAAC VMM crossbars, the default high-precision solver with
/// `rounds` rounds, 1024 INV units (2048 of the ISAAC chip's 16,128 arrays), 4 copies.
pub fn default_accel(tech: &Technology, mapping: Mapping, rounds: f64, lambda_min: f64) -> Accel {
    Accel {
        tech: tech.clone(),
        vmm: VmmConfig::isaac(),
        hp: HpConfig::default_refine(),
        rounds,
        lambda_min,
        mapping,
        inv_units: 1024,
        copies: 4,
    }
}

/// Per-iteration comparison on every built-in workload, inversions every 1 and 10 iterations.
pub fn compare(
    tech: &Technology,
    gpu: &[GpuIter],
    rounds: f64,
    lambda_min: f64,
) -> Result<Vec<CompareRow>, ReramError> {
    let mut rows = Vec::new();
    for name in sim::reram::arch::WORKLOADS {
        for inv_every in [1, 10] {
            let mut w = Workload::builtin(name)?;
            w.inv_every = inv_every;
            let mut acc = default_accel(tech, Mapping::Fused, rounds, lambda_min);
            // Enough INV units for the largest factor of the workload.
            let need = w
                .factor_orders()
                .iter()
                .map(|n| n.div_ceil(acc.hp.inv.size).pow(2))
                .max()
                .unwrap_or(1);
            acc.inv_units = acc.inv_units.max(need);
            let fused = kfac_iteration(&w, &acc)?;
            acc.mapping = Mapping::Separate;
            let separate = kfac_iteration(&w, &acc)?;
            let pipelayer = pipelayer_iteration(tech, &w, &acc.vmm, acc.copies)?;
            let g = gpu
                .iter()
                .find(|g| g.workload == name && g.optimizer == "kfac" && g.inv_every == inv_every)
                .cloned();
            rows.push(CompareRow {
                workload: name.into(),
                inv_every,
                fused,
                separate,
                pipelayer,
                gpu: g,
            });
        }
    }
    Ok(rows)
}

/// The comparison as Markdown, with time-to-accuracy against PipeLayer where training curves
/// are given (`(workload, kfac-hp curve, sgd curve)`).
pub fn compare_markdown(
    tech: &Technology,
    rows: &[CompareRow],
    curves: &[(String, Vec<EpochRecord>, Vec<EpochRecord>)],
    target: f64,
    steps_per_epoch: usize,
) -> String {
    let mut s = format!(
        "One training iteration. Accelerator: technology `{}`, ISAAC VMM crossbars (128x128, 2-bit cells, 16-bit), 8-bit INV + 24-bit residual VMM, 1024 INV units, 4 copies. GPU: committed PyTorch K-FAC measurement (`results/reram/gpu_kfac_h100.csv`, {}).\n\n| workload | inv every | GPU ms | GPU mJ | fused us | fused uJ | separate us | separate uJ | PipeLayer SGD us | speedup vs GPU | energy saving vs GPU | area mm2 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        tech.name,
        rows.iter()
            .find_map(|r| r.gpu.as_ref().map(|g| g.device.clone()))
            .unwrap_or_else(|| "none".into())
    );
    for r in rows {
        let (gms, gmj) = r.gpu.as_ref().map_or((f64::NAN, f64::NAN), |g| {
            (g.ms, g.joules.map_or(f64::NAN, |j| j * 1e3))
        });
        let lat_us = r.fused.latency_ns() / 1e3;
        let e_uj = r.fused.energy_pj() / 1e6;
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1}x | {:.0}x | {:.2} |\n",
            r.workload,
            r.inv_every,
            gms,
            gmj,
            lat_us,
            e_uj,
            r.separate.latency_ns() / 1e3,
            r.separate.energy_pj() / 1e6,
            r.pipelayer.latency_ns() / 1e3,
            gms * 1e3 / lat_us,
            gmj * 1e3 / e_uj,
            r.fused.area_mm2,
        ));
    }
    s.push_str("\nPhases of the fused K-FAC iteration (us):\n\n| workload | inv every | ");
    let names: Vec<&str> = rows
        .first()
        .map(|r| r.fused.phases.iter().map(|p| p.name).collect())
        .unwrap_or_default();
    s.push_str(&names.join(" | "));
    s.push_str(" |\n|---|---|");
    s.push_str(&"---|".repeat(names.len()));
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} | {} | ", r.workload, r.inv_every));
        s.push_str(
            &r.fused
                .phases
                .iter()
                .map(|p| format!("{:.1}", p.ns / 1e3))
                .collect::<Vec<_>>()
                .join(" | "),
        );
        s.push_str(" |\n");
    }
    if !curves.is_empty() {
        s.push_str(&format!(
            "\nTime to {:.0}% test accuracy against PipeLayer-style SGD on the same crossbars ({steps_per_epoch} iterations per epoch; inversions every 10 iterations):\n\n| workload | K-FAC-hp epochs | SGD epochs | K-FAC time ms | PipeLayer time ms | speedup | K-FAC energy mJ | PipeLayer energy mJ | energy saving |\n|---|---|---|---|---|---|---|---|---|\n",
            target * 100.0
        ));
        for (wl, kf, sgd) in curves {
            let Some(r) = rows.iter().find(|r| &r.workload == wl && r.inv_every == 10) else {
                continue;
            };
            let (ek, es) = (epochs_to(kf, target), epochs_to(sgd, target));
            let fmt = |e: Option<usize>| e.map_or("not reached".to_string(), |e| e.to_string());
            let (tk, ts, ekj, esj) = match (ek, es) {
                (Some(a), Some(b)) => {
                    let (ia, ib) = ((a * steps_per_epoch) as f64, (b * steps_per_epoch) as f64);
                    (
                        ia * r.fused.latency_ns() / 1e6,
                        ib * r.pipelayer.latency_ns() / 1e6,
                        ia * r.fused.energy_pj() / 1e9,
                        ib * r.pipelayer.energy_pj() / 1e9,
                    )
                }
                _ => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
            };
            s.push_str(&format!(
                "| {wl} | {} | {} | {tk:.2} | {ts:.2} | {:.2}x | {ekj:.3} | {esj:.3} | {:.2}x |\n",
                fmt(ek),
                fmt(es),
                ts / tk,
                esj / ekj
            ));
        }
    }
    s.push_str(&format!(
        "\nPublished (RePAST): {:.1}x speedup and {:.1}x energy saving vs GPU; {:.1}x and {:.1}x vs PipeLayer.\n",
        PUBLISHED[0].1, PUBLISHED[0].2, PUBLISHED[1].1, PUBLISHED[1].2
    ));
    s
}

/// The digits network behind a workload name.
pub fn workload_net(name: &str) -> Option<Net> {
    match name {
        "digits-mlp" => Some(Net::Mlp { hidden: 32 }),
        "digits-cnn" => Some(Net::Cnn { channels: 8 }),
        _ => None,
    }
}

/// One cell of the sensitivity study.
#[derive(Debug, Clone)]
pub struct SensitivityRow {
    /// K-FAC damping.
    pub damping: f64,
    /// Noise level.
    pub noise: &'static str,
    /// Inverse kind label.
    pub run: String,
    /// Mean test accuracy over the last three epochs.
    pub acc_tail: f64,
    /// Epochs to the target.
    pub epochs_to: Option<usize>,
    /// Mean inverse bits.
    pub bits: f64,
    /// INV failures.
    pub failures: usize,
}

/// K-FAC with fp64, 8-bit INV alone and high-precision inverses across damping and noise.
pub fn sensitivity(
    net: Net,
    dampings: &[f64],
    epochs: usize,
    target: f64,
    seed: u64,
) -> Result<Vec<SensitivityRow>, ReramError> {
    let (tr, te) = Dataset::digits().split(360, 1);
    let mut out = Vec::new();
    let tail = |r: &[EpochRecord]| {
        let k = r.len().clamp(1, 3);
        r[r.len() - k..].iter().map(|e| e.test_acc).sum::<f64>() / k as f64
    };
    for &damping in dampings {
        let mut kinds: Vec<(&'static str, String, InverseKind)> =
            vec![("-", "kfac-fp64".into(), InverseKind::Exact)];
        for noise in NOISE.iter().skip(1) {
            let dev = Device::noisy(noise.prog_sigma, noise.read_sigma);
            let mut hp = HpConfig::default_refine();
            hp.inv.device = dev;
            hp.vmm.device = dev;
            kinds.push((noise.name, "kfac-inv8".into(), InverseKind::Analog(hp.inv)));
            kinds.push((noise.name, "kfac-hp".into(), InverseKind::HighPrecision(hp)));
        }
        for (noise, run, inverse) in kinds {
            let cfg = TrainConfig {
                net,
                optimizer: Optimizer::Kfac {
                    lr: 0.05,
                    damping,
                    inv_every: 10,
                    inverse,
                },
                epochs,
                batch: 64,
                seed,
            };
            let r = match train(&cfg, &tr, &te) {
                Ok(r) => r,
                Err(ReramError::Param(m)) if m.contains("diverged") => Vec::new(),
                Err(e) => return Err(e),
            };
            let bits: Vec<f64> = r
                .iter()
                .map(|e| e.inv_bits)
                .filter(|v| v.is_finite())
                .collect();
            out.push(SensitivityRow {
                damping,
                noise,
                run,
                acc_tail: if r.is_empty() { f64::NAN } else { tail(&r) },
                epochs_to: epochs_to(&r, target),
                bits: if bits.is_empty() {
                    f64::NAN
                } else {
                    bits.iter().sum::<f64>() / bits.len() as f64
                },
                failures: r.iter().map(|e| e.inv_failures).sum(),
            });
        }
    }
    Ok(out)
}

/// The sensitivity study as Markdown.
pub fn sensitivity_markdown(rows: &[SensitivityRow], epochs: usize, target: f64) -> String {
    let mut s = format!(
        "K-FAC across damping and device noise ({epochs} epochs; accuracy is the mean test accuracy of the last three epochs; NaN: training diverged).\n\n| damping | noise | inverses | test acc | epochs to {:.0}% | inverse bits | INV failures |\n|---|---|---|---|---|---|---|\n",
        target * 100.0
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {} | {} | {} |\n",
            r.damping,
            r.noise,
            r.run,
            r.acc_tail,
            r.epochs_to.map_or("not reached".into(), |e| e.to_string()),
            if r.bits.is_finite() {
                format!("{:.1}", r.bits)
            } else {
                "-".into()
            },
            r.failures
        ));
    }
    s
}

//! `archsweep reram ...`: the ReRAM second-order-training studies — achieved inversion
//! precision, K-FAC training curves with simulated inverses, the accelerator against the GPU
//! and PipeLayer, the ISAAC reference point, and technology-file checks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dse::report::plots::{render, Figure, Layer, PALETTE};
use models::reram::study::{self, NoiseLevel, NOISE};
use models::reram::{gpu_measurements, parse_gpu_csv};
use sim::reram::cost::{isaac_chip, isaac_peak_gops, isaac_tile};
use sim::reram::inv::Scheme;
use sim::reram::kfac::Net;
use sim::reram::tech::Technology;

use crate::ring::{command_line, new_dir, write_new};

/// ReRAM commands.
#[derive(Subcommand)]
pub enum ReramCmd {
    /// Correct bits after each INV round against condition number and device noise, for
    /// refinement and series expansion; writes precision.{csv,md} and bits.{svg,png} into a new
    /// directory.
    Precision {
        /// Matrix order.
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Random matrices per condition number.
        #[arg(long, default_value_t = 8)]
        trials: usize,
        /// INV rounds.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Condition numbers (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
        kappa: Vec<f64>,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Train on the 8x8 digits with SGD, Adam and K-FAC (fp64, 8-bit INV alone, high-precision
    /// scheme); writes curves.csv, training.md and curves.{svg,png} into a new directory.
    Train {
        /// Network: mlp (64-32-10) or cnn (3x3x8 conv, pool, 10).
        #[arg(long, default_value = "mlp")]
        net: String,
        /// Epochs.
        #[arg(long, default_value_t = 15)]
        epochs: usize,
        /// Device noise: ideal, default or 10x.
        #[arg(long, default_value = "default")]
        noise: String,
        /// Target test accuracy for "epochs to target".
        #[arg(long, default_value_t = 0.95)]
        target: f64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also run K-FAC across damping (0.03, 0.003, 0.0003) and noise (default, 3x, 10x)
        /// with fp64, 8-bit INV alone and high-precision inverses (at most 8 epochs each).
        #[arg(long)]
        sensitivity: bool,
        /// Output directory (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// One training iteration on the accelerator (fused and separate mapping) against the
    /// measured GPU K-FAC iteration and a PipeLayer-style SGD pipeline, with time to accuracy.
    Compare {
        /// The GPU measurement (scripts/kfac_gpu.py).
        #[arg(long, default_value = "results/reram/gpu_kfac_h100.csv")]
        gpu: PathBuf,
        /// Epochs of the training runs behind time to accuracy.
        #[arg(long, default_value_t = 15)]
        epochs: usize,
        /// Target test accuracy.
        #[arg(long, default_value_t = 0.95)]
        target: f64,
        /// Markdown report to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The cost model's roll-up of the ISAAC tile and chip against ISAAC's published totals.
    Isaac,
    /// Check a technology file (or the default) and print its derived per-operation costs.
    Tech {
        /// The file (default: the embedded ISAAC 32 nm).
        file: Option<PathBuf>,
    },
}

/// ISAAC (ISCA 2016, Table I): tile power mW, tile area mm², chip power W, chip area mm².
pub const ISAAC_PUBLISHED: (f64, f64, f64, f64) = (330.0, 0.372, 65.8, 85.4);

fn noise_level(name: &str) -> Result<NoiseLevel> {
    NOISE
        .iter()
        .copied()
        .find(|n| n.name == name)
        .with_context(|| {
            format!(
                "unknown --noise `{name}`; choose one of {}",
                NOISE.iter().map(|n| n.name).collect::<Vec<_>>().join(", ")
            )
        })
}

fn net(name: &str) -> Result<Net> {
    match name {
        "mlp" => Ok(Net::Mlp { hidden: 32 }),
        "cnn" => Ok(Net::Cnn { channels: 8 }),
        _ => bail!("unknown --net `{name}`; choose mlp or cnn"),
    }
}

/// Draws labelled curves (one colour each) into `out/name.{svg,png}`.
pub(crate) fn plot_curves(
    out: &Path,
    name: &str,
    title: String,
    labels: (&str, &str),
    curves: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    let layers: Vec<Layer> = curves
        .iter()
        .enumerate()
        .map(|(i, (label, points))| Layer {
            label,
            points: points.clone(),
            color: PALETTE[i % PALETTE.len()],
            size: 3,
            line: true,
        })
        .collect();
    let fig = Figure::Scatter {
        title,
        labels: (labels.0.into(), labels.1.into()),
        layers,
        legend_low: true,
    };
    let svg =
        render(&fig, (900, 560), &out.join(format!("{name}.png"))).map_err(anyhow::Error::msg)?;
    write_new(&out.join(format!("{name}.svg")), &svg)
}
/// Runs a reram command.
pub fn run(cmd: ReramCmd, tech: &Technology) -> Result<()> {
    match cmd {
        ReramCmd::Precision {
            n,
            trials,
            rounds,
            kappa,
            seed,
            out,
        } => {
            if !(2..=1024).contains(&n) || trials == 0 || !(1..=40).contains(&rounds) {
                bail!("--n must be 2 to 1024, --trials at least 1, --rounds 1 to 40");
            }
            if let Some(k) = kappa.iter().find(|k| !(k.is_finite() && **k >= 1.0)) {
                bail!("--kappa values must be at least 1, got {k}");
            }
            new_dir(&out)?;
            let rows = study::precision(n, &kappa, rounds, trials, seed)?;
            let mut csv =
                String::from("scheme,noise,kappa,trials,stable,round,bits_mean,bits_min\n");
            for r in &rows {
                for (k, (b, m)) in r.bits.iter().zip(&r.bits_min).enumerate() {
                    csv.push_str(&format!(
                        "{},{},{},{},{},{},{:.3},{:.3}\n",
                        if r.scheme == Scheme::Refine {
                            "refine"
                        } else {
                            "expand"
                        },
                        r.noise,
                        r.kappa,
                        r.trials,
                        r.stable,
                        k + 1,
                        b,
                        m
                    ));
                }
            }
            write_new(&out.join("precision.csv"), &csv)?;
            let md = format!(
                "{}\ncommand: `{}`\n",
                study::precision_markdown(&rows, n, 16.0),
                command_line()
            );
            write_new(&out.join("precision.md"), &md)?;
            let curves: Vec<(String, Vec<(f64, f64)>)> = rows
                .iter()
                .filter(|r| r.scheme == Scheme::Refine && r.noise == "default" && r.stable > 0)
                .map(|r| {
                    let pts = r.bits.iter().enumerate();
                    (
                        format!("refine, kappa {:.0e}", r.kappa),
                        pts.map(|(k, b)| ((k + 1) as f64, *b)).collect(),
                    )
                })
                .collect();
            plot_curves(
                &out,
                "bits",
                format!("Correct bits per INV round ({n}x{n}, default noise)"),
                ("round", "correct bits"),
                &curves,
            )?;
            print!("{md}");
            println!(
                "wrote {}/precision.{{csv,md}} and bits.{{svg,png}}",
                out.display()
            );
        }
        ReramCmd::Train {
            net: name,
            epochs,
            noise,
            target,
            seed,
            sensitivity,
            out,
        } => {
            let net = net(&name)?;
            let noise = noise_level(&noise)?;
            if epochs == 0 || epochs > 500 {
                bail!("--epochs must be 1 to 500");
            }
            new_dir(&out)?;
            let curves = study::training(net, noise, epochs, seed)?;
            let mut csv = String::from(
                "run,epoch,train_loss,test_acc,inv_bits,inv_bits_min,inv_rounds,inv_failures\n",
            );
            for c in &curves {
                for r in &c.records {
                    csv.push_str(&format!(
                        "{},{},{:.6},{:.6},{:.3},{:.3},{:.3},{}\n",
                        c.label,
                        r.epoch,
                        r.train_loss,
                        r.test_acc,
                        r.inv_bits,
                        r.inv_bits_min,
                        r.inv_rounds,
                        r.inv_failures
                    ));
                }
            }
            write_new(&out.join("curves.csv"), &csv)?;
            let sens = if sensitivity {
                let rows =
                    study::sensitivity(net, &[0.03, 0.003, 0.0003], epochs.min(8), target, seed)?;
                format!(
                    "\n{}",
                    study::sensitivity_markdown(&rows, epochs.min(8), target)
                )
            } else {
                String::new()
            };
            let md = format!(
                "{}{sens}\ncommand: `{}`\n",
                study::training_markdown(net, noise, &curves, target),
                command_line()
            );
            write_new(&out.join("training.md"), &md)?;
            let series: Vec<(String, Vec<(f64, f64)>)> = curves
                .iter()
                .map(|c| {
                    let pts = c.records.iter().map(|r| (r.epoch as f64, r.test_acc));
                    (c.label.clone(), pts.collect())
                })
                .collect();
            plot_curves(
                &out,
                "curves",
                format!("{} on the digits: test accuracy", net.name()),
                ("epoch", "test accuracy"),
                &series,
            )?;
            print!("{md}");
            println!(
                "wrote {}/curves.csv, training.md and curves.{{svg,png}}",
                out.display()
            );
        }
        ReramCmd::Compare {
            gpu,
            epochs,
            target,
            out,
        } => {
            let gpu_rows = if gpu == Path::new("results/reram/gpu_kfac_h100.csv") && !gpu.exists() {
                gpu_measurements()
            } else {
                let text = std::fs::read_to_string(&gpu)
                    .with_context(|| format!("reading {}", gpu.display()))?;
                parse_gpu_csv(&text, &gpu.display().to_string()).map_err(anyhow::Error::msg)?
            };
            // Rounds and settling from the default-noise MLP training with the default solver.
            let mut curves = Vec::new();
            let (mut rounds, mut lam) = (Vec::new(), f64::INFINITY);
            for wl in ["digits-mlp", "digits-cnn"] {
                let net = study::workload_net(wl).expect("digits workload");
                let runs = study::training(net, NOISE[1], epochs, 1)?;
                let hp = runs
                    .iter()
                    .find(|c| c.label == "kfac-hp")
                    .expect("kfac-hp run");
                let sgd = runs.iter().find(|c| c.label == "sgd").expect("sgd run");
                rounds.extend(
                    hp.records
                        .iter()
                        .map(|r| r.inv_rounds)
                        .filter(|v| v.is_finite()),
                );
                lam = hp
                    .records
                    .iter()
                    .map(|r| r.inv_lambda_min)
                    .filter(|v| v.is_finite())
                    .fold(lam, f64::min);
                curves.push((wl.to_string(), hp.records.clone(), sgd.records.clone()));
            }
            let rounds = rounds.iter().sum::<f64>() / rounds.len().max(1) as f64;
            let rows = study::compare(tech, &gpu_rows, rounds.max(1.0), lam)?;
            let steps = 1437usize.div_ceil(64);
            let md = format!(
                "{}\nINV rounds per solve {rounds:.2} and smallest normalised eigenvalue {lam:.4} measured in the K-FAC-hp training runs (default noise).\n\ncommand: `{}`\n",
                study::compare_markdown(tech, &rows, &curves, target, steps),
                command_line()
            );
            if let Some(out) = out {
                write_new(&out, &md)?;
                println!("wrote {}", out.display());
            }
            print!("{md}");
        }
        ReramCmd::Isaac => {
            let tile = isaac_tile(tech);
            let chip = isaac_chip(tech);
            let (tp, ta, cp, ca) = ISAAC_PUBLISHED;
            println!("technology `{}`", tech.name);
            println!("| quantity | model | ISAAC Table I | error |\n|---|---|---|---|");
            for (q, m, p) in [
                ("tile power (mW)", tile.power_mw(), tp),
                ("tile area (mm2)", tile.area_mm2(), ta),
                ("chip power (W)", chip.power_mw() / 1e3, cp),
                ("chip area (mm2)", chip.area_mm2(), ca),
            ] {
                println!("| {q} | {m:.4} | {p} | {:+.2}% |", 100.0 * (m / p - 1.0));
            }
            let gops = isaac_peak_gops(tech, 16, 16);
            println!(
                "\npeak 16-bit throughput {:.1} TOP/s: {:.1} GOP/s/mm2, {:.1} GOP/W",
                gops / 1e3,
                gops / chip.area_mm2(),
                gops / (chip.power_mw() / 1e3)
            );
        }
        ReramCmd::Tech { file } => {
            let t = match file {
                Some(f) => Technology::load(&f)?,
                None => tech.clone(),
            };
            println!("technology `{}` ({} nm): valid", t.name, t.node_nm);
            println!(
                "crossbar read {:.2} pJ ({}x{}, {} ns); ADC {}-bit {:.3} pJ per conversion, {:.3} ns; DAC drive {:.4} pJ; program a row {:.0} ns, a cell {:.0} pJ; eDRAM {:.3} pJ/B; router {:.2} pJ/B",
                t.crossbar_read_pj(t.crossbar.rows, t.crossbar.cols),
                t.crossbar.rows,
                t.crossbar.cols,
                t.crossbar.read_ns,
                t.adc.bits,
                t.adc_conversion_pj(t.adc.bits),
                t.adc_conversion_ns(t.adc.bits),
                t.dac_drive_pj(t.dac.bits),
                t.program_row_ns(),
                t.program_cell_pj(),
                t.edram_byte_pj(),
                t.router_byte_pj()
            );
        }
    }
    Ok(())
}

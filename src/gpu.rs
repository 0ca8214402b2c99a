//! `archsweep gpu ...`: regression checks of GPU measurement runs and calibration of the GPU
//! latency model. Measuring happens on a GPU machine with `gpubench` (see scripts/gpu_bench.sh).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use models::attention::latency;

/// GPU commands.
#[derive(Subcommand)]
pub enum GpuCmd {
    /// Compare a new gpubench or lowbitbench run with the committed baseline; exit 1 when any
    /// measurement is slower by more than the threshold.
    Regress {
        /// The new run's CSV (from gpubench or lowbitbench, told apart by the header).
        new: PathBuf,
        /// Baseline CSV (default: results/gpu/h100/ours.csv for gpubench runs,
        /// results/gpu/lowbit_h100/ours.csv for lowbitbench runs).
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Relative slowdown that counts as a regression.
        #[arg(long, default_value_t = 0.10)]
        threshold: f64,
    },
    /// Accuracy of product-quantized KV caches on real MiniLM activations (committed sample):
    /// attention-output error and cosine per bits per element and fp16 window.
    PqAccuracy {
        /// Output CSV (never overwritten).
        #[arg(long, default_value = "results/gpu/pq_accuracy.csv")]
        out: PathBuf,
    },
    /// Fit the latency model to committed measurements and report its per-row error.
    Calibrate {
        /// Measurements (gpubench CSV).
        #[arg(long, default_value = "results/gpu/h100/ours.csv")]
        results: PathBuf,
        /// The bench file they were measured from (for the masks).
        #[arg(long, default_value = "configs/gpu/bench_h100.toml")]
        bench: PathBuf,
        /// Also write the coefficients here (the models embed models/data/gpu_latency_h100.toml).
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs a GPU command.
pub fn run(cmd: GpuCmd) -> Result<()> {
    match cmd {
        GpuCmd::Regress {
            new,
            baseline,
            threshold,
        } => {
            if !(threshold > 0.0 && threshold.is_finite()) {
                anyhow::bail!("--threshold {threshold}: must be a positive fraction such as 0.10");
            }
            let text = read(&new)?;
            let lowbit = text.starts_with("format,");
            let baseline = baseline.unwrap_or_else(|| {
                PathBuf::from(if lowbit {
                    "results/gpu/lowbit_h100/ours.csv"
                } else {
                    "results/gpu/h100/ours.csv"
                })
            });
            let (bname, nname) = (baseline.display().to_string(), new.display().to_string());
            let btext = read(&baseline)?;
            let rep = if lowbit {
                let b = gpu::lowbit::read_results(&btext, &bname)?;
                let n = gpu::lowbit::read_results(&text, &nname)?;
                gpu::results::regress(&b, &n, threshold)?
            } else {
                let b = gpu::results::read(&btext, &bname)?;
                let n = gpu::results::read(&text, &nname)?;
                gpu::results::regress(&b, &n, threshold)?
            };
            println!(
                "compared {} measurements: geometric-mean time ratio new/baseline {:.3}",
                rep.compared, rep.geomean_ratio
            );
            for m in &rep.missing {
                println!("missing from the new run: {m}");
            }
            for r in &rep.slower {
                println!(
                    "SLOWER {:>6.1}%  {}  ({:.1} us -> {:.1} us)",
                    (r.ratio() - 1.0) * 100.0,
                    r.key,
                    r.baseline_us,
                    r.new_us
                );
            }
            if !rep.slower.is_empty() {
                println!(
                    "{} regressions over {:.0}%",
                    rep.slower.len(),
                    threshold * 100.0
                );
                std::process::exit(1);
            }
            println!("no regression over {:.0}%", threshold * 100.0);
        }
        GpuCmd::PqAccuracy { out } => {
            use models::attention::pq_accuracy as acc;
            // Claim the output first: an existing file is never overwritten.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("creating {} (results are never overwritten: remove it first to regenerate)", out.display()))?;
            let a = acc::Activations::parse(acc::SAMPLE).map_err(anyhow::Error::msg)?;
            let rows = acc::evaluate(
                &a,
                acc::TRAIN_PASSAGES,
                &[4, 8, 16],
                &[0, 16, 32, 64],
                acc::KMEANS_ITERS,
                acc::SEED,
            );
            println!("all-MiniLM-L6-v2 layers {:?}, {} passages x {} tokens, head dim {}; codebooks trained on {} passages, evaluated on the rest", a.layers, a.shape[0], a.shape[3], a.shape[4], acc::TRAIN_PASSAGES);
            println!(
                "{:>3} {:>5} {:>5} {:>7} {:>10} {:>9} {:>9}",
                "M", "dsub", "bits", "window", "rel_err", "cosine", "key_err"
            );
            for r in &rows {
                println!(
                    "{:>3} {:>5} {:>5} {:>7} {:>10.4} {:>9.5} {:>9.4}",
                    r.m, r.dsub, r.bits, r.window, r.rel_err, r.cosine, r.key_err
                );
            }
            std::io::Write::write_all(&mut f, acc::to_csv(&rows).as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
        }
        GpuCmd::Calibrate {
            results,
            bench,
            write,
        } => {
            let rows = gpu::results::read(&read(&results)?, &results.display().to_string())?;
            let cfg = gpu::bench::BenchConfig::parse(&read(&bench)?, &bench.display().to_string())?;
            let pts = latency::points(&rows, &cfg).map_err(anyhow::Error::msg)?;
            let m = latency::fit(&pts);
            println!(
                "{:<90} {:>10} {:>10} {:>7}",
                "measurement", "measured", "model", "error"
            );
            for (key, got, pred) in latency::errors(&m, &pts) {
                println!(
                    "{key:<90} {got:>10.1} {pred:>10.1} {:>6.1}%",
                    (pred - got) / got * 100.0
                );
            }
            let text = latency::to_toml(&m, &results.display().to_string());
            print!("{text}");
            if let Some(path) = write {
                std::fs::write(&path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}

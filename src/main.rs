//! `archsweep`: run design-space sweeps, analyse Pareto fronts, write reports.
//!
//! The binary only parses arguments, wires the model registry to the engine and prints; the
//! work is in the `dse` and `models` crates. Every error exits with status 2 (interrupted runs
//! with 130) after printing its cause chain.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use dse::config::{self, Study};
use dse::runner::{self, Progress, RunOptions, Shard};

mod gpu;
mod lowbit;
mod modred;
mod pcie;
mod reram;
mod ring;
mod rtl;
mod trace_parquet;

/// The quickstart config, embedded so that `archsweep sweep` works with no file at hand.
const QUICKSTART: &str = include_str!("../configs/quickstart.toml");

#[derive(Parser)]
#[command(
    name = "archsweep",
    version,
    about = "Hardware design-space exploration: TOML sweeps, Pareto fronts, reports"
)]
struct Cli {
    /// ReRAM technology file for the reram.* models and `archsweep reram` (default: the
    /// embedded ISAAC 32 nm, sim/src/reram/isaac32.toml).
    #[arg(long, global = true, value_name = "FILE")]
    tech: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the models, or one model's parameters and metrics.
    List {
        /// A model name.
        model: Option<String>,
    },
    /// Check a sweep file without running it.
    Validate {
        /// The sweep file.
        file: PathBuf,
    },
    /// Run a sweep (resuming whatever its output directory already holds).
    Sweep {
        /// The sweep file; omitted: the embedded quickstart (configs/quickstart.toml).
        file: Option<PathBuf>,
        /// Output directory (default: the file's `output`, else runs/<study name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Evaluate only shard I of N (0-based), for grid/random/lhs/sobol sweeps.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Rewrite the tables and report of an output directory from its journal.
    Report {
        /// The output directory.
        dir: PathBuf,
    },
    /// Pareto front and hypervolume of any CSV or Parquet table.
    Pareto {
        /// The table (.csv or .parquet).
        table: PathBuf,
        /// Columns to minimise.
        #[arg(long = "min", value_name = "COLUMN")]
        min: Vec<String>,
        /// Columns to maximise.
        #[arg(long = "max", value_name = "COLUMN")]
        max: Vec<String>,
        /// Reference point, one value per objective in --min then --max order, in the columns'
        /// own units (default: worst observed + 10% of the range).
        #[arg(
            long = "ref",
            value_name = "X,Y,...",
            value_delimiter = ',',
            allow_negative_numbers = true
        )]
        reference: Vec<f64>,
    },
    /// Modular-reduction simulator: reduce numbers, describe designs, regenerate presets.
    Modred {
        #[command(subcommand)]
        cmd: modred::ModredCmd,
    },
    /// GPU measurements: regression checks against the committed baseline, latency-model
    /// calibration.
    Gpu {
        #[command(subcommand)]
        cmd: gpu::GpuCmd,
    },
    /// Sequence-parallel attention (Ring, TokenRing): timelines, compute-bound crossover,
    /// validation against published figures.
    Ring {
        #[command(subcommand)]
        cmd: ring::RingCmd,
    },
    /// Low-bit weights: quantizer accuracy on all-MiniLM-L6-v2's real weights.
    Lowbit {
        #[command(subcommand)]
        cmd: lowbit::LowbitCmd,
    },
    /// PCIe links and TLP traces: the pcie-bench reference, bandwidth and latency curves,
    /// simulated scenarios with traces, trace validation, generation and fidelity.
    Pcie {
        #[command(subcommand)]
        cmd: pcie::PcieCmd,
    },
    /// ReRAM second-order training: inversion precision, K-FAC training with simulated
    /// inverses, the accelerator against the GPU and PipeLayer, ISAAC reference, technology files.
    Reram {
        #[command(subcommand)]
        cmd: reram::ReramCmd,
    },
    /// Verilog export, synthesis and area-model calibration.
    Rtl {
        #[command(subcommand)]
        cmd: rtl::RtlCmd,
    },
    /// Merge the output directories of a sharded sweep into a new directory.
    Merge {
        /// The new output directory.
        #[arg(long)]
        out: PathBuf,
        /// Shard output directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn begin(&self, total: u64) {
        self.0.set_length(total);
        self.0.reset_eta();
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn end(&self) {
        self.0.finish_and_clear();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let tech = match &cli.tech {
        Some(f) => sim::reram::tech::Technology::load(f)?,
        None => sim::reram::tech::Technology::isaac32(),
    };
    let registry = models::registry_with(&tech);
    match cli.command {
        Command::List { model: None } => {
            let w = registry
                .iter()
                .map(|m| m.info().name.len())
                .max()
                .unwrap_or(0);
            for m in registry.iter() {
                let i = m.info();
                println!("{:w$}  v{:<3} {}", i.name, i.version, i.summary);
            }
        }
        Command::List { model: Some(name) } => {
            let m = registry.get(&name).ok_or_else(|| {
                anyhow!("unknown model '{name}'; valid models: {}", registry.names())
            })?;
            let i = m.info();
            println!("{} v{}: {}\n\nparameters:", i.name, i.version, i.summary);
            for p in &i.params {
                let unit = if p.unit.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", p.unit)
                };
                println!(
                    "  {}{unit}: {}, default {} — {}",
                    p.name,
                    p.domain_text(),
                    p.default,
                    p.doc
                );
            }
            println!("\nmetrics:");
            for mt in &i.metrics {
                let unit = if mt.unit.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", mt.unit)
                };
                let dir = match mt.direction {
                    dse::model::Direction::Minimize => " (lower is better)",
                    dse::model::Direction::Maximize => " (higher is better)",
                    dse::model::Direction::Neutral => "",
                };
                println!("  {}{unit}{dir} — {}", mt.name, mt.doc);
            }
        }
        Command::Validate { file } => {
            let study = config::load(&file, &registry)?;
            for w in &study.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok — study '{}', model {} v{}, {} free parameter(s), strategy {}, {} point(s) planned, config hash {}",
                file.display(),
                study.name,
                study.model.info().name,
                study.model.info().version,
                study.space.dims.len(),
                dse::report::strategy_text(&study.strategy),
                study.planned_points(),
                study.config_hash
            );
        }
        Command::Sweep {
            file,
            out,
            shard,
            threads,
            quiet,
        } => {
            let study = match &file {
                Some(f) => config::load(f, &registry)?,
                None => config::parse(QUICKSTART, "configs/quickstart.toml (embedded)", &registry)?,
            };
            return sweep(&study, out, shard, threads, quiet);
        }
        Command::Report { dir } => {
            let (study, header, j) = load_results(&dir, &registry)?;
            let a = dse::results::Analysis::new(&study, j.points);
            runner::write_outputs(&study, &header, a, &j.gens, &dir)?;
            println!("wrote {}", dir.join("report.html").display());
        }
        Command::Pareto {
            table,
            min,
            max,
            reference,
        } => pareto(&table, &min, &max, &reference)?,
        Command::Modred { cmd } => {
            modred::run(cmd)?;
        }
        Command::Ring { cmd } => {
            ring::run(cmd)?;
        }
        Command::Reram { cmd } => {
            reram::run(cmd, &tech)?;
        }
        Command::Pcie { cmd } => return pcie::run(cmd),
        Command::Lowbit { cmd } => return lowbit::run(cmd),
        Command::Rtl { cmd } => {
            rtl::run(cmd)?;
        }
        Command::Gpu { cmd } => {
            gpu::run(cmd)?;
        }
        Command::Merge { out, dirs } => {
            let s = dse::merge::merge(&dirs, &out, &registry)?;
            if !s.missing_shards.is_empty() {
                eprintln!(
                    "warning: shards {:?} are missing from the inputs: the merged study is partial",
                    s.missing_shards
                );
            }
            println!(
                "merged {} points ({} duplicates dropped) into {}",
                s.points,
                s.duplicates,
                out.display()
            );
            println!("report: {}", out.join("report.html").display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A sweep's output directory: its study, journal header and journal, checked to belong together.
fn load_results(
    dir: &Path,
    registry: &dse::Registry,
) -> Result<(Study, dse::journal::Header, dse::journal::Contents)> {
    let study = dse::merge::load_study(dir, registry)?;
    let j = dse::journal::read(&dir.join("journal.jsonl"))?;
    let header = j
        .header
        .clone()
        .ok_or_else(|| anyhow!("{}: empty journal", dir.display()))?;
    if header.config_hash != study.config_hash {
        bail!(
            "{}: study.toml (config hash {}) does not match the journal (config hash {})",
            dir.display(),
            study.config_hash,
            header.config_hash
        );
    }
    Ok((study, header, j))
}

fn sweep(
    study: &Study,
    out: Option<PathBuf>,
    shard: Option<Shard>,
    threads: Option<usize>,
    quiet: bool,
) -> Result<ExitCode> {
    for w in &study.warnings {
        eprintln!("warning: {w}");
    }
    let out = out
        .or_else(|| study.output.clone())
        .unwrap_or_else(|| Path::new("runs").join(&study.name));
    if let Some(t) = threads {
        if t == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .context("setting up the worker threads")?;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: stop now; the journal holds everything written so far.
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: finishing the points in flight (Ctrl-C again to stop at once)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} points  {rate}  ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .with_key(
        "rate",
        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} points/s", s.per_sec());
        },
    );
    bar.set_style(style);
    let opts = RunOptions {
        shard,
        progress: Arc::new(Bar(bar)),
        cancel,
        ..RunOptions::new(&out)
    };
    let s = runner::run(study, &opts)?;
    if s.torn_tail {
        eprintln!(
            "note: the journal's last line was incomplete (an interrupted write) and was dropped"
        );
    }
    if s.interrupted {
        eprintln!(
            "interrupted: {} points stored in {}; run the same command again to resume",
            s.stored,
            out.join("journal.jsonl").display()
        );
        return Ok(ExitCode::from(130));
    }
    if s.feasible == 0 && s.stored > 0 {
        eprintln!("warning: no evaluated point is feasible: the constraints are never met");
    }
    println!(
        "{}: {} points ({} evaluated now, {} from the journal, {} failed, {} feasible)",
        study.name, s.stored, s.evaluated, s.reused, s.failed, s.feasible
    );
    println!("report: {}", out.join("report.html").display());
    println!("table:  {}", out.join("points.parquet").display());
    Ok(ExitCode::SUCCESS)
}

fn pareto(table: &Path, min: &[String], max: &[String], reference: &[f64]) -> Result<()> {
    let names: Vec<String> = min.iter().chain(max).cloned().collect();
    if names.is_empty() {
        bail!("name at least one objective column with --min or --max");
    }
    if !reference.is_empty() && reference.len() != names.len() {
        bail!(
            "--ref has {} values but there are {} objectives ({})",
            reference.len(),
            names.len(),
            names.join(", ")
        );
    }
    let df = dse::results::read_table(table)?;
    let (rows, vals) = dse::results::numeric_columns(&df, &names, table)?;
    if vals.is_empty() {
        bail!(
            "{}: no row has finite values in all of {}",
            table.display(),
            names.join(", ")
        );
    }
    let sign: Vec<f64> = (0..names.len())
        .map(|k| if k < min.len() { 1.0 } else { -1.0 })
        .collect();
    let objs: Vec<Vec<f64>> = vals
        .iter()
        .map(|v| v.iter().zip(&sign).map(|(x, s)| x * s).collect())
        .collect();
    let refpt: Vec<f64> = if reference.is_empty() {
        dse::hypervolume::default_reference(&objs)
    } else {
        reference.iter().zip(&sign).map(|(x, s)| x * s).collect()
    };
    let mut front = dse::pareto::nondominated(&objs);
    front.sort_by(|&a, &b| {
        objs[a]
            .iter()
            .zip(&objs[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let fpts: Vec<&[f64]> = front.iter().map(|&i| objs[i].as_slice()).collect();
    let hv = dse::hypervolume::hypervolume(&fpts, &refpt);
    println!("row,{}", names.join(","));
    for &i in &front {
        println!(
            "{},{}",
            rows[i],
            vals[i]
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    let shown: Vec<String> = refpt
        .iter()
        .zip(&sign)
        .map(|(x, s)| (x * s).to_string())
        .collect();
    eprintln!(
        "front: {} of {} rows; hypervolume {} w.r.t. reference ({}){}",
        front.len(),
        vals.len(),
        hv,
        shown.join(", "),
        if reference.is_empty() {
            " = worst observed + 10% of the range"
        } else {
            ""
        }
    );
    Ok(())
}

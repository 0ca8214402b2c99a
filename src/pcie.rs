//! `archsweep pcie ...`: the pcie-bench reference, bandwidth and latency curves, one simulated
//! scenario with its TLP trace, trace validation, trace generation and fidelity.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dse::model::Model;
use models::pcie::{buffer_bytes, curves, curves_csv, curves_markdown, PcieDma};
use sim::pcie::engine::{simulate, trace_meta, TraceSink};
use sim::pcie::generate::{fidelity, generate, TraceModel};
use sim::pcie::link::{bench, Gen, LinkConfig};
use sim::pcie::tlp::Tlp;
use sim::pcie::trace::{TraceMeta, TraceReader, TraceWriter};
use sim::pcie::validate::{Rule, Validator};

use crate::reram::plot_curves;
use crate::ring::{command_line, new_dir, write_new};
use crate::trace_parquet::{is_parquet, read_parquet, ParquetTraceWriter};

/// PCIe commands.
#[derive(Subcommand)]
pub enum PcieCmd {
    /// The pcie-bench model's reference numbers (Gen3 x8, MPS 256, MRRS 512, 64-bit
    /// addresses) and the Ack/UpdateFC latency limits, next to the simulator's.
    Bench,
    /// Bandwidth (reads, writes) and latency against transfer size, 64 B to 4 KB: CSV,
    /// markdown and plots (SVG, PNG) into a new directory.
    Curves {
        /// Generation 1-6.
        #[arg(long, default_value_t = 3)]
        gen: u32,
        /// Lanes.
        #[arg(long, default_value_t = 8)]
        lanes: u32,
        /// Maximum payload size.
        #[arg(long, default_value_t = 256)]
        mps: u32,
        /// Maximum read request size.
        #[arg(long, default_value_t = 512)]
        mrrs: u32,
        /// Output directory (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Simulate one scenario of the pcie.dma model (its defaults with --set overrides); print
    /// its statistics and optionally write its TLP trace.
    Simulate {
        /// Parameter overrides, e.g. --set workload=nic --set generation=4.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Trace file to write (CSV, or Parquet when it ends in .parquet; never overwritten).
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Check a TLP trace against every rule; exit 0 when valid, 1 with violations, 2 when the
    /// trace is malformed.
    Validate {
        /// The trace (CSV, or Parquet when it ends in .parquet or .pq; the README gives the
        /// schema).
        trace: PathBuf,
        /// Violations to print.
        #[arg(long, default_value_t = 20)]
        max: usize,
    },
    /// Learn a sequence model from a reference trace and write a generated trace of any length
    /// (streamed, constant memory); constrained so that it validates unless --unconstrained.
    Generate {
        /// The reference trace.
        #[arg(long)]
        reference: PathBuf,
        /// Rows to generate.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Sample without the constraint layer.
        #[arg(long)]
        unconstrained: bool,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output trace (CSV, or Parquet when it ends in .parquet; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Convert a trace between CSV and Parquet (by the file names' extensions), checking every
    /// row on the way.
    Convert {
        /// The trace to read.
        input: PathBuf,
        /// The trace to write (never overwritten).
        output: PathBuf,
    },
    /// Fidelity of generated traces against their reference (KS and Wasserstein per field,
    /// n-gram distances, Frechet distance over windows, violation rate).
    Fidelity {
        /// The reference trace.
        #[arg(long)]
        reference: PathBuf,
        /// Generated traces.
        #[arg(required = true)]
        generated: Vec<PathBuf>,
        /// Markdown table to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn open(path: &Path) -> Result<BufReader<File>> {
    Ok(BufReader::with_capacity(
        1 << 20,
        File::open(path).with_context(|| format!("opening {}", path.display()))?,
    ))
}

fn create_new(path: &Path) -> Result<BufWriter<File>> {
    let f = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (results are never overwritten: choose another path)",
                path.display()
            )
        })?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

/// Streams a trace, CSV or Parquet: `start` gets its metadata and returns a state, `each`
/// gets every row with its line (CSV) or row (Parquet) number.
fn scan_trace<S>(
    path: &Path,
    start: impl FnOnce(&TraceMeta) -> Result<S>,
    mut each: impl FnMut(&mut S, usize, &Tlp),
) -> Result<S> {
    if is_parquet(path) {
        let trace = read_parquet(path)?;
        let mut s = start(&trace.meta)?;
        trace.rows(|r, t| each(&mut s, r, &t))?;
        Ok(s)
    } else {
        let mut r = TraceReader::new(open(path)?, &path.display().to_string())?;
        let mut s = start(&r.meta)?;
        while let Some((line, t)) = r.next_row()? {
            each(&mut s, line, &t);
        }
        Ok(s)
    }
}

/// Reads a whole trace, CSV or Parquet, with line (CSV) or row (Parquet) numbers.
fn read_trace(path: &Path) -> Result<(TraceMeta, Vec<(usize, Tlp)>)> {
    scan_trace(
        path,
        |m| Ok((*m, Vec::new())),
        |(_, rows), line, t| rows.push((line, *t)),
    )
}

/// A trace being written, CSV or Parquet by the path's extension.
enum TraceOut {
    Csv(TraceWriter<BufWriter<File>>),
    Parquet(Box<ParquetTraceWriter>),
}

impl TraceOut {
    fn create(path: &Path, meta: &TraceMeta) -> Result<TraceOut> {
        let f = create_new(path)?;
        Ok(if is_parquet(path) {
            TraceOut::Parquet(Box::new(ParquetTraceWriter::new(f, meta)?))
        } else {
            TraceOut::Csv(TraceWriter::new(f, meta)?)
        })
    }

    /// The rows written.
    fn finish(self) -> Result<u64> {
        match self {
            TraceOut::Csv(w) => Ok(w.finish()?),
            TraceOut::Parquet(w) => w.finish(),
        }
    }
}

impl TraceSink for TraceOut {
    fn row(&mut self, t: &Tlp) {
        match self {
            TraceOut::Csv(w) => w.row(t),
            TraceOut::Parquet(w) => w.row(t),
        }
    }
}

/// Counts rows passing through, for the generator's progress.
struct Tee<'a, S: TraceSink>(&'a mut S, u64);

impl<S: TraceSink> TraceSink for Tee<'_, S> {
    fn row(&mut self, t: &Tlp) {
        self.1 += 1;
        self.0.row(t);
    }
}

/// Runs a pcie command.
pub fn run(cmd: PcieCmd) -> Result<ExitCode> {
    match cmd {
        PcieCmd::Bench => {
            let c = LinkConfig::gen3x8();
            println!("pcie-bench model, Gen3 x8, MPS 256, MRRS 512, 64-bit addresses:");
            println!(
                "  raw {:.2} Gb/s, TLP level {:.2} Gb/s",
                c.raw_gbps(),
                bench::tlp_gbps(&c)
            );
            println!(
                "  2048 B DMA writes {:.2} Gb/s, reads {:.2} Gb/s",
                bench::write_gbps(&c, 2048),
                bench::read_gbps(&c, 2048)
            );
            print!("  Ack/UpdateFC limits (symbol times):");
            for mps in [128, 256, 512, 1024, 2048, 4096] {
                print!(
                    " MPS {mps}: {}",
                    LinkConfig { mps, ..c }.ack_limit_symbols()
                );
            }
            println!();
            println!("Ack/UpdateFC limit, symbol times, MPS 256, by generation and width:");
            for gen in Gen::ALL {
                let row: Vec<String> = [1, 2, 4, 8, 16]
                    .iter()
                    .map(|&lanes| {
                        format!(
                            "x{lanes} {}",
                            LinkConfig { gen, lanes, ..c }.ack_limit_symbols()
                        )
                    })
                    .collect();
                println!("  Gen{}: {}", gen.number(), row.join(", "));
            }
        }
        PcieCmd::Curves {
            gen,
            lanes,
            mps,
            mrrs,
            out,
        } => {
            let link = LinkConfig {
                gen: Gen::from_number(gen)?,
                lanes,
                mps,
                mrrs,
                ..LinkConfig::gen3x8()
            };
            link.check()?;
            new_dir(&out)?;
            let pts = curves(link, 8)?;
            write_new(&out.join("curves.csv"), &curves_csv(&pts))?;
            let md = format!(
                "{}\nProduced by `{}`.\n",
                curves_markdown(&link, &pts),
                command_line()
            );
            write_new(&out.join("curves.md"), &md)?;
            let series = |f: &dyn Fn(&models::pcie::CurvePoint) -> f64| -> Vec<(f64, f64)> {
                pts.iter().map(|p| (p.size as f64, f(p))).collect()
            };
            plot_curves(
                &out,
                "bandwidth",
                format!("PCIe Gen{gen} x{lanes} DMA bandwidth (MPS {mps}, MRRS {mrrs})"),
                ("transfer size (B)", "payload Gb/s"),
                &[
                    ("write, pcie-bench model".into(), series(&|p| p.bench_write)),
                    ("write, simulator".into(), series(&|p| p.sim_write)),
                    ("read, pcie-bench model".into(), series(&|p| p.bench_read)),
                    ("read, simulator".into(), series(&|p| p.sim_read)),
                ],
            )?;
            plot_curves(
                &out,
                "latency",
                format!("PCIe Gen{gen} x{lanes} DMA latency, one transfer at a time"),
                ("transfer size (B)", "ns"),
                &[
                    ("read p50".into(), series(&|p| p.read_lat_ns)),
                    ("read p99".into(), series(&|p| p.read_lat_p99_ns)),
                    ("write to commit p50".into(), series(&|p| p.write_lat_ns)),
                ],
            )?;
            print!("{}", curves_markdown(&link, &pts));
            println!("written to {}", out.display());
        }
        PcieCmd::Simulate { set, seed, trace } => {
            let model = PcieDma::new();
            let point = model.info().point_with(&set).map_err(anyhow::Error::msg)?;
            let (cfg, work) = model.scenario(&point, seed)?;
            let t0 = Instant::now();
            let s = match &trace {
                Some(path) => {
                    let mut w = TraceOut::create(path, &trace_meta(&cfg, &work))?;
                    let s = simulate(&cfg, &work, Some(&mut w))?;
                    let rows = w.finish()?;
                    println!("trace: {rows} rows in {}", path.display());
                    s
                }
                None => simulate(&cfg, &work, None)?,
            };
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "{} ops in {:.1} us: {:.2} Gb/s payload ({:.1}% of raw {:.2} Gb/s)",
                s.ops,
                s.elapsed_ns / 1e3,
                s.gbps(),
                100.0 * s.gbps() / cfg.link.raw_gbps(),
                cfg.link.raw_gbps()
            );
            println!(
                "latency ns: p50 {:.0}, p90 {:.0}, p99 {:.0}, max {:.0}",
                s.latency.quantile(0.5),
                s.latency.quantile(0.9),
                s.latency.quantile(0.99),
                s.latency.max()
            );
            println!(
                "device link: up {} TLPs, {} DLLPs, {} replays; down {} TLPs, {} DLLPs; stalls: credits {:.1} us, tags {:.1} us; IOTLB misses {}",
                s.up.tlps, s.up.dllps, s.up.replays, s.down.tlps, s.down.dllps, s.credit_stall_ns / 1e3, s.tag_stall_ns / 1e3, s.iotlb_misses
            );
            println!(
                "buffers {:.1} KiB ({:.4} mm2); {} TLPs simulated in {:.3} s ({:.1} M TLP/s)",
                buffer_bytes(&cfg) as f64 / 1024.0,
                buffer_bytes(&cfg) as f64 * 8.0 * models::pcie::SRAM_UM2_PER_BIT * 1e-6,
                s.tlps,
                secs,
                s.tlps as f64 / secs / 1e6
            );
        }
        PcieCmd::Validate { trace, max } => {
            let t0 = Instant::now();
            let report = scan_trace(
                &trace,
                |m| Ok(Validator::new(m, max)),
                |v, line, t| v.check(line, t),
            )?
            .finish();
            let place = if is_parquet(&trace) { ": row " } else { ":" };
            for x in &report.violations {
                println!(
                    "{}{place}{}: [{}] {}",
                    trace.display(),
                    x.line,
                    x.rule.name(),
                    x.message
                );
            }
            for s in &report.skipped {
                println!("not checked: {s}");
            }
            let counts: Vec<String> = Rule::ALL
                .iter()
                .map(|r| format!("{} {}", r.name(), report.count(*r)))
                .collect();
            println!(
                "{} rows in {:.2} s: {} violations ({})",
                report.rows,
                t0.elapsed().as_secs_f64(),
                report.total(),
                counts.join(", ")
            );
            if report.total() > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        PcieCmd::Generate {
            reference,
            rows,
            unconstrained,
            seed,
            out,
        } => {
            let (meta, refrows) = read_trace(&reference)?;
            let refrows: Vec<Tlp> = refrows.into_iter().map(|r| r.1).collect();
            let model = TraceModel::learn(&meta, &refrows, seed)?;
            let mut w = TraceOut::create(&out, &meta)?;
            let mut tee = Tee(&mut w, 0);
            generate(&model, rows, !unconstrained, seed, &mut tee);
            let n = w.finish()?;
            println!(
                "{n} rows ({}) learned from {} reference rows written to {}",
                if unconstrained {
                    "unconstrained"
                } else {
                    "constrained"
                },
                model.rows(),
                out.display()
            );
        }
        PcieCmd::Fidelity {
            reference,
            generated,
            out,
        } => {
            let (meta, refrows) = read_trace(&reference)?;
            let refrows: Vec<Tlp> = refrows.into_iter().map(|r| r.1).collect();
            let mut md = format!(
                "Fidelity against `{}` ({} rows). KS: Kolmogorov-Smirnov statistic; W1: Wasserstein-1; TV: total variation between token n-gram distributions; Frechet: distance between Gaussians fitted to {}-row window features (FID-like); violations per 1000 rows from `archsweep pcie validate`'s rules.\n\n\
                 | trace | rows | KS length | KS gap | KS stride | W1 length B | W1 gap ns | TV bigram | TV trigram | Frechet | violations /1000 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
                reference.display(),
                refrows.len(),
                sim::pcie::generate::WINDOW
            );
            for g in &generated {
                let (gmeta, grows) = read_trace(g)?;
                if gmeta.nic != meta.nic {
                    bail!(
                        "{} describes another device than the reference",
                        g.display()
                    );
                }
                let mut v = Validator::new(&meta, 0);
                for (line, t) in &grows {
                    v.check(*line, t);
                }
                let viol = v.finish().total();
                let grows: Vec<Tlp> = grows.into_iter().map(|r| r.1).collect();
                let f = fidelity(&meta, &refrows, &grows);
                md += &format!(
                    "| {} | {} | {:.4} | {:.4} | {:.4} | {:.2} | {:.2} | {:.4} | {:.4} | {:.4} | {:.2} |\n",
                    g.display(),
                    grows.len(),
                    f.ks_length,
                    f.ks_gap,
                    f.ks_stride,
                    f.w1_length,
                    f.w1_gap,
                    f.tv_bigram,
                    f.tv_trigram,
                    f.frechet,
                    1000.0 * viol as f64 / grows.len().max(1) as f64
                );
            }
            print!("{md}");
            if let Some(out) = out {
                write_new(&out, &format!("{md}\nProduced by `{}`.\n", command_line()))?;
            }
        }
        PcieCmd::Convert { input, output } => {
            // Streamed; a conversion that fails removes the file it started (nothing else is
            // ever written there: create_new refuses existing files).
            let mut created = false;
            let n = scan_trace(
                &input,
                |m| {
                    let w = TraceOut::create(&output, m)?;
                    created = true;
                    Ok(w)
                },
                |w, _, t| w.row(t),
            )
            .and_then(TraceOut::finish);
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    if created {
                        let _ = std::fs::remove_file(&output);
                    }
                    return Err(e);
                }
            };
            println!(
                "{n} rows from {} written to {}",
                input.display(),
                output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

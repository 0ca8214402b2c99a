//! `archsweep rtl ...`: Verilog export, synthesis and calibration of the area model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use models::modred::calibration::{self, Reference};
use models::modred::rtl::{design, testbench, vectors, RomStyle};
use sim::modred::cost::{Inventory, Weights};
use sim::modred::Plan;

use crate::modred::DesignArgs;

/// RTL commands.
#[derive(Subcommand)]
pub enum RtlCmd {
    /// Write a design's Verilog, its self-checking testbench and test vectors.
    Export {
        #[command(flatten)]
        design: DesignArgs,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Top module name.
        #[arg(long, default_value = "modred")]
        top: String,
        /// Tables as `case` ROMs or `$readmemh` memories: case, memh.
        #[arg(long, default_value = "case")]
        rom: String,
        /// Random test vectors (edge cases are always included).
        #[arg(long, default_value_t = 1000)]
        vectors: usize,
        /// Seed of the random vectors.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Synthesize a design with Yosys (7-series; optionally iCE40 with nextpnr Fmax) and compare
    /// with the area model.
    Synth {
        #[command(flatten)]
        design: DesignArgs,
        /// Work directory (kept).
        #[arg(long)]
        out: PathBuf,
        /// Also synthesize for iCE40 and place and route on an HX8K for Fmax.
        #[arg(long)]
        ice40: bool,
    },
    /// Synthesize the reference designs, fit the area model's scale factors, report its error.
    Calibrate {
        /// Directory for results (synth.csv, calibration report).
        #[arg(long, default_value = "results/modred")]
        out: PathBuf,
        /// Also write the fitted factors to this calibration file (the model embeds
        /// models/data/modred_calibration.toml).
        #[arg(long)]
        write: Option<PathBuf>,
        /// Parallel Yosys runs.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
}

fn rom_style(s: &str) -> Result<RomStyle> {
    match s {
        "case" => Ok(RomStyle::Case),
        "memh" => Ok(RomStyle::Memh),
        other => bail!("--rom: `{other}` is not a ROM style; choose case or memh"),
    }
}

fn table_plan(d: &DesignArgs) -> Result<Plan> {
    let (m, spec) = d.build()?;
    if !spec.arch.is_table_based() {
        bail!(
            "--arch {}: RTL export covers the table-based designs (lut, iter, hybrid)",
            spec.arch
        );
    }
    Ok(Plan::new(&m, &spec)?)
}

/// Runs an rtl command.
pub fn run(cmd: RtlCmd) -> Result<()> {
    match cmd {
        RtlCmd::Export {
            design: d,
            out,
            top,
            rom,
            vectors: count,
            seed,
        } => {
            let style = rom_style(&rom)?;
            if top.is_empty()
                || !top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || top == "tb"
            {
                bail!("--top: `{top}` is not a usable module name (letters, digits, _; not `tb`)");
            }
            let plan = table_plan(&d)?;
            if out.join(format!("{top}.v")).exists() {
                bail!(
                    "{} already holds {top}.v; choose another --out (nothing is overwritten)",
                    out.display()
                );
            }
            design(&plan, &top, style)
                .write(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            let (xs, ys) = vectors(&plan, count, seed);
            testbench(&plan, &top, &xs, &ys).write(&out)?;
            println!(
                "wrote {}/{top}.v (latency {} cycles, II {}), tb.v and {} vectors",
                out.display(),
                plan.latency,
                plan.ii,
                xs.len()
            );
            println!(
                "  cd {} && iverilog -g2012 -Wall -o tb.vvp tb.v {top}.v && vvp -n tb.vvp",
                out.display()
            );
        }
        RtlCmd::Synth {
            design: d,
            out,
            ice40,
        } => {
            let plan = table_plan(&d)?;
            std::fs::create_dir_all(&out)?;
            design(&plan, "modred", RomStyle::Case).write(&out)?;
            let t = Instant::now();
            let bram = plan.table_mem != sim::modred::TableMem::Lut;
            let s = rtl::tools::yosys_synth_xilinx(&out, "modred.v", "modred", bram)?;
            let inv = Inventory::of_plan(&plan);
            let c = inv.cost(&calibration::committed(), &Weights::default());
            println!(
                "Yosys synth_xilinx (xc7) in {:.1} s:",
                t.elapsed().as_secs_f64()
            );
            println!("  {:<8} {:>10} {:>10}", "", "yosys", "model");
            println!(
                "  {:<8} {:>10} {:>10.0}",
                "LUT",
                s.luts() + s.count(&["SRL"]),
                c.luts
            );
            println!("  {:<8} {:>10} {:>10.0}", "FF", s.ffs(), c.ffs);
            println!("  {:<8} {:>10} {:>10.0}", "CARRY4", s.carry4(), c.carry4);
            println!("  {:<8} {:>10} {:>10.0}", "BRAM36", s.bram36(), c.bram36);
            if ice40 {
                let s = rtl::tools::yosys_synth_ice40(&out, "modred.v", "modred")?;
                println!(
                    "iCE40: SB_LUT4 {}, SB_CARRY {}, SB_DFF* {}",
                    s.count(&["SB_LUT4"]),
                    s.count(&["SB_CARRY"]),
                    s.count(&["SB_DFF"])
                );
                match rtl::tools::nextpnr_ice40_fmax(&out) {
                    Ok(f) => println!(
                        "nextpnr-ice40 (HX8K): Fmax {f:.1} MHz; model (7-series) {:.1} MHz",
                        c.fmax_mhz
                    ),
                    Err(e) => println!("nextpnr-ice40: {e}"),
                }
            }
        }
        RtlCmd::Calibrate { out, write, jobs } => calibrate(&out, write.as_deref(), jobs.max(1))?,
    }
    Ok(())
}

fn calibrate(out: &Path, write: Option<&Path>, jobs: usize) -> Result<()> {
    let set = calibration::reference_set();
    let work = out.join("synth");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(r) = set.get(i) else { break };
                let res = synthesize(r, &work.join(&r.name));
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, res.map_err(|e| format!("{}: {e:#}", r.name))));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let rows: Vec<calibration::Synthesized> = results
        .into_iter()
        .map(|(_, r)| r.map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let fitted = calibration::fit(&rows);
    std::fs::write(out.join("synth.csv"), &fitted.csv)?;
    std::fs::write(out.join("calibration.md"), &fitted.report)?;
    print!("{}", fitted.report);
    if let Some(p) = write {
        std::fs::write(p, &fitted.file).with_context(|| format!("writing {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Synthesizes one reference design in `dir` (LUT ROMs, no block RAM). Synthesis is
/// deterministic, so an unchanged netlist source reuses the counts already there.
fn synthesize(r: &Reference, dir: &Path) -> Result<calibration::Synthesized> {
    let plan = r.plan()?;
    std::fs::create_dir_all(dir)?;
    let files = design(&plan, "modred", RomStyle::Case);
    let text = &files.files[0].1;
    let stat = dir.join("xc7.json");
    let same = std::fs::read_to_string(dir.join("modred.v")).is_ok_and(|old| &old == text);
    let t = Instant::now();
    let s = if same && stat.exists() {
        eprintln!("  {:<20} (unchanged; counts reused)", r.name);
        rtl::tools::read_stat(&stat)?
    } else {
        let _ = std::fs::remove_file(&stat);
        files.write(dir)?;
        let s = rtl::tools::yosys_synth_xilinx(dir, "modred.v", "modred", false)?;
        eprintln!("  {:<20} {:>6.1} s", r.name, t.elapsed().as_secs_f64());
        s
    };
    Ok(calibration::Synthesized {
        reference: r.clone(),
        features: r.features()?,
        luts: s.luts() + s.count(&["SRL"]),
        ffs: s.ffs(),
        carry4: s.carry4(),
    })
}

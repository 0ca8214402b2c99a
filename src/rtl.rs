//! `archsweep rtl ...`: Verilog export, synthesis and calibration of the area model.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use models::modred::calibration::{self, Reference};
use models::modred::rtl::{design, testbench, vectors, RomStyle};
use sim::modred::cost::{FpgaCoeffs, Inventory, Weights};
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

/// Weight of the first-principles prior in the calibration fit: enough to separate correlated
/// features, small next to the designs' own relative errors.
const PRIOR_WEIGHT: f64 = 0.02;

struct Row {
    r: Reference,
    features: [f64; 5],
    regs: f64,
    luts: u64,
    ffs: u64,
    carry4: u64,
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
                let res = (|| -> Result<Row> {
                    let plan = r.plan()?;
                    let dir = work.join(&r.name);
                    std::fs::create_dir_all(&dir)?;
                    let files = design(&plan, "modred", RomStyle::Case);
                    let text = &files.files[0].1;
                    let stat = dir.join("xc7.json");
                    // Synthesis is deterministic: an identical netlist source reuses its counts.
                    let same =
                        std::fs::read_to_string(dir.join("modred.v")).is_ok_and(|old| &old == text);
                    let t = Instant::now();
                    let s = if same && stat.exists() {
                        eprintln!("  {:<20} (unchanged; counts reused)", r.name);
                        rtl::tools::read_stat(&stat)?
                    } else {
                        let _ = std::fs::remove_file(&stat);
                        files.write(&dir)?;
                        let s = rtl::tools::yosys_synth_xilinx(&dir, "modred.v", "modred", false)?;
                        eprintln!("  {:<20} {:>6.1} s", r.name, t.elapsed().as_secs_f64());
                        s
                    };
                    let (features, regs) = r.features()?;
                    Ok(Row {
                        r: r.clone(),
                        features,
                        regs,
                        luts: s.luts() + s.count(&["SRL"]),
                        ffs: s.ffs(),
                        carry4: s.carry4(),
                    })
                })();
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, res.map_err(|e| format!("{}: {e:#}", r.name))));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = results
        .into_iter()
        .map(|(_, r)| r.map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let x: Vec<Vec<f64>> = rows.iter().map(|r| r.features.to_vec()).collect();
    let y: Vec<f64> = rows.iter().map(|r| r.luts as f64).collect();
    let p = calibration::prior();
    let c5 = calibration::fit_nonnegative(
        &x,
        &y,
        &[p.rom, p.rom_deep, p.add, p.csa, p.mux],
        PRIOR_WEIGHT,
    );
    let ff = calibration::fit_nonnegative(
        &rows.iter().map(|r| vec![r.regs]).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.ffs as f64).collect::<Vec<_>>(),
        &[p.ff],
        PRIOR_WEIGHT,
    );
    // Rounded as the calibration file stores them, so the errors below are the committed model's.
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    let coeffs = FpgaCoeffs {
        rom: r4(c5[0]),
        rom_deep: r4(c5[1]),
        add: r4(c5[2]),
        csa: r4(c5[3]),
        mux: r4(c5[4]),
        ff: r4(ff[0]),
    };
    let mut csv = String::from("name,modulus,arch,input_bits,k,k_iter,cycles,lut_share,fusion,arity,regs_every,rom_luts,rom_deep_luts,add_bits,csa_bits,mux_bits,register_bits,yosys_luts,yosys_ffs,yosys_carry4,model_luts,model_ffs\n");
    let mut report = String::new();
    let _ = writeln!(
        report,
        "| design | Yosys LUT | model LUT | error | Yosys FF | model FF | error |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|");
    let (mut le, mut fe) = (Vec::new(), Vec::new());
    for r in &rows {
        let f = r.features;
        let ml = coeffs.rom * f[0]
            + coeffs.rom_deep * f[1]
            + coeffs.add * f[2]
            + coeffs.csa * f[3]
            + coeffs.mux * f[4];
        let mf = coeffs.ff * r.regs;
        let el = (ml - r.luts as f64) / r.luts as f64;
        let ef = (mf - r.ffs as f64) / r.ffs as f64;
        le.push(el.abs());
        fe.push(ef.abs());
        let s = &r.r.spec;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1},{:.1}",
            r.r.name,
            r.r.modulus,
            s.arch,
            s.input_bits,
            s.k,
            s.k_iter,
            s.cycles,
            s.lut_share,
            s.fusion,
            s.arity,
            s.regs_every,
            f[0],
            f[1],
            f[2],
            f[3],
            f[4],
            r.regs,
            r.luts,
            r.ffs,
            r.carry4,
            ml,
            mf
        );
        let _ = writeln!(
            report,
            "| {} | {} | {:.0} | {:+.1}% | {} | {:.0} | {:+.1}% |",
            r.r.name,
            r.luts,
            ml,
            el * 100.0,
            r.ffs,
            mf,
            ef * 100.0
        );
    }
    let stats = |v: &[f64]| {
        (
            v.iter().sum::<f64>() / v.len() as f64,
            v.iter().cloned().fold(0.0, f64::max),
        )
    };
    let (lut_err, ff_err) = (stats(&le), stats(&fe));
    let _ = writeln!(
        report,
        "\nFitted: rom {:.3}, rom_deep {:.3}, add {:.3}, csa {:.3}, mux {:.3}, ff {:.3}. LUT error mean {:.1}% max {:.1}%; FF error mean {:.1}% max {:.1}%.",
        coeffs.rom, coeffs.rom_deep, coeffs.add, coeffs.csa, coeffs.mux, coeffs.ff,
        lut_err.0 * 100.0, lut_err.1 * 100.0, ff_err.0 * 100.0, ff_err.1 * 100.0
    );
    std::fs::write(out.join("synth.csv"), csv)?;
    std::fs::write(out.join("calibration.md"), &report)?;
    print!("{report}");
    if let Some(p) = write {
        std::fs::write(
            p,
            calibration::to_text(&coeffs, lut_err, ff_err, rows.len()),
        )
        .with_context(|| format!("writing {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

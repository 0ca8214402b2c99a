//! `archsweep modred ...`: the modular-reduction simulator from the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sim::modred::{Arch, Arity, DesignSpec, Modulus, Reducer, TableMem};

/// Modular-reduction commands.
#[derive(Subcommand)]
pub enum ModredCmd {
    /// Reduce numbers read from stdin (decimal or 0x hex, one per line) and print the residues.
    Reduce {
        #[command(flatten)]
        design: DesignArgs,
        /// Print residues in 0x hexadecimal instead of decimal.
        #[arg(long)]
        hex: bool,
    },
    /// Describe a design: structure, latency, initiation interval, resources and cost.
    Describe {
        #[command(flatten)]
        design: DesignArgs,
    },
    /// The ALLMod comparison from a `modred.lut` sweep: best area efficiency per architecture,
    /// hybrid/LUT ratio next to the published figure, area-latency fronts per architecture.
    Compare {
        /// The sweep's output directory.
        dir: PathBuf,
        /// Also write the Markdown to this file (refuses to overwrite).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Regenerate the preset moduli (NTT-friendly and random primes of each standard width).
    Primes {
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Widths, comma separated.
        #[arg(long, value_delimiter = ',', default_values_t = sim::modred::PRESET_WIDTHS)]
        widths: Vec<u64>,
    },
}

/// A reducer design on the command line.
#[derive(Args, Clone)]
pub struct DesignArgs {
    /// Modulus: a number (decimal or 0x hex) or a preset (ntt:BITS, random:BITS).
    #[arg(long, short = 'q')]
    pub modulus: String,
    /// Input width in bits (default: twice the modulus width).
    #[arg(long, short = 'w')]
    pub width: Option<u64>,
    /// Architecture: lut, iter, hybrid, barrett, montgomery.
    #[arg(long, default_value = "lut")]
    pub arch: String,
    /// Group width of the parallel tables.
    #[arg(long, default_value_t = 6)]
    pub k: u32,
    /// Digit width of the iterative unit's tables.
    #[arg(long, default_value_t = 6)]
    pub k_iter: u32,
    /// Cycles per result (iterative and hybrid).
    #[arg(long, default_value_t = 4)]
    pub cycles: u32,
    /// Share of the upper bits served by parallel tables (hybrid).
    #[arg(long, default_value_t = 0.5)]
    pub lut_share: f64,
    /// Iteration at which the LUT partial sum is fused (>= cycles: after the last).
    #[arg(long, default_value_t = 0)]
    pub fusion: u32,
    /// Adder-tree arity: 2, 3 or csa.
    #[arg(long, default_value = "2")]
    pub arity: String,
    /// Adder-tree levels per pipeline register.
    #[arg(long, default_value_t = 1)]
    pub regs_every: u32,
    /// Table storage: auto, lut or bram.
    #[arg(long, default_value = "auto")]
    pub table_mem: String,
}

impl DesignArgs {
    /// The modulus and design.
    pub fn build(&self) -> Result<(Modulus, DesignSpec)> {
        let m = Modulus::parse(&self.modulus).context("--modulus")?;
        let spec = DesignSpec {
            arch: self.arch.parse::<Arch>().context("--arch")?,
            input_bits: self.width.unwrap_or(2 * m.bits()),
            k: self.k,
            k_iter: self.k_iter,
            cycles: self.cycles,
            lut_share: self.lut_share,
            fusion: self.fusion,
            arity: self.arity.parse::<Arity>().context("--arity")?,
            regs_every: self.regs_every,
            table_mem: self.table_mem.parse::<TableMem>().context("--table-mem")?,
        };
        spec.validate()?;
        Ok((m, spec))
    }
}

/// Runs a modred command.
pub fn run(cmd: ModredCmd) -> Result<()> {
    match cmd {
        ModredCmd::Reduce { design, hex } => {
            let (m, spec) = design.build()?;
            let reducer = Reducer::new(&m, &spec)?;
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for (i, line) in stdin.lock().lines().enumerate() {
                let line = line.context("reading stdin")?;
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let x = sim::modred::parse_number(t)
                    .and_then(|x| reducer.reduce(&x))
                    .with_context(|| format!("stdin line {}", i + 1))?;
                if hex {
                    writeln!(out, "0x{x:x}")?;
                } else {
                    writeln!(out, "{x}")?;
                }
            }
            out.flush()?;
        }
        ModredCmd::Describe { design } => {
            let (m, spec) = design.build()?;
            print!(
                "{}",
                models::modred::describe(&m, &spec, &models::modred::CostSettings::default())?
            );
        }
        ModredCmd::Compare { dir, out } => {
            let (study, _, j) = crate::load_results(&dir, &models::registry())?;
            if study.model.info().name != "modred.lut" {
                bail!(
                    "{}: the study's model is {}; compare needs a modred.lut sweep",
                    dir.display(),
                    study.model.info().name
                );
            }
            let points: Vec<models::modred::compare::Evaluated> = j
                .points
                .into_iter()
                .filter_map(|r| {
                    r.m.map(|m| models::modred::compare::Evaluated {
                        params: r.p,
                        metrics: m,
                    })
                })
                .collect();
            if points.is_empty() {
                bail!("{}: no successfully evaluated point", dir.display());
            }
            let text = models::modred::compare::compare(study.model.info(), &points);
            print!("{text}");
            if let Some(p) = out {
                if p.exists() {
                    bail!("{} exists; not overwriting it", p.display());
                }
                std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?;
            }
        }
        ModredCmd::Primes { out, widths } => {
            if widths.is_empty() {
                bail!("--widths: give at least one width");
            }
            let text = sim::modred::presets_text(&widths)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

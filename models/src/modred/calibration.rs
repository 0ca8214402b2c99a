//! The FPGA cost model's calibration: scale factors fitted to Yosys synthesis results by
//! `archsweep rtl calibrate`, committed in `models/data/modred_calibration.toml`.

use sim::modred::cost::FpgaCoeffs;

const COMMITTED: &str = include_str!("../../data/modred_calibration.toml");

/// Parses a calibration file (`key = value` lines for rom, rom_deep, add, csa, mux, ff).
pub fn parse(text: &str) -> Result<FpgaCoeffs, String> {
    let mut c = FpgaCoeffs::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() || t.starts_with('[') {
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected key = value", i + 1))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("line {}: `{}` is not a number", i + 1, v.trim()))?;
        match k.trim() {
            "rom" => c.rom = v,
            "rom_deep" => c.rom_deep = v,
            "add" => c.add = v,
            "csa" => c.csa = v,
            "mux" => c.mux = v,
            "ff" => c.ff = v,
            "max_lut_error" | "max_ff_error" => {}
            other => {
                return Err(format!(
                    "line {}: unknown key `{other}` (rom, rom_deep, add, csa, mux, ff)",
                    i + 1
                ))
            }
        }
    }
    Ok(c)
}

/// The stated maximum relative errors (LUT, FF) of a calibration file, if it has them.
pub fn stated_errors(text: &str) -> Option<(f64, f64)> {
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
    };
    Some((get("max_lut_error")?, get("max_ff_error")?))
}

/// The committed calibration file's text.
pub fn committed_text() -> &'static str {
    COMMITTED
}

/// The committed calibration.
pub fn committed() -> FpgaCoeffs {
    parse(COMMITTED).unwrap_or_default()
}

use std::fmt::Write as _;

use sim::modred::cost::{Features, Inventory, Weights};
use sim::modred::{random_prime, Arch, Arity, DesignSpec, Modulus, Plan, TableMem};

/// One design of the calibration reference set.
#[derive(Debug, Clone)]
pub struct Reference {
    /// Short name (also the synthesis directory).
    pub name: String,
    /// Modulus (a preset name or a number).
    pub modulus: String,
    /// The design (tables in LUTs, since synthesis maps the case ROMs to logic).
    pub spec: DesignSpec,
}

/// The prior of the fit: the first-principles factors.
pub fn prior() -> FpgaCoeffs {
    FpgaCoeffs::default()
}

/// The reference set: conventional, iterative and hybrid designs at 64, 128 and 256 bits with
/// every adder arity, on random primes (dense tables, the general case).
pub fn reference_set() -> Vec<Reference> {
    let q64 = format!("0x{:x}", random_prime(64, sim::modred::RANDOM_PRIME_SEED));
    let base = |w: u64, k: u32| DesignSpec {
        table_mem: TableMem::Lut,
        ..DesignSpec::lut(w, k)
    };
    let r = |name: &str, modulus: &str, spec: DesignSpec| Reference {
        name: name.into(),
        modulus: modulus.into(),
        spec,
    };
    vec![
        r("lut64_k6", &q64, base(128, 6)),
        r(
            "lut64_k4_csa",
            &q64,
            DesignSpec {
                arity: Arity::Csa,
                ..base(128, 4)
            },
        ),
        r("lut128_k6", "random:128", base(256, 6)),
        r(
            "lut128_k5_t_r2",
            "random:128",
            DesignSpec {
                arity: Arity::Ternary,
                regs_every: 2,
                ..base(256, 5)
            },
        ),
        r(
            "lut128_k6_csa",
            "random:128",
            DesignSpec {
                arity: Arity::Csa,
                ..base(256, 6)
            },
        ),
        r(
            "iter128_c4",
            "random:128",
            DesignSpec {
                arch: Arch::Iter,
                cycles: 4,
                ..base(256, 6)
            },
        ),
        r(
            "iter128_c8_k8",
            "random:128",
            DesignSpec {
                arch: Arch::Iter,
                cycles: 8,
                k_iter: 8,
                ..base(256, 6)
            },
        ),
        r(
            "hyb128_c6_f2_csa",
            "random:128",
            DesignSpec {
                arch: Arch::Hybrid,
                cycles: 6,
                lut_share: 0.4,
                fusion: 2,
                arity: Arity::Csa,
                ..base(256, 6)
            },
        ),
        r(
            "hyb128_c8_late",
            "random:128",
            DesignSpec {
                arch: Arch::Hybrid,
                cycles: 8,
                lut_share: 0.3,
                fusion: 99,
                ..base(256, 6)
            },
        ),
        r("lut256_k6", "random:256", base(512, 6)),
        r(
            "hyb256_c8_f3",
            "random:256",
            DesignSpec {
                arch: Arch::Hybrid,
                cycles: 8,
                lut_share: 0.5,
                fusion: 3,
                ..base(512, 6)
            },
        ),
        r(
            "iter256_c16",
            "random:256",
            DesignSpec {
                arch: Arch::Iter,
                cycles: 16,
                ..base(512, 6)
            },
        ),
    ]
}

impl Reference {
    /// The design's plan.
    pub fn plan(&self) -> Result<Plan, sim::modred::ModredError> {
        Plan::new(&Modulus::parse(&self.modulus)?, &self.spec)
    }

    /// First-principles features of the design (tables in LUTs).
    pub fn features(&self) -> Result<Features, sim::modred::ModredError> {
        let inv = Inventory::of_plan(&self.plan()?);
        Ok(inv.features(&Weights::default()).0)
    }
}

/// A reference design with its Yosys counts.
#[derive(Debug, Clone)]
pub struct Synthesized {
    /// The design.
    pub reference: Reference,
    /// Its first-principles features.
    pub features: Features,
    /// Yosys LUT cells (LUT1-6 and SRL shift registers).
    pub luts: u64,
    /// Yosys flip-flops.
    pub ffs: u64,
    /// Yosys CARRY4 cells.
    pub carry4: u64,
}

/// Weight of the first-principles prior in the fit: enough to separate correlated features,
/// small next to the designs' own relative errors.
pub const PRIOR_WEIGHT: f64 = 0.02;

/// A fitted calibration with its errors on the designs it was fitted to.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The factors, rounded as the calibration file stores them.
    pub coeffs: FpgaCoeffs,
    /// Relative LUT error: (mean, max) of absolute values.
    pub lut_error: (f64, f64),
    /// Relative FF error: (mean, max) of absolute values.
    pub ff_error: (f64, f64),
    /// `results/modred/synth.csv`.
    pub csv: String,
    /// `results/modred/calibration.md`.
    pub report: String,
    /// The calibration file (`models/data/modred_calibration.toml`).
    pub file: String,
}

/// Fits the factors to synthesized designs and tabulates the model's error on each.
pub fn fit(rows: &[Synthesized]) -> Fitted {
    let p = prior();
    let x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.features.lut_features().to_vec())
        .collect();
    let y: Vec<f64> = rows.iter().map(|r| r.luts as f64).collect();
    let c = fit_nonnegative(&x, &y, &p.lut_factors(), PRIOR_WEIGHT);
    let regs: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| vec![r.features.register_bits])
        .collect();
    let ffs: Vec<f64> = rows.iter().map(|r| r.ffs as f64).collect();
    let ff = fit_nonnegative(&regs, &ffs, &[p.ff], PRIOR_WEIGHT);
    // Rounded as the calibration file stores them, so the errors below are the committed model's.
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    let coeffs = FpgaCoeffs {
        rom: r4(c[0]),
        rom_deep: r4(c[1]),
        add: r4(c[2]),
        csa: r4(c[3]),
        mux: r4(c[4]),
        ff: r4(ff[0]),
    };
    let mut csv = String::from("name,modulus,arch,input_bits,k,k_iter,cycles,lut_share,fusion,arity,regs_every,rom_luts,rom_deep_luts,add_bits,csa_bits,mux_bits,register_bits,yosys_luts,yosys_ffs,yosys_carry4,model_luts,model_ffs\n");
    let mut report = String::from(
        "| design | Yosys LUT | model LUT | error | Yosys FF | model FF | error |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let (mut le, mut fe) = (Vec::new(), Vec::new());
    for r in rows {
        let f = &r.features;
        let (ml, mf) = (coeffs.luts(f), coeffs.ffs(f));
        let el = (ml - r.luts as f64) / r.luts as f64;
        let ef = (mf - r.ffs as f64) / r.ffs as f64;
        le.push(el.abs());
        fe.push(ef.abs());
        let s = &r.reference.spec;
        let [rom, deep, add, csa, mux] = f.lut_features();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{rom},{deep},{add},{csa},{mux},{},{},{},{},{ml:.1},{mf:.1}",
            r.reference.name, r.reference.modulus, s.arch, s.input_bits, s.k, s.k_iter, s.cycles,
            s.lut_share, s.fusion, s.arity, s.regs_every, f.register_bits, r.luts, r.ffs, r.carry4
        );
        let _ = writeln!(
            report,
            "| {} | {} | {ml:.0} | {:+.1}% | {} | {mf:.0} | {:+.1}% |",
            r.reference.name,
            r.luts,
            el * 100.0,
            r.ffs,
            ef * 100.0
        );
    }
    let stats = |v: &[f64]| {
        (
            v.iter().sum::<f64>() / v.len() as f64,
            v.iter().cloned().fold(0.0, f64::max),
        )
    };
    let (lut_error, ff_error) = (stats(&le), stats(&fe));
    let _ = writeln!(
        report,
        "\nFitted: rom {:.3}, rom_deep {:.3}, add {:.3}, csa {:.3}, mux {:.3}, ff {:.3}. LUT error mean {:.1}% max {:.1}%; FF error mean {:.1}% max {:.1}%.",
        coeffs.rom, coeffs.rom_deep, coeffs.add, coeffs.csa, coeffs.mux, coeffs.ff,
        lut_error.0 * 100.0, lut_error.1 * 100.0, ff_error.0 * 100.0, ff_error.1 * 100.0
    );
    let file = to_text(&coeffs, lut_error, ff_error, rows.len());
    Fitted {
        coeffs,
        lut_error,
        ff_error,
        csv,
        report,
        file,
    }
}

/// Fits `y ~ sum_i c_i x_i` with non-negative `c`, minimising the squared *relative* error
/// (each row divided by its `y`) plus `weight * sum_i (c_i - prior_i)^2`, which keeps
/// coefficients of correlated features (table LUTs and adder bits grow together) near their
/// first-principles values instead of trading one against the other. Active-set loop over the
/// normal equations.
pub fn fit_nonnegative(rows: &[Vec<f64>], y: &[f64], prior: &[f64], weight: f64) -> Vec<f64> {
    let p = rows.first().map(Vec::len).unwrap_or(0);
    let mut active: Vec<bool> = vec![true; p];
    loop {
        let idx: Vec<usize> = (0..p).filter(|&i| active[i]).collect();
        let m = idx.len();
        let mut a = vec![vec![0.0; m + 1]; m];
        for (r, &yv) in rows.iter().zip(y) {
            let s = 1.0 / yv.max(1.0);
            for (ai, &i) in idx.iter().enumerate() {
                for (aj, &j) in idx.iter().enumerate() {
                    a[ai][aj] += r[i] * s * r[j] * s;
                }
                a[ai][m] += r[i] * s * yv * s;
            }
        }
        for (ai, &i) in idx.iter().enumerate() {
            a[ai][ai] += weight + 1e-9;
            a[ai][m] += weight * prior.get(i).copied().unwrap_or(0.0);
        }
        let sol = solve(a);
        let mut c = vec![0.0; p];
        for (k, &i) in idx.iter().enumerate() {
            c[i] = sol[k];
        }
        match idx.iter().copied().find(|&i| c[i] < 0.0) {
            Some(i) => active[i] = false,
            None => return c,
        }
    }
}

/// Gaussian elimination with partial pivoting on an augmented matrix.
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let m = a.len();
    for col in 0..m {
        let piv = (col..m)
            .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        let d = a[col][col];
        if d.abs() < 1e-300 {
            continue;
        }
        let pivot = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / d;
                for (x, p) in row.iter_mut().zip(&pivot).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..m)
        .map(|i| {
            if a[i][i].abs() < 1e-300 {
                0.0
            } else {
                a[i][m] / a[i][i]
            }
        })
        .collect()
}

/// Text of a calibration file.
pub fn to_text(c: &FpgaCoeffs, lut_err: (f64, f64), ff_err: (f64, f64), designs: usize) -> String {
    format!(
        "# FPGA cost-model scale factors (first-principles counts -> Yosys synth_xilinx counts),\n\
         # fitted by `archsweep rtl calibrate` on {designs} reference designs (results/modred/synth.csv).\n\
         # LUT error: mean {:.1}%, max {:.1}%; FF error: mean {:.1}%, max {:.1}%.\n\
         rom = {:.4}\nrom_deep = {:.4}\nadd = {:.4}\ncsa = {:.4}\nmux = {:.4}\nff = {:.4}\n\
         max_lut_error = {:.4}\nmax_ff_error = {:.4}\n",
        lut_err.0 * 100.0,
        lut_err.1 * 100.0,
        ff_err.0 * 100.0,
        ff_err.1 * 100.0,
        c.rom,
        c.rom_deep,
        c.add,
        c.csa,
        c.mux,
        c.ff,
        // The stated bounds round up, so that the committed counts meet them.
        (lut_err.1 * 1e4).ceil() / 1e4,
        (ff_err.1 * 1e4).ceil() / 1e4
    )
}

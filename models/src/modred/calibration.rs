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

use sim::modred::cost::{Inventory, Weights};
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

    /// First-principles features: [ROM LUTs (<= 64 entries), ROM LUTs (deeper), adder bits,
    /// compressor bits, mux bits], and register bits.
    pub fn features(&self) -> Result<([f64; 5], f64), sim::modred::ModredError> {
        let inv = Inventory::of_plan(&self.plan()?);
        let (f, _) = inv.features(&Weights::default());
        Ok((
            [
                f.rom_luts,
                f.rom_deep_luts,
                f.add_bits,
                f.csa_bits,
                f.mux_bits,
            ],
            f.register_bits,
        ))
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

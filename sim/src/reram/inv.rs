//! Analog matrix inversion (INV) in a closed-loop crossbar, and high-precision solves built
//! from it and a precise VMM.
//!
//! **INV** (Sun et al., PNAS 2019): the crossbar's conductances `G` sit in the feedback path of
//! one op-amp per row; input currents `b` settle the outputs to `x = G^-1 b` (up to sign) in one
//! step. Negative entries need a second array driven through inverting amplifiers
//! (`A = A+ − A−`). The loop is stable only when every eigenvalue of `A` has a positive real
//! part, and settles to `B` bits in `ln(2^B) / (2π GBW λmin)` with `λmin` the smallest
//! eigenvalue's real part normalised to the largest conductance. Precision is about 8 bits:
//! entries take `2^level_bits` levels, programming error is fixed per cell, read noise perturbs
//! every solve (first-order: `δx = −A^-1 δA x`), the input `b` comes from `dac_bits` DACs and the
//! output is converted by an `adc_bits` ADC behind a power-of-two programmable-gain range.
//!
//! **High precision** ([`HpSolver`]), RePAST's two schemes:
//! - *refinement*: `x ← x + INV(A_H, r)` with the residual `r = b − A x` from a bit-sliced
//!   precise VMM of `A`; each round rescales `r` to the converters' full range (bit-slicing of
//!   `b` and `x`), so every round gains the bits the INV resolves, and errors in `A_H` (including
//!   programming error) only slow convergence. A correction larger than the previous one marks
//!   divergence or the noise floor: it is dropped and the solve ends;
//! - *expansion*: `x = Σ_k (−A_H^-1 A_L)^k A_H^-1 b` with `A_L = A − A_H` (the digital low part) on
//!   a VMM crossbar; errors of the programmed `A_H` are not corrected.

use nalgebra::{DMatrix, DVector};
use rand::Rng;

use super::xbar::{gauss, Crossbar, Device, VmmConfig};
use super::ReramError;

/// An analog-inversion crossbar design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvConfig {
    /// Crossbar size (a larger matrix spans `ceil(n / size)^2` arrays wired into one loop).
    pub size: usize,
    /// Conductance levels per cell, as bits.
    pub level_bits: u32,
    /// Input DAC resolution.
    pub dac_bits: u32,
    /// Output ADC resolution.
    pub adc_bits: u32,
    /// Op-amp gain-bandwidth product, Hz.
    pub gbw_hz: f64,
    /// Device non-idealities.
    pub device: Device,
}

impl InvConfig {
    /// The 8-bit INV: 128 × 128, 256 levels, 8-bit converters, 1 GHz op-amps, ideal device.
    pub fn eight_bit() -> Self {
        InvConfig {
            size: 128,
            level_bits: 8,
            dac_bits: 8,
            adc_bits: 8,
            gbw_hz: 1e9,
            device: Device::ideal(),
        }
    }

    /// Checks the ranges.
    pub fn check(&self) -> Result<(), ReramError> {
        let bad = |m: String| Err(ReramError::Param(m));
        if !(2..=4096).contains(&self.size) {
            return bad(format!(
                "INV crossbar size must be 2 to 4096, got {}",
                self.size
            ));
        }
        for (name, b) in [
            ("level_bits", self.level_bits),
            ("dac_bits", self.dac_bits),
            ("adc_bits", self.adc_bits),
        ] {
            if !(1..=16).contains(&b) {
                return bad(format!("INV {name} must be 1 to 16, got {b}"));
            }
        }
        if !(self.gbw_hz.is_finite() && self.gbw_hz > 0.0) {
            return bad(format!("gbw_hz must be positive, got {}", self.gbw_hz));
        }
        self.device.check()
    }

    /// Arrays for an `n` × `n` matrix (positive and negative parts).
    pub fn crossbars_for(&self, n: usize) -> usize {
        2 * n.div_ceil(self.size).pow(2)
    }
}

/// Quantizes `v` to a signed `bits`-bit code over a power-of-two range covering `|v|∞`
/// (a programmable-gain stage in front of the converter); zero stays zero.
fn quantize_pow2(v: &mut [f64], bits: u32) {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if m == 0.0 || !m.is_finite() {
        return;
    }
    let fs = 2f64.powi(m.log2().ceil() as i32);
    let half = (1i64 << (bits - 1)) as f64;
    let step = fs / half;
    for x in v.iter_mut() {
        *x = ((*x / step).round().clamp(-(half - 1.0), half - 1.0)) * step;
    }
}

/// Quantizes `v` to a signed `bits`-bit code over `±|v|∞` (a DAC driven at full scale).
fn quantize_full(v: &mut [f64], bits: u32) {
    let m = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if m == 0.0 || !m.is_finite() {
        return;
    }
    let q = ((1i64 << (bits - 1)) - 1).max(1) as f64;
    let step = m / q;
    for x in v.iter_mut() {
        *x = (*x / step).round() * step;
    }
}

/// A matrix programmed into an INV crossbar pair.
#[derive(Debug, Clone)]
pub struct InvArray {
    cfg: InvConfig,
    n: usize,
    nominal: DMatrix<f64>,
    programmed: DMatrix<f64>,
    lu: nalgebra::LU<f64, nalgebra::Dyn, nalgebra::Dyn>,
    amax: f64,
    lambda_min: f64,
}

impl InvArray {
    /// Programs `a` (n × n). Fails when the loop would be unstable (an eigenvalue of the
    /// programmed matrix with a non-positive real part) or the matrix is singular.
    pub fn program<R: Rng + ?Sized>(
        a: &DMatrix<f64>,
        cfg: &InvConfig,
        rng: &mut R,
    ) -> Result<Self, ReramError> {
        cfg.check()?;
        let n = a.nrows();
        if n == 0 || a.ncols() != n {
            return Err(ReramError::Param(format!(
                "INV needs a square matrix, got {}x{}",
                a.nrows(),
                a.ncols()
            )));
        }
        if a.iter().any(|v| !v.is_finite()) {
            return Err(ReramError::Param(
                "the matrix holds a non-finite value".into(),
            ));
        }
        let amax = a.amax();
        if amax == 0.0 {
            return Err(ReramError::Singular);
        }
        let levels = ((1u64 << cfg.level_bits) - 1) as f64;
        let step = amax / levels;
        let d = cfg.device;
        let off = levels / (d.on_off_ratio - 1.0);
        let nominal = a.map(|v| (v / step).round() * step);
        let cell = |level: f64, rng: &mut R| -> f64 {
            let u: f64 = rng.random();
            let mut l = if u < d.stuck_off {
                0.0
            } else if u < d.stuck_off + d.stuck_on {
                levels
            } else if level > 0.0 && d.prog_sigma > 0.0 {
                (level + d.prog_sigma * levels * gauss(rng)).max(0.0)
            } else {
                level
            };
            l += off;
            if d.drift_nu > 0.0 && d.drift_time > 1.0 {
                let nu = (d.drift_nu * (1.0 + gauss(rng) / 3.0)).max(0.0);
                l *= d.drift_time.powf(-nu);
            }
            l
        };
        let mut programmed = DMatrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                let lv = (a[(i, j)] / step).round();
                let (p, q) = if lv >= 0.0 { (lv, 0.0) } else { (0.0, -lv) };
                let mut e = cell(p, rng) - cell(q, rng);
                if d.ir_drop > 0.0 {
                    let pi = (i % cfg.size) as f64 / (cfg.size - 1) as f64;
                    let pj = (j % cfg.size) as f64 / (cfg.size - 1) as f64;
                    e *= 1.0 - d.ir_drop * 0.5 * (pi + pj);
                }
                programmed[(i, j)] = e * step;
            }
        }
        let lambda_min = min_real_eigenvalue(&programmed);
        if lambda_min.is_nan() {
            return Err(ReramError::Eigen);
        }
        if lambda_min <= 0.0 || !lambda_min.is_finite() {
            return Err(ReramError::Unstable {
                min_real: lambda_min / amax,
            });
        }
        let lu = programmed.clone().lu();
        if !lu.is_invertible() {
            return Err(ReramError::Singular);
        }
        Ok(InvArray {
            cfg: *cfg,
            n,
            nominal,
            programmed,
            lu,
            amax,
            lambda_min,
        })
    }

    /// The design.
    pub fn config(&self) -> &InvConfig {
        &self.cfg
    }

    /// Order of the matrix.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The matrix quantized to the levels (what a perfect device would hold).
    pub fn nominal(&self) -> &DMatrix<f64> {
        &self.nominal
    }

    /// The matrix as programmed (errors, faults, drift, IR drop).
    pub fn programmed(&self) -> &DMatrix<f64> {
        &self.programmed
    }

    /// Smallest real part of the programmed matrix's eigenvalues over its largest entry.
    pub fn lambda_min_normalised(&self) -> f64 {
        self.lambda_min / self.amax
    }

    /// Settling time of one solve to the ADC's resolution, ns.
    pub fn settle_ns(&self) -> f64 {
        settle_ns(
            self.cfg.adc_bits,
            self.cfg.gbw_hz,
            self.lambda_min_normalised(),
        )
    }

    /// One analog solve of `A x = b`.
    pub fn solve<R: Rng + ?Sized>(&self, b: &[f64], rng: &mut R) -> Vec<f64> {
        assert_eq!(b.len(), self.n, "right-hand side length");
        let mut bq = b.to_vec();
        quantize_full(&mut bq, self.cfg.dac_bits);
        let mut x = self.lu.solve(&DVector::from_vec(bq)).expect("invertible");
        let rs = self.cfg.device.read_sigma;
        if rs > 0.0 {
            // Read noise on both arrays' cells: (δA x)_i ~ N(0, 2 (σ amax)^2 |x|^2).
            let sd = std::f64::consts::SQRT_2 * rs * self.amax * x.norm();
            let u = DVector::from_fn(self.n, |_, _| sd * gauss(rng));
            x -= self.lu.solve(&u).expect("invertible");
        }
        let mut out: Vec<f64> = x.iter().copied().collect();
        quantize_pow2(&mut out, self.cfg.adc_bits);
        out
    }
}

/// Settling time of the INV loop to `bits`, ns: `ln(2^bits) / (2π GBW λmin)`.
pub fn settle_ns(bits: u32, gbw_hz: f64, lambda_min_normalised: f64) -> f64 {
    f64::from(bits) * std::f64::consts::LN_2
        / (std::f64::consts::TAU * gbw_hz * lambda_min_normalised)
        * 1e9
}

/// Smallest real part over the eigenvalues of `a`, or a positive lower bound on it: symmetric
/// matrices by the symmetric solver; others by the symmetric part's smallest eigenvalue when
/// positive, else by the Schur form (NaN when its iteration does not converge).
pub fn min_real_eigenvalue(a: &DMatrix<f64>) -> f64 {
    let sym = (a - a.transpose()).amax() <= 1e-12 * a.amax();
    if sym {
        a.clone()
            .symmetric_eigenvalues()
            .iter()
            .fold(f64::INFINITY, |m, &v| m.min(v))
    } else {
        // Every eigenvalue's real part is at least the smallest eigenvalue of the symmetric
        // part (field of values): when that is positive the loop is stable, and it is the
        // (conservative) settling bound. Programmed matrices are near-symmetric, so it is
        // tight; otherwise the Schur form decides.
        let sym = (a + a.transpose()) * 0.5;
        let bound = sym
            .symmetric_eigenvalues()
            .iter()
            .fold(f64::INFINITY, |m, &v| m.min(v));
        if bound > 0.0 {
            return bound;
        }
        // nalgebra's plain Schur iterates without limit; cap it (NaN when it does not converge).
        let cap = 1000 * a.nrows().max(1);
        match nalgebra::linalg::Schur::try_new(a.clone(), f64::EPSILON, cap) {
            Some(s) => s
                .complex_eigenvalues()
                .iter()
                .fold(f64::INFINITY, |m, v| m.min(v.re)),
            None => f64::NAN,
        }
    }
}

/// Which high-precision scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Iterative refinement with a precise residual.
    Refine,
    /// Series expansion in `A_H^-1 A_L`.
    Expand,
}

impl Scheme {
    /// Parses `refine` or `expand`.
    pub fn parse(s: &str) -> Result<Self, ReramError> {
        match s {
            "refine" => Ok(Scheme::Refine),
            "expand" => Ok(Scheme::Expand),
            _ => Err(ReramError::Param(format!(
                "unknown scheme `{s}`; choose refine or expand"
            ))),
        }
    }
}

/// A high-precision solver design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpConfig {
    /// The INV crossbars.
    pub inv: InvConfig,
    /// The precise VMM crossbars (residual or low part).
    pub vmm: VmmConfig,
    /// Scheme.
    pub scheme: Scheme,
    /// Most rounds (INV solves).
    pub iterations: usize,
    /// Stop once the last correction is below `2^-target_bits` of the solution (0: never).
    pub target_bits: f64,
}

impl HpConfig {
    /// The 8-bit INV with a 24-bit residual VMM (ISAAC-style 2-bit cells and 1-bit DACs on
    /// 128-row arrays, lossless 9-bit ADCs), refinement, up to 10 rounds, stop at 20 bits.
    pub fn default_refine() -> Self {
        HpConfig {
            inv: InvConfig::eight_bit(),
            vmm: VmmConfig {
                rows: 128,
                cols: 128,
                cell_bits: 2,
                weight_bits: 24,
                input_bits: 24,
                dac_bits: 1,
                adc_bits: 9,
                encoding: super::xbar::Encoding::Offset,
                device: Device::ideal(),
            },
            scheme: Scheme::Refine,
            iterations: 10,
            target_bits: 20.0,
        }
    }
}

/// A matrix programmed for high-precision solves.
#[derive(Debug, Clone)]
pub struct HpSolver {
    cfg: HpConfig,
    inv: InvArray,
    vmm: Crossbar,
}

/// One high-precision solve.
#[derive(Debug, Clone)]
pub struct HpSolve {
    /// The solution after the last round.
    pub x: Vec<f64>,
    /// The solution after each round.
    pub iterates: Vec<Vec<f64>>,
}

impl HpSolver {
    /// Programs `a` into the INV and VMM crossbars.
    pub fn program<R: Rng + ?Sized>(
        a: &DMatrix<f64>,
        cfg: &HpConfig,
        rng: &mut R,
    ) -> Result<Self, ReramError> {
        if cfg.iterations == 0 {
            return Err(ReramError::Param("iterations must be at least 1".into()));
        }
        let inv = InvArray::program(a, &cfg.inv, rng)?;
        let vmm_matrix = match cfg.scheme {
            Scheme::Refine => a.clone(),
            Scheme::Expand => a - inv.nominal(),
        };
        let vmm = Crossbar::program(&vmm_matrix, &cfg.vmm, rng)?;
        Ok(HpSolver {
            cfg: *cfg,
            inv,
            vmm,
        })
    }

    /// The INV array.
    pub fn inv(&self) -> &InvArray {
        &self.inv
    }

    /// The VMM crossbars.
    pub fn vmm(&self) -> &Crossbar {
        &self.vmm
    }

    /// Solves `A x = b`.
    pub fn solve<R: Rng + ?Sized>(&self, b: &[f64], rng: &mut R) -> HpSolve {
        let n = self.inv.n();
        let mut x = vec![0.0; n];
        let mut iterates = Vec::with_capacity(self.cfg.iterations);
        let stop = if self.cfg.target_bits > 0.0 {
            2f64.powf(-self.cfg.target_bits)
        } else {
            0.0
        };
        match self.cfg.scheme {
            Scheme::Refine => {
                let mut prev = f64::INFINITY;
                for k in 0..self.cfg.iterations {
                    let r: Vec<f64> = if k == 0 {
                        b.to_vec()
                    } else {
                        let ax = self.vmm.vmm(&x, rng);
                        b.iter().zip(&ax).map(|(bi, ai)| bi - ai).collect()
                    };
                    let d = self.inv.solve(&r, rng);
                    let dm = d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                    // The controller watches the corrections: one larger than the last means
                    // the iteration diverges (or sits at its noise floor); it is dropped.
                    if k > 0 && dm > prev {
                        break;
                    }
                    prev = dm;
                    x.iter_mut().zip(&d).for_each(|(xi, di)| *xi += di);
                    iterates.push(x.clone());
                    if done(&d, &x, stop) {
                        break;
                    }
                }
            }
            Scheme::Expand => {
                let mut y = self.inv.solve(b, rng);
                x.clone_from(&y);
                iterates.push(x.clone());
                for _ in 1..self.cfg.iterations {
                    if done(&y, &x, stop) {
                        break;
                    }
                    let t = self.vmm.vmm(&y, rng);
                    y = self.inv.solve(&t, rng);
                    y.iter_mut().for_each(|v| *v = -*v);
                    x.iter_mut().zip(&y).for_each(|(xi, yi)| *xi += yi);
                    iterates.push(x.clone());
                }
            }
        }
        HpSolve { x, iterates }
    }
}

fn done(d: &[f64], x: &[f64], stop: f64) -> bool {
    let dm = d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let xm = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    stop > 0.0 && dm <= stop * xm
}

/// Correct bits of `x` against `exact`: `−log2(|x − exact|∞ / |exact|∞)`, at most 52.
pub fn achieved_bits(x: &[f64], exact: &[f64]) -> f64 {
    let e = x
        .iter()
        .zip(exact)
        .fold(0.0f64, |a, (u, v)| a.max((u - v).abs()));
    let m = exact.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if m == 0.0 {
        return if e == 0.0 { 52.0 } else { 0.0 };
    }
    if e == 0.0 {
        return 52.0;
    }
    (-(e / m).log2()).clamp(0.0, 52.0)
}

/// A random symmetric positive-definite `n` × `n` matrix with condition number `kappa`:
/// `Q diag(λ) Qᵀ`, `Q` from the QR factorization of a Gaussian matrix, eigenvalues log-spaced
/// from 1 down to `1 / kappa`.
pub fn spd_with_condition<R: Rng + ?Sized>(n: usize, kappa: f64, rng: &mut R) -> DMatrix<f64> {
    let g = DMatrix::from_fn(n, n, |_, _| gauss(rng));
    let q = g.qr().q();
    let lam = DVector::from_fn(n, |i, _| {
        if n == 1 {
            1.0
        } else {
            kappa.powf(-(i as f64) / (n - 1) as f64)
        }
    });
    let m = &q * DMatrix::from_diagonal(&lam) * q.transpose();
    (&m + m.transpose()) * 0.5
}

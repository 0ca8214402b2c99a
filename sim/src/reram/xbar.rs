//! Device and crossbar model: a matrix programmed into ReRAM cells and read as a
//! vector-matrix product (VMM), with every conversion the hardware performs.
//!
//! A weight matrix `W` (outputs × inputs, `y = W x`) is quantized to `weight_bits` signed fixed
//! point and stored either as differential pairs (two arrays holding the positive and negative
//! magnitudes) or with an offset (`q + 2^(bits−1)`, ISAAC's encoding, corrected digitally).
//! Each stored value is bit-sliced over `ceil(bits / cell_bits)` cells. Inputs are quantized to
//! `input_bits`, shifted to unsigned and fed `dac_bits` at a time (bit-serial for 1-bit DACs).
//! Every (array, slice, input chunk, row tile) produces one analog column current per output:
//! `Σ_i d_i g_ij` over the tile's rows, with
//! - the cell's programmed level plus a programming error (fixed per cell), the off-state
//!   conductance subtracted by a reference column, stuck-at faults, per-cell conductance drift
//!   `g (t/t0)^−ν` and a first-order IR-drop attenuation growing with the distance from the
//!   drivers;
//! - read noise drawn per conversion.
//!
//! The ADC rounds the current to its resolution: with enough bits
//! (`ceil(log2(rows (2^cell_bits − 1)(2^dac_bits − 1) + 1))`) its step is one conductance level,
//! so noise below half a level vanishes and the product is exact; with fewer bits the step
//! grows and the product loses precision. Shift-and-add combines the conversions digitally.

use nalgebra::DMatrix;
use rand::Rng;

use super::ReramError;

/// Device non-idealities, as fractions of the conductance range `g_max − g_min` where not said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Device {
    /// Programming error: standard deviation of a programmed level (fixed per cell).
    pub prog_sigma: f64,
    /// Read noise: standard deviation of a cell's current per read, relative to the range.
    pub read_sigma: f64,
    /// `g_max / g_min` (R_off / R_on).
    pub on_off_ratio: f64,
    /// Mean conductance-drift exponent ν (0: no drift); each cell draws ν ~ N(ν, (ν/3)²).
    pub drift_nu: f64,
    /// Time since programming over the reference time t0 (≥ 1).
    pub drift_time: f64,
    /// Fraction of cells stuck at g_min.
    pub stuck_off: f64,
    /// Fraction of cells stuck at g_max.
    pub stuck_on: f64,
    /// IR drop: fractional conductance attenuation of the cell farthest from the drivers and the
    /// sense amplifiers (first-order model, linear in row plus column position).
    pub ir_drop: f64,
}

impl Device {
    /// No non-idealities (on/off ratio 17, NeuroSim's 1.7 MΩ / 100 kΩ).
    pub fn ideal() -> Self {
        Device {
            prog_sigma: 0.0,
            read_sigma: 0.0,
            on_off_ratio: 17.0,
            drift_nu: 0.0,
            drift_time: 1.0,
            stuck_off: 0.0,
            stuck_on: 0.0,
            ir_drop: 0.0,
        }
    }

    /// Programming and read noise only.
    pub fn noisy(prog_sigma: f64, read_sigma: f64) -> Self {
        Device {
            prog_sigma,
            read_sigma,
            ..Self::ideal()
        }
    }

    /// Checks the ranges.
    pub fn check(&self) -> Result<(), ReramError> {
        let frac = |field: &str, v: f64, hi: f64| {
            if v.is_finite() && (0.0..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ReramError::Param(format!(
                    "{field} must be in 0..={hi}, got {v}"
                )))
            }
        };
        frac("prog_sigma", self.prog_sigma, 1.0)?;
        frac("read_sigma", self.read_sigma, 1.0)?;
        frac("drift_nu", self.drift_nu, 1.0)?;
        frac("stuck_off", self.stuck_off, 1.0)?;
        frac("stuck_on", self.stuck_on, 1.0)?;
        frac("ir_drop", self.ir_drop, 0.99)?;
        if self.stuck_off + self.stuck_on > 1.0 {
            return Err(ReramError::Param(
                "stuck_off + stuck_on must not exceed 1".into(),
            ));
        }
        if !(self.on_off_ratio.is_finite() && self.on_off_ratio > 1.0) {
            return Err(ReramError::Param(format!(
                "on_off_ratio must exceed 1, got {}",
                self.on_off_ratio
            )));
        }
        if !(self.drift_time.is_finite() && self.drift_time >= 1.0) {
            return Err(ReramError::Param(format!(
                "drift_time must be at least 1, got {}",
                self.drift_time
            )));
        }
        Ok(())
    }
}

/// How signed weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Two arrays (positive and negative magnitudes), subtracted after conversion.
    Differential,
    /// One array holding `q + 2^(bits−1)`; the offset's contribution is removed digitally.
    Offset,
}

impl Encoding {
    /// Parses `differential` or `offset`.
    pub fn parse(s: &str) -> Result<Self, ReramError> {
        match s {
            "differential" => Ok(Encoding::Differential),
            "offset" => Ok(Encoding::Offset),
            _ => Err(ReramError::Param(format!(
                "unknown encoding `{s}`; choose differential or offset"
            ))),
        }
    }
}

/// A VMM crossbar design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmmConfig {
    /// Crossbar rows (inputs per array).
    pub rows: usize,
    /// Crossbar columns.
    pub cols: usize,
    /// Bits per cell.
    pub cell_bits: u32,
    /// Signed weight precision.
    pub weight_bits: u32,
    /// Signed input precision.
    pub input_bits: u32,
    /// DAC resolution (input bits per read cycle).
    pub dac_bits: u32,
    /// ADC resolution.
    pub adc_bits: u32,
    /// Signed-weight encoding.
    pub encoding: Encoding,
    /// Device non-idealities.
    pub device: Device,
}

impl VmmConfig {
    /// ISAAC's design: 128 × 128, 2-bit cells, 16-bit weights and inputs, 1-bit DACs, offset
    /// encoding; the ADC resolves every level (9 bits; ISAAC saves one with its flip encoding).
    pub fn isaac() -> Self {
        VmmConfig {
            rows: 128,
            cols: 128,
            cell_bits: 2,
            weight_bits: 16,
            input_bits: 16,
            dac_bits: 1,
            adc_bits: 9,
            encoding: Encoding::Offset,
            device: Device::ideal(),
        }
    }

    /// Checks the ranges.
    pub fn check(&self) -> Result<(), ReramError> {
        let bad = |m: String| Err(ReramError::Param(m));
        if !(2..=4096).contains(&self.rows) || !(2..=4096).contains(&self.cols) {
            return bad(format!(
                "crossbar size {}x{} out of range (2 to 4096)",
                self.rows, self.cols
            ));
        }
        if !(1..=8).contains(&self.cell_bits) {
            return bad(format!("cell_bits must be 1 to 8, got {}", self.cell_bits));
        }
        if !(2..=32).contains(&self.weight_bits) || !(2..=32).contains(&self.input_bits) {
            return bad(format!(
                "weight_bits and input_bits must be 2 to 32, got {} and {}",
                self.weight_bits, self.input_bits
            ));
        }
        if !(1..=8).contains(&self.dac_bits) {
            return bad(format!("dac_bits must be 1 to 8, got {}", self.dac_bits));
        }
        if !(1..=16).contains(&self.adc_bits) {
            return bad(format!("adc_bits must be 1 to 16, got {}", self.adc_bits));
        }
        self.device.check()
    }

    /// Arrays per stored matrix (2 for differential pairs).
    pub fn arrays(&self) -> usize {
        match self.encoding {
            Encoding::Differential => 2,
            Encoding::Offset => 1,
        }
    }

    /// Stored bits per weight (magnitude bits for differential pairs).
    pub fn stored_bits(&self) -> u32 {
        match self.encoding {
            Encoding::Differential => self.weight_bits - 1,
            Encoding::Offset => self.weight_bits,
        }
    }

    /// Cells (bit slices) per stored weight.
    pub fn slices(&self) -> usize {
        self.stored_bits().div_ceil(self.cell_bits) as usize
    }

    /// Read cycles per VMM (input chunks).
    pub fn chunks(&self) -> usize {
        self.input_bits.div_ceil(self.dac_bits) as usize
    }

    /// ADC resolution at which one step is one conductance level (lossless conversion).
    pub fn lossless_adc_bits(&self) -> u32 {
        let fs = self.rows as f64 * self.levels_max() * ((1u64 << self.dac_bits) - 1) as f64;
        (fs + 1.0).log2().ceil() as u32
    }

    fn levels_max(&self) -> f64 {
        ((1u64 << self.cell_bits) - 1) as f64
    }

    /// Crossbars needed for an `outputs` × `inputs` matrix.
    pub fn crossbars_for(&self, outputs: usize, inputs: usize) -> usize {
        inputs.div_ceil(self.rows) * (outputs * self.arrays() * self.slices()).div_ceil(self.cols)
    }

    /// Activity of one VMM on an `outputs` × `inputs` matrix.
    pub fn vmm_activity(&self, outputs: usize, inputs: usize) -> VmmActivity {
        let row_tiles = inputs.div_ceil(self.rows);
        let chunks = self.chunks();
        let xbars = self.crossbars_for(outputs, inputs);
        let conversions = (row_tiles * chunks * self.arrays() * self.slices() * outputs) as f64;
        VmmActivity {
            cycles: chunks as f64,
            crossbar_reads: (xbars * chunks) as f64,
            dac_drives: (xbars / row_tiles.max(1) * inputs * chunks) as f64,
            conversions,
            shift_adds: conversions,
            crossbars: xbars,
        }
    }
}

/// What one VMM does, for the cost model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VmmActivity {
    /// Sequential read cycles (input chunks).
    pub cycles: f64,
    /// Crossbar read cycles, summed over crossbars.
    pub crossbar_reads: f64,
    /// Row drives (DAC + sample-and-hold), summed over crossbars and cycles.
    pub dac_drives: f64,
    /// ADC conversions.
    pub conversions: f64,
    /// Shift-and-add operations.
    pub shift_adds: f64,
    /// Crossbars the matrix occupies.
    pub crossbars: usize,
}

/// A standard normal sample (Box-Muller).
pub fn gauss<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A matrix programmed into crossbars.
#[derive(Debug, Clone)]
pub struct Crossbar {
    cfg: VmmConfig,
    outputs: usize,
    inputs: usize,
    /// Weight quantization step.
    w_step: f64,
    /// Quantized signed weights, row-major by input: `q[i * outputs + j]`.
    q: Vec<i64>,
    /// Per (array, slice): effective conductance in level units (off-state offset included),
    /// row-major by input.
    g: Vec<Vec<f64>>,
    /// Column sums of the quantized weights (input-offset correction).
    q_colsum: Vec<f64>,
    /// Off-state conductance in level units (what the reference column subtracts).
    g_off: f64,
}

impl Crossbar {
    /// Programs `w` (outputs × inputs) into crossbars; randomness (programming error, faults,
    /// drift) from `rng`.
    pub fn program<R: Rng + ?Sized>(
        w: &DMatrix<f64>,
        cfg: &VmmConfig,
        rng: &mut R,
    ) -> Result<Self, ReramError> {
        cfg.check()?;
        let (outputs, inputs) = w.shape();
        if outputs == 0 || inputs == 0 {
            return Err(ReramError::Param("cannot program an empty matrix".into()));
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(ReramError::Param(
                "the matrix holds a non-finite value".into(),
            ));
        }
        let qmax = ((1i64 << (cfg.weight_bits - 1)) - 1) as f64;
        let amax = w.amax();
        let w_step = if amax > 0.0 { amax / qmax } else { 1.0 };
        let mut q = vec![0i64; inputs * outputs];
        for i in 0..inputs {
            for j in 0..outputs {
                q[i * outputs + j] = (w[(j, i)] / w_step).round() as i64;
            }
        }
        let mut q_colsum = vec![0.0; outputs];
        for i in 0..inputs {
            for j in 0..outputs {
                q_colsum[j] += q[i * outputs + j] as f64;
            }
        }
        let lmax = cfg.levels_max();
        let g_off = lmax / (cfg.device.on_off_ratio - 1.0);
        let d = cfg.device;
        let sigma_l = d.prog_sigma * lmax;
        let cb = cfg.cell_bits;
        let mask = (1i64 << cb) - 1;
        let offset = 1i64 << (cfg.weight_bits - 1);
        let mut g = Vec::with_capacity(cfg.arrays() * cfg.slices());
        for a in 0..cfg.arrays() {
            for s in 0..cfg.slices() {
                let mut plane = vec![0.0; inputs * outputs];
                for i in 0..inputs {
                    for j in 0..outputs {
                        let v = q[i * outputs + j];
                        let stored = match (cfg.encoding, a) {
                            (Encoding::Offset, _) => v + offset,
                            (Encoding::Differential, 0) => v.max(0),
                            (Encoding::Differential, _) => (-v).max(0),
                        };
                        let level = ((stored >> (s as u32 * cb)) & mask) as f64;
                        let u: f64 = rng.random();
                        let mut l = if u < d.stuck_off {
                            0.0
                        } else if u < d.stuck_off + d.stuck_on {
                            lmax
                        } else if sigma_l > 0.0 {
                            (level + sigma_l * gauss(rng)).clamp(-0.5, lmax + 0.5)
                        } else {
                            level
                        };
                        l += g_off;
                        if d.drift_nu > 0.0 && d.drift_time > 1.0 {
                            let nu = (d.drift_nu * (1.0 + gauss(rng) / 3.0)).max(0.0);
                            l *= d.drift_time.powf(-nu);
                        }
                        if d.ir_drop > 0.0 {
                            let pi = (i % cfg.rows) as f64 / (cfg.rows - 1) as f64;
                            let col =
                                (j * cfg.arrays() * cfg.slices() + a * cfg.slices() + s) % cfg.cols;
                            let pj = col as f64 / (cfg.cols - 1) as f64;
                            l *= 1.0 - d.ir_drop * 0.5 * (pi + pj);
                        }
                        plane[i * outputs + j] = l;
                    }
                }
                g.push(plane);
            }
        }
        Ok(Crossbar {
            cfg: *cfg,
            outputs,
            inputs,
            w_step,
            q,
            g,
            q_colsum,
            g_off,
        })
    }

    /// The design.
    pub fn config(&self) -> &VmmConfig {
        &self.cfg
    }

    /// (outputs, inputs).
    pub fn shape(&self) -> (usize, usize) {
        (self.outputs, self.inputs)
    }

    /// The matrix as quantized to `weight_bits` (what an ideal array computes with).
    pub fn quantized(&self) -> DMatrix<f64> {
        DMatrix::from_fn(self.outputs, self.inputs, |j, i| {
            self.q[i * self.outputs + j] as f64 * self.w_step
        })
    }

    /// Activity of one VMM.
    pub fn activity(&self) -> VmmActivity {
        self.cfg.vmm_activity(self.outputs, self.inputs)
    }

    /// `y = W x` as the crossbars compute it; read noise from `rng`.
    pub fn vmm<R: Rng + ?Sized>(&self, x: &[f64], rng: &mut R) -> Vec<f64> {
        assert_eq!(x.len(), self.inputs, "input length");
        let cfg = &self.cfg;
        let (m, n) = (self.outputs, self.inputs);
        let xmax = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let qx_max = ((1i64 << (cfg.input_bits - 1)) - 1) as f64;
        let x_step = if xmax > 0.0 { xmax / qx_max } else { 1.0 };
        let x_off = 1i64 << (cfg.input_bits - 1);
        // Unsigned inputs: u = q + 2^(bits-1).
        let u: Vec<i64> = x
            .iter()
            .map(|v| (v / x_step).round() as i64 + x_off)
            .collect();
        let db = cfg.dac_bits;
        let dmask = (1i64 << db) - 1;
        let cb = cfg.cell_bits;
        let lmax = cfg.levels_max();
        let fs = cfg.rows as f64 * lmax * dmask as f64;
        let codes = ((1u64 << cfg.adc_bits) - 1) as f64;
        let lsb = (fs / codes).max(1.0);
        let read_sigma = cfg.device.read_sigma * lmax;
        let mut total = vec![0.0f64; m];
        let mut col = vec![0.0f64; m];
        let mut d = vec![0.0f64; cfg.rows];
        for r0 in (0..n).step_by(cfg.rows) {
            let r1 = (r0 + cfg.rows).min(n);
            for c in 0..cfg.chunks() {
                let mut dsum = 0.0;
                let mut dsq = 0.0;
                for i in r0..r1 {
                    let v = ((u[i] >> (c as u32 * db)) & dmask) as f64;
                    d[i - r0] = v;
                    dsum += v;
                    dsq += v * v;
                }
                let cw = 2f64.powi((c as u32 * db) as i32);
                for a in 0..cfg.arrays() {
                    let sign = if a == 0 { 1.0 } else { -1.0 };
                    for s in 0..cfg.slices() {
                        let plane = &self.g[a * cfg.slices() + s];
                        col.iter_mut().for_each(|v| *v = 0.0);
                        for i in r0..r1 {
                            let di = d[i - r0];
                            if di == 0.0 {
                                continue;
                            }
                            let row = &plane[i * m..(i + 1) * m];
                            for (acc, gij) in col.iter_mut().zip(row) {
                                *acc += di * gij;
                            }
                        }
                        let w = sign * cw * 2f64.powi((s as u32 * cb) as i32);
                        let noise_sd = read_sigma * dsq.sqrt();
                        for (t, &y) in total.iter_mut().zip(&col) {
                            let mut y = y - self.g_off * dsum;
                            if noise_sd > 0.0 {
                                y += noise_sd * gauss(rng);
                            }
                            let code = (y / lsb).round().clamp(0.0, codes);
                            *t += w * code * lsb;
                        }
                    }
                }
            }
        }
        // Digital corrections: weight offset (offset encoding) and input offset.
        let usum: f64 = u.iter().map(|&v| v as f64).sum();
        let w_off = match cfg.encoding {
            Encoding::Offset => (1i64 << (cfg.weight_bits - 1)) as f64,
            Encoding::Differential => 0.0,
        };
        total
            .iter()
            .zip(&self.q_colsum)
            .map(|(&t, &qs)| (t - w_off * usum - x_off as f64 * qs) * self.w_step * x_step)
            .collect()
    }
}

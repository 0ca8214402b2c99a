//! K-FAC training on a real dataset with the factor inverses computed by the simulated
//! crossbars, against SGD and Adam.
//!
//! Data: the 8x8 handwritten digits scikit-learn ships (1797 images, exported once by
//! `scripts/export_digits.py` to `sim/data/digits.csv` and embedded), pixels scaled to [0, 1],
//! split 1437 / 360 by a seeded shuffle.
//!
//! Networks: an MLP `64 → hidden → 10` (ReLU), and a CNN `3×3 conv (C channels, valid) → ReLU
//! → 2×2 average pool → 10` whose convolution is a matrix product over im2col patches (36 per
//! image). Both end in softmax cross-entropy.
//!
//! K-FAC (Martens and Grosse 2015; convolutions as in Grosse and Martens 2016): per layer the
//! Fisher block is approximated by `A ⊗ G`, `A` the second moment of the layer's inputs (with a
//! bias column), `G` that of the pre-activation gradients, both running averages (decay 0.95).
//! The update is `G_d^-1 ∇W A_d^-1` with factored Tikhonov damping
//! (`A + π √γ I`, `G + √γ / π I`, π from the factors' traces), KL clipping and momentum.
//! The inverses are recomputed every `inv_every` steps by [`InverseKind`]: fp64, the 8-bit
//! analog INV alone (one solve per column), or the high-precision scheme.

use nalgebra::{DMatrix, DVector};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::inv::{achieved_bits, HpConfig, HpSolver, InvArray, InvConfig};
use super::ReramError;

/// The embedded dataset.
pub const DIGITS_CSV: &str = include_str!("../../data/digits.csv");

/// A labelled dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// One image per row, pixels in [0, 1].
    pub x: DMatrix<f64>,
    /// Labels 0-9.
    pub y: Vec<usize>,
}

impl Dataset {
    /// Parses the digits CSV format: 64 pixels (0-16) and a label per line; `#` lines skipped.
    pub fn parse_digits(text: &str) -> Result<Self, ReramError> {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for (k, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let vals: Vec<&str> = line.split(',').collect();
            if vals.len() != 65 {
                return Err(ReramError::Data {
                    line: k + 1,
                    message: format!("expected 65 values (64 pixels, label), got {}", vals.len()),
                });
            }
            for (c, v) in vals.iter().enumerate() {
                let n: u32 = v.trim().parse().map_err(|_| ReramError::Data {
                    line: k + 1,
                    message: format!("column {}: `{v}` is not an integer", c + 1),
                })?;
                let max = if c == 64 { 9 } else { 16 };
                if n > max {
                    return Err(ReramError::Data {
                        line: k + 1,
                        message: format!("column {}: {n} exceeds {max}", c + 1),
                    });
                }
                if c == 64 {
                    y.push(n as usize);
                } else {
                    rows.push(f64::from(n) / 16.0);
                }
            }
        }
        if y.is_empty() {
            return Err(ReramError::Data {
                line: 0,
                message: "no samples".into(),
            });
        }
        Ok(Dataset {
            x: DMatrix::from_row_slice(y.len(), 64, &rows),
            y,
        })
    }

    /// The embedded digits.
    pub fn digits() -> Self {
        Self::parse_digits(DIGITS_CSV).expect("the embedded dataset is valid")
    }

    /// Samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// No samples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            x: DMatrix::from_fn(idx.len(), self.x.ncols(), |r, c| self.x[(idx[r], c)]),
            y: idx.iter().map(|&i| self.y[i]).collect(),
        }
    }

    /// Seeded shuffle, then the last `test` samples form the test set.
    pub fn split(&self, test: usize, seed: u64) -> (Dataset, Dataset) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let cut = self.len().saturating_sub(test);
        (self.subset(&idx[..cut]), self.subset(&idx[cut..]))
    }
}

/// The network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// 64 → hidden → 10.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
    /// 3×3 conv → ReLU → 2×2 avg pool → 10.
    Cnn {
        /// Channels.
        channels: usize,
    },
}

impl Net {
    /// Layer shapes (outputs, inputs without bias, rows per sample).
    pub fn layers(&self) -> Vec<(usize, usize, usize)> {
        match *self {
            Net::Mlp { hidden } => vec![(hidden, 64, 1), (10, hidden, 1)],
            Net::Cnn { channels } => vec![(channels, 9, 36), (10, 9 * channels, 1)],
        }
    }

    /// Name, e.g. `mlp64-32-10`.
    pub fn name(&self) -> String {
        match *self {
            Net::Mlp { hidden } => format!("mlp64-{hidden}-10"),
            Net::Cnn { channels } => format!("cnn3x3x{channels}-pool-10"),
        }
    }
}

/// How K-FAC's factor inverses are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InverseKind {
    /// fp64 LU.
    Exact,
    /// The analog INV alone: one solve per column.
    Analog(InvConfig),
    /// The high-precision scheme.
    HighPrecision(HpConfig),
}

impl InverseKind {
    /// Short label.
    pub fn label(&self) -> &'static str {
        match self {
            InverseKind::Exact => "kfac-fp64",
            InverseKind::Analog(_) => "kfac-inv8",
            InverseKind::HighPrecision(_) => "kfac-hp",
        }
    }
}

/// The optimizer.
// K-FAC carries its whole solver design (a few hundred bytes); optimizers are built a handful
// of times per run, so the size difference is harmless and keeps the type `Copy`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// SGD with momentum.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum.
        momentum: f64,
    },
    /// Adam (β = 0.9, 0.999).
    Adam {
        /// Learning rate.
        lr: f64,
    },
    /// K-FAC.
    Kfac {
        /// Learning rate.
        lr: f64,
        /// Tikhonov damping γ.
        damping: f64,
        /// Steps between inverse recomputations.
        inv_every: usize,
        /// How inverses are computed.
        inverse: InverseKind,
    },
}

impl Optimizer {
    /// Label for tables and plots.
    pub fn label(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
            Optimizer::Kfac { inverse, .. } => inverse.label(),
        }
    }

    /// The defaults used by the study: SGD lr 0.1 momentum 0.9; Adam lr 0.003; K-FAC lr 0.05,
    /// damping 0.003, inverses every 10 steps.
    pub fn kfac(inverse: InverseKind) -> Self {
        Optimizer::Kfac {
            lr: 0.05,
            damping: 0.003,
            inv_every: 10,
            inverse,
        }
    }
}

/// One training run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Network.
    pub net: Net,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed (initialisation, shuffles, device randomness).
    pub seed: u64,
}

/// One epoch's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Test accuracy at the end of the epoch.
    pub test_acc: f64,
    /// Mean correct bits of the inverses computed during the epoch (NaN when none or SGD/Adam).
    pub inv_bits: f64,
    /// Smallest correct bits of any inverse column computed during the epoch.
    pub inv_bits_min: f64,
    /// Factor inversions the analog loop could not perform (unstable or singular programmed
    /// matrix); the previous inverse was kept.
    pub inv_failures: usize,
    /// Mean INV rounds per column (1 for the analog INV alone; NaN when none).
    pub inv_rounds: f64,
    /// Smallest eigenvalue over largest entry of any factor programmed (NaN when none).
    pub inv_lambda_min: f64,
}

struct Layer {
    w: DMatrix<f64>,
    mom: DMatrix<f64>,
    v: DMatrix<f64>,
    a_fac: DMatrix<f64>,
    g_fac: DMatrix<f64>,
    a_inv: DMatrix<f64>,
    g_inv: DMatrix<f64>,
}

fn with_bias(a: &DMatrix<f64>) -> DMatrix<f64> {
    let mut m = a.clone().insert_column(a.ncols(), 1.0);
    m.column_mut(a.ncols()).fill(1.0);
    m
}

fn relu(z: &DMatrix<f64>) -> DMatrix<f64> {
    z.map(|v| v.max(0.0))
}

/// im2col: 36 rows (6×6 valid positions) of 9 pixels per image.
fn patches(x: &DMatrix<f64>) -> DMatrix<f64> {
    let b = x.nrows();
    DMatrix::from_fn(b * 36, 9, |r, c| {
        let (s, p) = (r / 36, r % 36);
        let (py, px) = (p / 6, p % 6);
        let (dy, dx) = (c / 3, c % 3);
        x[(s, (py + dy) * 8 + px + dx)]
    })
}

/// Average pool 2×2 over each image's 6×6 × C map → B × 9C.
fn pool(h: &DMatrix<f64>, b: usize, ch: usize) -> DMatrix<f64> {
    DMatrix::from_fn(b, 9 * ch, |s, f| {
        let (c, q) = (f / 9, f % 9);
        let (qy, qx) = (q / 3, q % 3);
        let mut acc = 0.0;
        for dy in 0..2 {
            for dx in 0..2 {
                acc += h[(s * 36 + (2 * qy + dy) * 6 + 2 * qx + dx, c)];
            }
        }
        acc / 4.0
    })
}

fn unpool(d: &DMatrix<f64>, b: usize, ch: usize) -> DMatrix<f64> {
    DMatrix::from_fn(b * 36, ch, |r, c| {
        let (s, p) = (r / 36, r % 36);
        let (py, px) = (p / 6, p % 6);
        d[(s, c * 9 + (py / 2) * 3 + px / 2)] / 4.0
    })
}

fn softmax_rows(z: &DMatrix<f64>) -> DMatrix<f64> {
    let mut p = z.clone();
    for mut row in p.row_iter_mut() {
        let m = row.max();
        row.iter_mut().for_each(|v| *v = (*v - m).exp());
        let s = row.sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    p
}

/// Forward pass; returns (layer inputs with bias, pre-activations, probabilities).
fn forward(
    net: Net,
    layers: &[Layer],
    x: &DMatrix<f64>,
) -> (Vec<DMatrix<f64>>, Vec<DMatrix<f64>>, DMatrix<f64>) {
    let b = x.nrows();
    let a0 = match net {
        Net::Mlp { .. } => with_bias(x),
        Net::Cnn { .. } => with_bias(&patches(x)),
    };
    let z1 = &a0 * layers[0].w.transpose();
    let h1 = relu(&z1);
    let a1 = match net {
        Net::Mlp { .. } => with_bias(&h1),
        Net::Cnn { channels } => with_bias(&pool(&h1, b, channels)),
    };
    let z2 = &a1 * layers[1].w.transpose();
    let p = softmax_rows(&z2);
    (vec![a0, a1], vec![z1, z2], p)
}

fn loss_acc(p: &DMatrix<f64>, y: &[usize]) -> (f64, f64) {
    let mut loss = 0.0;
    let mut ok = 0usize;
    for (r, &t) in y.iter().enumerate() {
        loss -= p[(r, t)].max(1e-300).ln();
        let arg = (0..p.ncols())
            .max_by(|&a, &b| p[(r, a)].total_cmp(&p[(r, b)]))
            .unwrap_or(0);
        ok += usize::from(arg == t);
    }
    (loss / y.len() as f64, ok as f64 / y.len() as f64)
}

/// Test accuracy of the current weights.
fn evaluate(net: Net, layers: &[Layer], data: &Dataset) -> (f64, f64) {
    let (_, _, p) = forward(net, layers, &data.x);
    loss_acc(&p, &data.y)
}

/// One factor inversion's outcome.
struct Inverted {
    inv: DMatrix<f64>,
    bits_mean: f64,
    bits_min: f64,
    rounds: f64,
    lambda_min: f64,
}

/// Inverts `m` by `kind`, column by column for the analog kinds.
fn invert(
    m: &DMatrix<f64>,
    kind: &InverseKind,
    rng: &mut ChaCha8Rng,
) -> Result<Inverted, ReramError> {
    let n = m.nrows();
    let exact = m.clone().try_inverse().ok_or(ReramError::Singular)?;
    let unit = |j: usize| -> Vec<f64> { (0..n).map(|i| f64::from(u8::from(i == j))).collect() };
    let (cols, rounds, lambda_min): (Vec<Vec<f64>>, f64, f64) = match kind {
        InverseKind::Exact => {
            return Ok(Inverted {
                inv: exact,
                bits_mean: 52.0,
                bits_min: 52.0,
                rounds: 0.0,
                lambda_min: f64::NAN,
            })
        }
        InverseKind::Analog(cfg) => {
            let inv = InvArray::program(m, cfg, rng)?;
            let cols = (0..n).map(|j| inv.solve(&unit(j), rng)).collect();
            (cols, 1.0, inv.lambda_min_normalised())
        }
        InverseKind::HighPrecision(cfg) => {
            let s = HpSolver::program(m, cfg, rng)?;
            let mut total = 0usize;
            let cols = (0..n)
                .map(|j| {
                    let r = s.solve(&unit(j), rng);
                    total += r.iterates.len();
                    r.x
                })
                .collect();
            (
                cols,
                total as f64 / n as f64,
                s.inv().lambda_min_normalised(),
            )
        }
    };
    let mut out = DMatrix::zeros(n, n);
    let (mut sum, mut min) = (0.0, f64::INFINITY);
    for (j, c) in cols.iter().enumerate() {
        out.set_column(j, &DVector::from_column_slice(c));
        let bits = achieved_bits(c, exact.column(j).as_slice());
        sum += bits;
        min = min.min(bits);
    }
    Ok(Inverted {
        inv: out,
        bits_mean: sum / n as f64,
        bits_min: min,
        rounds,
        lambda_min,
    })
}

/// Trains and returns one record per epoch.
pub fn train(
    cfg: &TrainConfig,
    train: &Dataset,
    test: &Dataset,
) -> Result<Vec<EpochRecord>, ReramError> {
    if cfg.epochs == 0 || cfg.batch == 0 {
        return Err(ReramError::Param(
            "epochs and batch must be at least 1".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut dev_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut layers: Vec<Layer> = cfg
        .net
        .layers()
        .iter()
        .map(|&(out, inp, _)| {
            let sd = (2.0 / inp as f64).sqrt();
            let mut w = DMatrix::from_fn(out, inp + 1, |_, _| sd * super::xbar::gauss(&mut rng));
            w.column_mut(inp).fill(0.0);
            Layer {
                mom: DMatrix::zeros(out, inp + 1),
                v: DMatrix::zeros(out, inp + 1),
                a_fac: DMatrix::identity(inp + 1, inp + 1),
                g_fac: DMatrix::identity(out, out),
                a_inv: DMatrix::identity(inp + 1, inp + 1),
                g_inv: DMatrix::identity(out, out),
                w,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut step = 0usize;
    let mut records = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        order.shuffle(&mut rng);
        let (mut loss_sum, mut batches) = (0.0, 0usize);
        let (mut bits_sum, mut bits_n, mut bits_min) = (0.0, 0usize, f64::INFINITY);
        let mut failures = 0usize;
        let (mut rounds_sum, mut lam_min) = (0.0, f64::INFINITY);
        for chunk in order.chunks(cfg.batch) {
            let xb = DMatrix::from_fn(chunk.len(), 64, |r, c| train.x[(chunk[r], c)]);
            let yb: Vec<usize> = chunk.iter().map(|&i| train.y[i]).collect();
            let b = chunk.len();
            let (acts, pre, p) = forward(cfg.net, &layers, &xb);
            loss_sum += loss_acc(&p, &yb).0;
            batches += 1;
            // Backward (mean loss).
            let mut dz2 = p.clone();
            for (r, &t) in yb.iter().enumerate() {
                dz2[(r, t)] -= 1.0;
            }
            dz2 /= b as f64;
            let w2 = layers[1].w.columns(0, layers[1].w.ncols() - 1).into_owned();
            let da1 = &dz2 * &w2;
            let dh1 = match cfg.net {
                Net::Mlp { .. } => da1,
                Net::Cnn { channels } => unpool(&da1, b, channels),
            };
            let dz1 = dh1.zip_map(&pre[0], |d, z| if z > 0.0 { d } else { 0.0 });
            let grads = [dz1.transpose() * &acts[0], dz2.transpose() * &acts[1]];
            let dzs = [dz1, dz2];
            step += 1;
            match cfg.optimizer {
                Optimizer::Sgd { lr, momentum } => {
                    for (l, g) in layers.iter_mut().zip(&grads) {
                        l.mom = &l.mom * momentum + g;
                        l.w -= &l.mom * lr;
                    }
                }
                Optimizer::Adam { lr } => {
                    let (b1, b2) = (0.9f64, 0.999f64);
                    let t = step as i32;
                    for (l, g) in layers.iter_mut().zip(&grads) {
                        l.mom = &l.mom * b1 + g * (1.0 - b1);
                        l.v = &l.v * b2 + g.component_mul(g) * (1.0 - b2);
                        let mh = &l.mom / (1.0 - b1.powi(t));
                        let vh = &l.v / (1.0 - b2.powi(t));
                        l.w -= mh.zip_map(&vh, |m, v| lr * m / (v.sqrt() + 1e-8));
                    }
                }
                Optimizer::Kfac {
                    lr,
                    damping,
                    inv_every,
                    inverse,
                } => {
                    let decay = if step == 1 { 0.0 } else { 0.95 };
                    for (k, l) in layers.iter_mut().enumerate() {
                        let a = &acts[k];
                        let rows = a.nrows() as f64;
                        let g = &dzs[k] * rows;
                        let a_new = a.transpose() * a / rows;
                        let g_new = g.transpose() * &g / rows;
                        l.a_fac = &l.a_fac * decay + a_new * (1.0 - decay);
                        l.g_fac = &l.g_fac * decay + g_new * (1.0 - decay);
                    }
                    if (step - 1).is_multiple_of(inv_every.max(1)) {
                        for l in layers.iter_mut() {
                            let (na, ng) = (l.a_fac.nrows() as f64, l.g_fac.nrows() as f64);
                            let pi = ((l.a_fac.trace() / na) / (l.g_fac.trace() / ng).max(1e-300))
                                .sqrt()
                                .clamp(1e-6, 1e6);
                            let sd = damping.sqrt();
                            let a_d =
                                &l.a_fac + DMatrix::identity(na as usize, na as usize) * (pi * sd);
                            let g_d =
                                &l.g_fac + DMatrix::identity(ng as usize, ng as usize) * (sd / pi);
                            for (fac, dst) in [(a_d, &mut l.a_inv), (g_d, &mut l.g_inv)] {
                                match invert(&fac, &inverse, &mut dev_rng) {
                                    Ok(r) => {
                                        *dst = r.inv;
                                        if !matches!(inverse, InverseKind::Exact) {
                                            bits_sum += r.bits_mean;
                                            rounds_sum += r.rounds;
                                            bits_n += 1;
                                            bits_min = bits_min.min(r.bits_min);
                                            lam_min = lam_min.min(r.lambda_min);
                                        }
                                    }
                                    // The analog loop cannot solve this factor: the controller
                                    // keeps the previous inverse and counts the failure.
                                    Err(
                                        ReramError::Unstable { .. }
                                        | ReramError::Singular
                                        | ReramError::Eigen,
                                    ) if !matches!(inverse, InverseKind::Exact) => {
                                        failures += 1;
                                    }
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                    }
                    let nat: Vec<DMatrix<f64>> = layers
                        .iter()
                        .zip(&grads)
                        .map(|(l, g)| &l.g_inv * g * &l.a_inv)
                        .collect();
                    // KL clipping (as in common K-FAC implementations): scale the step so
                    // that lr² Σ <nat, grad> stays below 1e-3.
                    let vg: f64 = nat.iter().zip(&grads).map(|(n, g)| n.dot(g)).sum::<f64>();
                    let nu = if vg > 0.0 {
                        (1e-3 / (lr * lr * vg)).sqrt().min(1.0)
                    } else {
                        1.0
                    };
                    for (l, n) in layers.iter_mut().zip(&nat) {
                        l.mom = &l.mom * 0.9 + n * nu;
                        l.w -= &l.mom * lr;
                    }
                }
            }
        }
        if !(loss_sum.is_finite() && layers.iter().all(|l| l.w.iter().all(|v| v.is_finite()))) {
            return Err(ReramError::Param(format!(
                "training diverged in epoch {epoch} (non-finite loss or weights)"
            )));
        }
        let (_, acc) = evaluate(cfg.net, &layers, test);
        // Inverse statistics only where the epoch computed analog inverses.
        let stat = |v: f64| if bits_n > 0 { v } else { f64::NAN };
        records.push(EpochRecord {
            epoch,
            train_loss: loss_sum / batches as f64,
            test_acc: acc,
            inv_bits: stat(bits_sum / bits_n.max(1) as f64),
            inv_bits_min: stat(bits_min),
            inv_failures: failures,
            inv_rounds: stat(rounds_sum / bits_n.max(1) as f64),
            inv_lambda_min: stat(lam_min),
        });
    }
    Ok(records)
}

/// First epoch whose test accuracy reaches `target`, if any.
pub fn epochs_to(records: &[EpochRecord], target: f64) -> Option<usize> {
    records
        .iter()
        .find(|r| r.test_acc >= target)
        .map(|r| r.epoch)
}

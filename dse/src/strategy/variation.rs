//! Variation operators on genomes: bounded simulated binary crossover (SBX) and polynomial
//! mutation (Deb and Agrawal 1995; the bounded forms of the NSGA-II reference code, as pymoo
//! uses them), with integer genes rounded after variation and categorical genes recombined by
//! exchange and mutated by resampling.

use rand::Rng;

use crate::config::EvoSettings;
use crate::space::Space;

/// How a gene varies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gene {
    /// Continuous in `[lo, hi]`.
    Real(f64, f64),
    /// Integer index in `[lo, hi]`, varied as a real and rounded.
    Int(f64, f64),
    /// Unordered index in `0..n`.
    Cat(usize),
}

/// The genes of a space's free dimensions.
pub fn genes(space: &Space) -> Vec<Gene> {
    space
        .dims
        .iter()
        .map(|d| {
            let (lo, hi) = d.domain.gene_bounds();
            if d.domain.is_real() {
                Gene::Real(lo, hi)
            } else if d.domain.is_categorical() {
                Gene::Cat(d.domain.grid_len())
            } else {
                Gene::Int(lo, hi)
            }
        })
        .collect()
}

/// A uniformly random genome.
pub fn random_genome<R: Rng>(genes: &[Gene], rng: &mut R) -> Vec<f64> {
    genes
        .iter()
        .map(|g| match *g {
            Gene::Real(lo, hi) => lo + rng.random::<f64>() * (hi - lo),
            Gene::Int(lo, hi) => (lo + rng.random::<f64>() * (hi - lo + 1.0)).floor().min(hi),
            Gene::Cat(n) => rng.random_range(0..n) as f64,
        })
        .collect()
}

/// `x^e`, by repeated multiplication when `e` is a small integer (the usual distribution
/// indices, 15 and 20, give e = 16 and 21), which is several times cheaper than `powf`.
#[inline]
fn ipow(x: f64, e: f64) -> f64 {
    if e.fract() == 0.0 && e.abs() <= 64.0 {
        x.powi(e as i32)
    } else {
        x.powf(e)
    }
}

fn sbx_pair<R: Rng>(a: f64, b: f64, lo: f64, hi: f64, eta: f64, rng: &mut R) -> (f64, f64) {
    if (a - b).abs() <= 1e-14 || hi <= lo {
        return (a, b);
    }
    let (y1, y2) = if a < b { (a, b) } else { (b, a) };
    let u: f64 = rng.random();
    let betaq = |beta: f64| {
        let alpha = 2.0 - ipow(beta, -(eta + 1.0));
        if u <= 1.0 / alpha {
            (u * alpha).powf(1.0 / (eta + 1.0))
        } else {
            (1.0 / (2.0 - u * alpha)).powf(1.0 / (eta + 1.0))
        }
    };
    let c1 = 0.5 * ((y1 + y2) - betaq(1.0 + 2.0 * (y1 - lo) / (y2 - y1)) * (y2 - y1));
    let c2 = 0.5 * ((y1 + y2) + betaq(1.0 + 2.0 * (hi - y2) / (y2 - y1)) * (y2 - y1));
    let (c1, c2) = (c1.clamp(lo, hi), c2.clamp(lo, hi));
    if rng.random::<bool>() {
        (c2, c1)
    } else {
        (c1, c2)
    }
}

fn polynomial<R: Rng>(y: f64, lo: f64, hi: f64, eta: f64, rng: &mut R) -> f64 {
    if hi <= lo {
        return y;
    }
    let (d1, d2) = ((y - lo) / (hi - lo), (hi - y) / (hi - lo));
    let pow = 1.0 / (eta + 1.0);
    let u: f64 = rng.random();
    let dq = if u <= 0.5 {
        let v = 2.0 * u + (1.0 - 2.0 * u) * ipow(1.0 - d1, eta + 1.0);
        v.powf(pow) - 1.0
    } else {
        let v = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * ipow(1.0 - d2, eta + 1.0);
        1.0 - v.powf(pow)
    };
    (y + dq * (hi - lo)).clamp(lo, hi)
}

/// Two children of two parents: SBX with probability `crossover_prob` (each variable exchanged
/// with probability 1/2), then polynomial mutation of each variable with `mutation_prob`.
pub fn offspring<R: Rng>(
    p1: &[f64],
    p2: &[f64],
    genes: &[Gene],
    s: &EvoSettings,
    rng: &mut R,
) -> [Vec<f64>; 2] {
    let mut c1 = p1.to_vec();
    let mut c2 = p2.to_vec();
    if rng.random::<f64>() < s.crossover_prob {
        for (j, g) in genes.iter().enumerate() {
            if !rng.random::<bool>() {
                continue;
            }
            match *g {
                Gene::Real(lo, hi) | Gene::Int(lo, hi) => {
                    // Integers vary on a range widened by half a step either side so that the
                    // end values are as reachable as the inner ones after rounding.
                    let (lo, hi) = if matches!(g, Gene::Int(..)) {
                        (lo - 0.5 + 1e-9, hi + 0.5 - 1e-9)
                    } else {
                        (lo, hi)
                    };
                    let (a, b) = sbx_pair(c1[j], c2[j], lo, hi, s.crossover_eta, rng);
                    c1[j] = a;
                    c2[j] = b;
                }
                Gene::Cat(_) => std::mem::swap(&mut c1[j], &mut c2[j]),
            }
        }
    }
    for c in [&mut c1, &mut c2] {
        for (j, g) in genes.iter().enumerate() {
            if rng.random::<f64>() >= s.mutation_prob {
                continue;
            }
            match *g {
                Gene::Real(lo, hi) => c[j] = polynomial(c[j], lo, hi, s.mutation_eta, rng),
                Gene::Int(lo, hi) => {
                    c[j] = polynomial(c[j], lo - 0.5 + 1e-9, hi + 0.5 - 1e-9, s.mutation_eta, rng)
                }
                Gene::Cat(n) if n > 1 => {
                    let other = rng.random_range(0..n - 1) as f64;
                    c[j] = if other >= c[j] { other + 1.0 } else { other };
                }
                Gene::Cat(_) => {}
            }
        }
        for (j, g) in genes.iter().enumerate() {
            if let Gene::Int(lo, hi) = *g {
                c[j] = c[j].round().clamp(lo, hi);
            }
        }
    }
    [c1, c2]
}

//! The engine's integration tests (one test binary, several modules).

mod config;
mod expr;
mod hypervolume;
mod pareto;
mod quality;
mod runner;
mod sampling;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random points with ties and exact duplicates: coordinates drawn from a small grid.
pub fn random_points(seed: u64, n: usize, m: usize, levels: u32) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pts: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            (0..m)
                .map(|_| rng.random_range(0..levels) as f64 / levels as f64)
                .collect()
        })
        .collect();
    // A few exact duplicates.
    for _ in 0..n / 10 {
        let a = rng.random_range(0..n);
        let b = rng.random_range(0..n);
        pts[b] = pts[a].clone();
    }
    pts
}

/// Random points with continuous coordinates.
pub fn random_continuous(seed: u64, n: usize, m: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..m).map(|_| rng.random::<f64>()).collect())
        .collect()
}

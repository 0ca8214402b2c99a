//! Strategies: which points to evaluate. Samplers (grid, random, Latin hypercube, Sobol) fix
//! their whole plan up front, so any shard of it can be computed alone; evolutionary strategies
//! (NSGA-II, NSGA-III, SMS-EMOA) choose each generation from the results of the last.

pub mod evolve;
pub mod nsga2;
pub mod nsga3;
pub mod sampling;
pub mod smsemoa;
pub mod variation;

/// A small, fast, splittable generator (SplitMix64) for per-point random numbers, so that any
/// point of a sampling plan can be computed without the points before it.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E3779B97F4A7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` determined by (seed, point, dimension).
pub(crate) fn unit(seed: u64, point: u64, dim: u64) -> f64 {
    let h = splitmix(splitmix(splitmix(seed) ^ point) ^ dim.wrapping_mul(0xD1B54A32D192ED03));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

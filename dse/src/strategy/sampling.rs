//! Sampling plans: grid, uniform random, Latin hypercube, Owen-scrambled Sobol.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::unit;
use crate::config::Strategy;
use crate::model::Value;
use crate::space::Space;

/// Most dimensions the Sobol sampler supports.
pub const SOBOL_MAX_DIMS: usize = sobol_burley::NUM_DIMENSIONS as usize;
/// Most points the Sobol sampler supports (sobol_burley's limit of 2^16 samples).
pub const SOBOL_MAX_POINTS: usize = 1 << 16;

/// A deterministic list of points, addressable by index.
pub struct Plan<'a> {
    space: &'a Space,
    kind: Kind,
    len: usize,
    seed: u64,
}

enum Kind {
    Grid,
    Random,
    /// One random permutation of the strata per dimension.
    Lhs(Vec<Vec<u32>>),
    Sobol,
}

impl<'a> Plan<'a> {
    /// The plan of a sampling strategy; `None` for evolutionary strategies.
    pub fn new(space: &'a Space, strategy: &Strategy, seed: u64) -> Option<Plan<'a>> {
        let (kind, len) = match strategy {
            Strategy::Grid => (Kind::Grid, space.grid_len()),
            Strategy::Random { budget } => (Kind::Random, *budget),
            Strategy::Sobol { budget } => (Kind::Sobol, *budget),
            Strategy::Lhs { budget } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let perms = (0..space.dims.len())
                    .map(|_| {
                        let mut p: Vec<u32> = (0..*budget as u32).collect();
                        p.shuffle(&mut rng);
                        p
                    })
                    .collect();
                (Kind::Lhs(perms), *budget)
            }
            Strategy::Nsga2(_) | Strategy::Nsga3(_) | Strategy::SmsEmoa(_) => return None,
        };
        Some(Plan {
            space,
            kind,
            len,
            seed,
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the plan is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The unit-cube coordinates of point `k` (grid plans have none).
    pub fn unit_point(&self, k: usize) -> Vec<f64> {
        let d = self.space.dims.len();
        match &self.kind {
            Kind::Grid => Vec::new(),
            Kind::Random => (0..d)
                .map(|j| unit(self.seed, k as u64, j as u64))
                .collect(),
            Kind::Lhs(perms) => (0..d)
                .map(|j| {
                    (perms[j][k] as f64 + unit(self.seed, k as u64, j as u64)) / self.len as f64
                })
                .collect(),
            Kind::Sobol => {
                let scramble = (self.seed ^ (self.seed >> 32)) as u32;
                (0..d)
                    .map(|j| sobol_burley::sample(k as u32, j as u32, scramble) as f64)
                    .collect()
            }
        }
    }

    /// Point `k`.
    pub fn point(&self, k: usize) -> Vec<Value> {
        match self.kind {
            Kind::Grid => self.space.grid_point(k),
            _ => self.space.from_unit(&self.unit_point(k)),
        }
    }
}

//! The generational loop shared by NSGA-II and NSGA-III. It never stores optimizer state: a
//! resumed run replays the loop from the seed, and the evaluator serves every point already in
//! the journal from there, so the replay takes the same random choices and ends where an
//! uninterrupted run would.

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::variation::{genes, offspring, random_genome};
use super::{nsga2, nsga3, smsemoa};
use crate::config::{Strategy, Study};
use crate::model::Value;
use crate::space::point_hash;

/// What the loop learns about one evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// Plan index of the point's record (its first occurrence).
    pub index: u64,
    /// Objectives to minimise (failed points: `f64::MAX`).
    pub objectives: Vec<f64>,
    /// Total constraint violation (failed points: infinity).
    pub violation: f64,
}

/// The runner's side of the loop.
pub trait Evaluator {
    /// Error type.
    type Error;
    /// Evaluates (or looks up) the points of generation `gen`, each with its plan index and
    /// identity hash. `None` means the run was interrupted.
    fn evaluate(
        &mut self,
        gen: u32,
        points: Vec<(u64, String, Vec<Value>)>,
    ) -> Result<Option<Vec<Evaluated>>, Self::Error>;
    /// Records the population after generation `gen`.
    fn generation_done(&mut self, gen: u32, population: &[u64]) -> Result<(), Self::Error>;
}

/// Runs NSGA-II or NSGA-III to the end; `Ok(false)` when interrupted.
pub fn run<E: Evaluator>(study: &Study, ev: &mut E) -> Result<bool, E::Error> {
    let (settings, many) = match &study.strategy {
        Strategy::Nsga2(s) | Strategy::SmsEmoa(s) => (s, false),
        Strategy::Nsga3(s) => (s, true),
        _ => return Ok(true),
    };
    let info = study.model.info();
    let hash = |p: &[Value]| point_hash(&info.name, &info.version, &study.space.names, p);
    let n = settings.population;
    let gs = genes(&study.space);
    let mut rng = ChaCha8Rng::seed_from_u64(study.seed ^ 0x6e73_6761_5f65_766f);
    let refs = if many {
        nsga3::reference_directions(study.objectives.len(), settings.divisions)
    } else {
        Vec::new()
    };
    let mut state = nsga3::State::default();

    // Initial population: distinct random genomes where the space allows.
    let mut seen = HashSet::new();
    let mut genomes: Vec<Vec<f64>> = Vec::with_capacity(n);
    let mut tries = 0;
    while genomes.len() < n {
        let g = random_genome(&gs, &mut rng);
        tries += 1;
        if seen.insert(hash(&study.space.from_genes(&g))) || tries > 100 * n {
            genomes.push(g);
        }
    }
    let Some(mut pop) = eval(ev, study, 0, &genomes, &hash)? else {
        return Ok(false);
    };
    let mut pop_genomes = genomes;
    let mut sel = rank_population(&mut pop, &mut pop_genomes);
    ev.generation_done(0, &pop.iter().map(|e| e.index).collect::<Vec<_>>())?;

    for gen in 1..settings.generations as u32 {
        let cv = cvs(&pop);
        let mut seen: HashSet<String> = pop_genomes
            .iter()
            .map(|g| hash(&study.space.from_genes(g)))
            .collect();
        let mut kids: Vec<Vec<f64>> = Vec::with_capacity(n);
        let mut tries = 0;
        while kids.len() < n {
            let (a, b) = if many {
                (
                    nsga3::tournament(&cv, &mut rng),
                    nsga3::tournament(&cv, &mut rng),
                )
            } else {
                (
                    nsga2::tournament(&sel, &cv, &mut rng),
                    nsga2::tournament(&sel, &cv, &mut rng),
                )
            };
            for child in offspring(&pop_genomes[a], &pop_genomes[b], &gs, settings, &mut rng) {
                tries += 1;
                // Drop duplicates of the population and of each other (as pymoo does), unless
                // the space is too small to avoid them.
                if kids.len() < n
                    && (seen.insert(hash(&study.space.from_genes(&child))) || tries > 100 * n)
                {
                    kids.push(child);
                }
            }
        }
        let Some(evald) = eval(ev, study, gen, &kids, &hash)? else {
            return Ok(false);
        };
        let mut all = pop;
        all.extend(evald);
        let mut all_genomes = pop_genomes;
        all_genomes.extend(kids);
        let (o, c) = (objs(&all), cvs(&all));
        let chosen = match &study.strategy {
            Strategy::Nsga3(_) => nsga3::survive(&o, &c, n, &refs, &mut state, &mut rng),
            Strategy::SmsEmoa(_) => smsemoa::survive(&o, &c, n),
            _ => {
                let trunc = if settings.pruning {
                    nsga2::Truncation::Pruning
                } else {
                    nsga2::Truncation::Classic
                };
                nsga2::survive_with(&o, &c, n, trunc).chosen
            }
        };
        pop = chosen.iter().map(|&i| all[i].clone()).collect();
        pop_genomes = chosen.iter().map(|&i| all_genomes[i].clone()).collect();
        sel = rank_population(&mut pop, &mut pop_genomes);
        ev.generation_done(gen, &pop.iter().map(|e| e.index).collect::<Vec<_>>())?;
    }
    Ok(true)
}

fn eval<E: Evaluator>(
    ev: &mut E,
    study: &Study,
    gen: u32,
    genomes: &[Vec<f64>],
    hash: &dyn Fn(&[Value]) -> String,
) -> Result<Option<Vec<Evaluated>>, E::Error> {
    let n = match &study.strategy {
        Strategy::Nsga2(s) | Strategy::Nsga3(s) | Strategy::SmsEmoa(s) => s.population as u64,
        _ => genomes.len() as u64,
    };
    let points = genomes
        .iter()
        .enumerate()
        .map(|(j, g)| {
            let p = study.space.from_genes(g);
            (gen as u64 * n + j as u64, hash(&p), p)
        })
        .collect();
    ev.evaluate(gen, points)
}

/// Orders the population by rank and returns rank and crowding of each member (in the new
/// order), which the next generation's tournaments compare.
fn rank_population(pop: &mut Vec<Evaluated>, genomes: &mut Vec<Vec<f64>>) -> nsga2::Selection {
    let mut sel = nsga2::survive(&objs(pop), &cvs(pop), pop.len());
    *pop = sel.chosen.iter().map(|&i| pop[i].clone()).collect();
    *genomes = sel.chosen.iter().map(|&i| genomes[i].clone()).collect();
    sel.chosen = (0..pop.len()).collect();
    sel
}

fn objs(v: &[Evaluated]) -> Vec<Vec<f64>> {
    v.iter().map(|e| e.objectives.clone()).collect()
}

fn cvs(v: &[Evaluated]) -> Vec<f64> {
    v.iter().map(|e| e.violation).collect()
}

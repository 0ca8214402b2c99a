//! The generational loop shared by NSGA-II, NSGA-III and SMS-EMOA. It never stores optimizer
//! state: a resumed run replays the loop from the seed, and the evaluator serves every point
//! already in the journal from there, so the replay takes the same random choices and ends where
//! an uninterrupted run would.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::variation::{genes, offspring, random_genome};
use super::{nsga2, nsga3, smsemoa};
use crate::config::{Strategy, Study};
use crate::model::Value;
use crate::space::{IdSet, PointHasher, PointId};

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
    /// The point identities of the study's model.
    fn hasher(&self) -> &PointHasher;
    /// Evaluates (or looks up) the points of generation `gen`, each with its plan index and
    /// identity. `None` means the run was interrupted.
    fn evaluate(
        &mut self,
        gen: u32,
        points: Vec<(u64, PointId, Vec<Value>)>,
    ) -> Result<Option<Vec<Evaluated>>, Self::Error>;
    /// Records the population after generation `gen`.
    fn generation_done(&mut self, gen: u32, population: &[u64]) -> Result<(), Self::Error>;
}

/// A genome with its decoded point (handed to the evaluator, then empty) and identity,
/// computed once.
#[derive(Clone)]
struct Candidate {
    genome: Vec<f64>,
    point: Vec<Value>,
    id: PointId,
}

/// Runs the study's evolutionary strategy to the end; `Ok(false)` when interrupted.
pub fn run<E: Evaluator>(study: &Study, ev: &mut E) -> Result<bool, E::Error> {
    let settings = match &study.strategy {
        Strategy::Nsga2(s) | Strategy::Nsga3(s) | Strategy::SmsEmoa(s) => s,
        _ => return Ok(true),
    };
    let hasher = ev.hasher().clone();
    let make = |genome: Vec<f64>| {
        let point = study.space.from_genes(&genome);
        let id = hasher.id(&point);
        Candidate { genome, point, id }
    };
    let n = settings.population;
    let gs = genes(&study.space);
    let mut rng = ChaCha8Rng::seed_from_u64(study.seed ^ 0x6e73_6761_5f65_766f);
    let refs = match &study.strategy {
        Strategy::Nsga3(_) => {
            nsga3::reference_directions(study.objectives.len(), settings.divisions)
        }
        _ => Vec::new(),
    };
    let mut state = nsga3::State::default();

    // Initial population: distinct random genomes where the space allows.
    let mut seen = IdSet::default();
    let mut cands: Vec<Candidate> = Vec::with_capacity(n);
    let mut tries = 0;
    while cands.len() < n {
        let c = make(random_genome(&gs, &mut rng));
        tries += 1;
        if seen.insert(c.id) || tries > 100 * n {
            cands.push(c);
        }
    }
    let Some(evald) = eval(ev, 0, n, &mut cands)? else {
        return Ok(false);
    };
    let mut pop: Vec<(Candidate, Evaluated)> = cands.into_iter().zip(evald).collect();
    let mut sel = rank_population(&mut pop);
    ev.generation_done(0, &indices(&pop))?;

    for gen in 1..settings.generations as u32 {
        let cv: Vec<f64> = pop.iter().map(|(_, e)| e.violation).collect();
        let mut seen: IdSet = pop.iter().map(|(c, _)| c.id).collect();
        let mut kids: Vec<Candidate> = Vec::with_capacity(n);
        let mut tries = 0;
        while kids.len() < n {
            let (a, b) = match &study.strategy {
                Strategy::Nsga3(_) => (
                    nsga3::tournament(&cv, &mut rng),
                    nsga3::tournament(&cv, &mut rng),
                ),
                _ => (
                    nsga2::tournament(&sel, &cv, &mut rng),
                    nsga2::tournament(&sel, &cv, &mut rng),
                ),
            };
            for child in offspring(&pop[a].0.genome, &pop[b].0.genome, &gs, settings, &mut rng) {
                tries += 1;
                let c = make(child);
                // Drop duplicates of the population and of each other (as pymoo does), unless
                // the space is too small to avoid them.
                if kids.len() < n && (seen.insert(c.id) || tries > 100 * n) {
                    kids.push(c);
                }
            }
        }
        let Some(evald) = eval(ev, gen, n, &mut kids)? else {
            return Ok(false);
        };
        let mut all = pop;
        all.extend(kids.into_iter().zip(evald));
        let o: Vec<&[f64]> = all.iter().map(|(_, e)| e.objectives.as_slice()).collect();
        let c: Vec<f64> = all.iter().map(|(_, e)| e.violation).collect();
        let chosen = match &study.strategy {
            Strategy::Nsga3(_) => {
                let o: Vec<Vec<f64>> = o.iter().map(|x| x.to_vec()).collect();
                nsga3::survive(&o, &c, n, &refs, &mut state, &mut rng)
            }
            Strategy::SmsEmoa(_) => {
                smsemoa::survive(&o.iter().map(|x| x.to_vec()).collect::<Vec<_>>(), &c, n)
            }
            _ => {
                let trunc = if settings.pruning {
                    nsga2::Truncation::Pruning
                } else {
                    nsga2::Truncation::Classic
                };
                nsga2::survive_with(&o, &c, n, trunc).chosen
            }
        };
        let mut slots: Vec<Option<(Candidate, Evaluated)>> = all.into_iter().map(Some).collect();
        pop = chosen.iter().filter_map(|&i| slots[i].take()).collect();
        sel = rank_population(&mut pop);
        ev.generation_done(gen, &indices(&pop))?;
    }
    Ok(true)
}

fn indices(pop: &[(Candidate, Evaluated)]) -> Vec<u64> {
    pop.iter().map(|(_, e)| e.index).collect()
}

/// Evaluates the candidates, handing their points over (the loop needs only genomes and
/// identities afterwards).
fn eval<E: Evaluator>(
    ev: &mut E,
    gen: u32,
    n: usize,
    cands: &mut [Candidate],
) -> Result<Option<Vec<Evaluated>>, E::Error> {
    let points = cands
        .iter_mut()
        .enumerate()
        .map(|(j, c)| {
            (
                gen as u64 * n as u64 + j as u64,
                c.id,
                std::mem::take(&mut c.point),
            )
        })
        .collect();
    ev.evaluate(gen, points)
}

/// Orders the population by rank and returns rank and crowding of each member (in the new
/// order), which the next generation's tournaments compare.
fn rank_population(pop: &mut Vec<(Candidate, Evaluated)>) -> nsga2::Selection {
    let o: Vec<&[f64]> = pop.iter().map(|(_, e)| e.objectives.as_slice()).collect();
    let c: Vec<f64> = pop.iter().map(|(_, e)| e.violation).collect();
    let mut sel = nsga2::survive(&o, &c, pop.len());
    let mut slots: Vec<Option<(Candidate, Evaluated)>> =
        std::mem::take(pop).into_iter().map(Some).collect();
    *pop = sel.chosen.iter().filter_map(|&i| slots[i].take()).collect();
    sel.chosen = (0..pop.len()).collect();
    sel
}

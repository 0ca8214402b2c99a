//! How much of DTLZ2's true-front hypervolume can *any* 100 points reach?
//!
//! DTLZ2's Pareto-optimal points are exactly the unit sphere's positive octant, so the final
//! population of a 100-point search is at best the 100 points on that octant with the largest
//! hypervolume (reference point 1.1 per objective). This example searches for that set directly:
//! each point is two angles, and projected gradient ascent (Adam, central differences of the exact
//! 3-D hypervolume) moves all 100 together from several starts — random points, and the final
//! population of an `smsemoa` run. The best value found bounds, from below, what the optimum is;
//! starts that all converge to the same value show where a 100-point population saturates.
//!
//! `cargo run --release -p dse --example dtlz2_bound [-- POINTS]`

use std::f64::consts::FRAC_PI_2;

use dse::benchmarks::{Benchmark, Problem};
use dse::hypervolume::hypervolume;
use dse::runner::{run, RunOptions};
use dse::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// A point of the octant from its two angles.
fn point(a: f64, b: f64) -> [f64; 3] {
    [a.cos() * b.cos(), a.cos() * b.sin(), a.sin()]
}

/// The angles of a point of the octant (the inverse of `point`).
fn angles(p: &[f64]) -> (f64, f64) {
    let n = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
    let a = (p[2] / n).clamp(-1.0, 1.0).asin();
    let b = p[1].atan2(p[0]);
    (a.clamp(0.0, FRAC_PI_2), b.clamp(0.0, FRAC_PI_2))
}

fn hv(theta: &[f64], r: &[f64]) -> f64 {
    let pts: Vec<[f64; 3]> = theta.chunks(2).map(|t| point(t[0], t[1])).collect();
    hypervolume(&pts, r)
}

/// Projected Adam ascent of the hypervolume over the angles; returns the best value seen.
fn ascend(mut theta: Vec<f64>, r: &[f64], iters: usize) -> f64 {
    let n = theta.len();
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    let (b1, b2, h) = (0.9, 0.999, 1e-7);
    let mut best = hv(&theta, r);
    for t in 1..=iters {
        // Step size decays geometrically from 1e-2 to 1e-5 rad.
        let lr = 1e-2 * (1e-3f64).powf(t as f64 / iters as f64);
        let mut g = vec![0.0; n];
        for k in 0..n {
            let x = theta[k];
            theta[k] = (x + h).min(FRAC_PI_2);
            let up = hv(&theta, r);
            let hi = theta[k];
            theta[k] = (x - h).max(0.0);
            let down = hv(&theta, r);
            let lo = theta[k];
            theta[k] = x;
            g[k] = (up - down) / (hi - lo);
        }
        for k in 0..n {
            m[k] = b1 * m[k] + (1.0 - b1) * g[k];
            v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
            let mh = m[k] / (1.0 - b1.powi(t as i32));
            let vh = v[k] / (1.0 - b2.powi(t as i32));
            theta[k] = (theta[k] + lr * mh / (vh.sqrt() + 1e-12)).clamp(0.0, FRAC_PI_2);
        }
        best = best.max(hv(&theta, r));
    }
    best
}

/// The final population of one `smsemoa` run on `configs/dtlz2.toml` with the given size.
fn smsemoa_population(size: usize) -> Vec<Vec<f64>> {
    let reg = dse::benchmark_registry();
    let path = format!("{}/../configs/dtlz2.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("configs/dtlz2.toml");
    let text = text.replace("population = 100", &format!("population = {size}"));
    let study = dse::config::parse(&text, &path, &reg).expect("study");
    let dir = std::env::temp_dir().join(format!("archsweep-dtlz2-bound-{}", std::process::id()));
    let mut o = RunOptions::new(&dir);
    o.write_outputs = false;
    run(&study, &o).expect("run");
    let j = dse::journal::read(&dir.join("journal.jsonl")).expect("journal");
    let last = j.gens.iter().max_by_key(|g| g.g).expect("generations");
    let pop = last
        .pop
        .iter()
        .map(|i| {
            j.points
                .iter()
                .find(|p| p.i == *i)
                .and_then(|p| p.m.clone())
                .expect("evaluated")
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    pop
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("POINTS must be a positive integer"))
        .unwrap_or(100);
    let b = Benchmark::new(Problem::Dtlz2);
    let r = vec![1.1; b.info().metrics.len()];
    let truth = b.true_front_hypervolume(&r);
    let iters = 3000;

    let sms = smsemoa_population(size);
    let sms_hv = hypervolume(&sms, &r);
    let mut starts: Vec<(String, Vec<f64>)> = vec![(
        "smsemoa final population".into(),
        sms.iter()
            .flat_map(|p| {
                let (a, b) = angles(p);
                [a, b]
            })
            .collect(),
    )];
    for seed in 1..=4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let theta = (0..2 * size)
            .map(|_| rng.random_range(0.0..FRAC_PI_2))
            .collect();
        starts.push((format!("random, seed {seed}"), theta));
    }
    let results: Vec<(String, f64, f64)> = starts
        .into_par_iter()
        .map(|(name, theta)| {
            let start = hv(&theta, &r);
            (name, start, ascend(theta, &r, iters))
        })
        .collect();
    println!(
        "DTLZ2, {size} points, reference 1.1: true front hypervolume {truth:.6}; \
         smsemoa's final population {:.2}%\n",
        100.0 * sms_hv / truth
    );
    println!("| start | start, % | after {iters} ascent steps, % |");
    println!("|---|---|---|");
    for (name, s, e) in &results {
        println!(
            "| {name} | {:.2} | {:.2} |",
            100.0 * s / truth,
            100.0 * e / truth
        );
    }
}

//! Search quality against the published pymoo 0.6.2 NSGA-II figures (population 100, 250
//! generations, reference point 1.1 per objective), on the final population as pymoo measures.

use std::collections::HashMap;

use dse::benchmarks::{Benchmark, Problem};
use dse::hypervolume::hypervolume;
use dse::runner::{run, RunOptions};

/// Final population and all evaluated points of a benchmark config run with `seed`.
fn final_population(
    config: &str,
    seed: u64,
    replace: (&str, &str),
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(format!("../configs/{config}.toml"))
        .unwrap()
        .replace("seed = 1", &format!("seed = {seed}"))
        .replace(replace.0, replace.1);
    let study = dse::config::parse(&text, config, &dse::benchmark_registry()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = RunOptions::new(dir.path());
    o.write_outputs = false;
    run(&study, &o).unwrap();
    let j = dse::journal::read(&dir.path().join("journal.jsonl")).unwrap();
    let last = j.gens.iter().max_by_key(|g| g.g).unwrap();
    let by: HashMap<u64, &Vec<f64>> = j
        .points
        .iter()
        .map(|p| (p.i, p.m.as_ref().unwrap()))
        .collect();
    (
        last.pop.iter().map(|i| by[i].clone()).collect(),
        j.points.iter().map(|p| p.m.clone().unwrap()).collect(),
    )
}

const SEEDS: [u64; 3] = [1, 2, 3];

fn check(config: &str, problem: Problem, pymoo: f64) {
    let r = [1.1, 1.1];
    let truth = Benchmark::new(problem).true_front_hypervolume(&r);
    for seed in SEEDS {
        let (pop, _) = final_population(config, seed, ("", ""));
        let ratio = hypervolume(&pop, &r) / truth;
        assert!(ratio >= pymoo, "{config} seed {seed}: {ratio:.4} of the true front's hypervolume, pymoo reaches {pymoo}");
    }
}

#[test]
fn nsga2_matches_pymoo_on_zdt1() {
    check("zdt1", Problem::Zdt1, 0.992);
}

#[test]
fn nsga2_matches_pymoo_on_zdt2() {
    check("zdt2", Problem::Zdt2, 0.987);
}

/// pymoo's 99.9% on ZDT3 is relative to its own sampled "true front" (20 points on each of the
/// five segments, hypervolume 1.3291); against the continuous front (1.3318, the denominator
/// used for ZDT1 and ZDT2) a 100-point population cannot reach 99.9%. Both are computed here.
#[test]
fn nsga2_matches_pymoo_on_zdt3() {
    let r = [1.1, 1.1];
    let b = Benchmark::new(Problem::Zdt3);
    let continuous = b.true_front_hypervolume(&r);
    let regions = [
        [0.0, 0.0830015349],
        [0.182228780, 0.2577623634],
        [0.4093136748, 0.4538821041],
        [0.6183967944, 0.6525117038],
        [0.8233317983, 0.8518328654],
    ];
    let sampled: Vec<Vec<f64>> = regions
        .iter()
        .flat_map(|[a, z]| (0..20).map(move |k| a + (z - a) * k as f64 / 19.0))
        .map(|x1| {
            let mut x = vec![0.0; 30];
            x[0] = x1;
            b.objectives(&x)
        })
        .collect();
    let pymoo_front = hypervolume(&sampled, &r);
    assert!(pymoo_front < continuous);
    for seed in SEEDS {
        let (pop, _) = final_population("zdt3", seed, ("", ""));
        let hv = hypervolume(&pop, &r);
        assert!(
            hv / pymoo_front >= 0.999,
            "seed {seed}: {:.4} of the sampled front",
            hv / pymoo_front
        );
        assert!(
            hv / continuous >= 0.996,
            "seed {seed}: {:.4} of the continuous front",
            hv / continuous
        );
    }
}

/// DTLZ2: the many-objective strategy beats pymoo's NSGA-II (88.1%) by a wide margin on the
/// final population; the front archsweep reports (every evaluated point) passes 95%. A
/// 100-member population saturates near 93.7% (500 generations give the same). No 100 points
/// reach 95%: gradient ascent of the hypervolume over 100 points on the front converges to
/// 93.8-93.9% from every start tried (`examples/dtlz2_bound.rs`, `results/dtlz2_bound.md`).
#[test]
fn many_objective_strategies_on_dtlz2() {
    let r = [1.1, 1.1, 1.1];
    let truth = Benchmark::new(Problem::Dtlz2).true_front_hypervolume(&r);
    for seed in SEEDS {
        let (pop, all) = final_population("dtlz2", seed, ("", ""));
        let (p, a) = (hypervolume(&pop, &r) / truth, hypervolume(&all, &r) / truth);
        assert!(p >= 0.93, "smsemoa seed {seed}: population {p:.4}");
        assert!(a >= 0.95, "smsemoa seed {seed}: reported front {a:.4}");
    }
    let (pop, _) = final_population("dtlz2", 1, ("kind = \"smsemoa\"", "kind = \"nsga3\""));
    let p = hypervolume(&pop, &r) / truth;
    assert!(p >= 0.915, "nsga3: population {p:.4}");
}

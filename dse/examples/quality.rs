//! Prints the search-quality table of the README: hypervolume of the final population (and of
//! every evaluated point) relative to the true front, per benchmark config, strategy and seed.
//!
//! `cargo run --release -p dse --example quality`

use std::collections::HashMap;
use std::time::Instant;

use dse::benchmarks::{Benchmark, Problem};
use dse::hypervolume::hypervolume;
use dse::runner::{run, RunOptions};
use dse::Model;

fn main() {
    let reg = dse::benchmark_registry();
    let cases = [
        ("zdt1", Problem::Zdt1, "nsga2", 0.992),
        ("zdt2", Problem::Zdt2, "nsga2", 0.987),
        ("zdt3", Problem::Zdt3, "nsga2", 0.999),
        ("dtlz2", Problem::Dtlz2, "nsga2", 0.881),
        ("dtlz2", Problem::Dtlz2, "nsga3", 0.881),
        ("dtlz2", Problem::Dtlz2, "smsemoa", 0.881),
    ];
    println!("| problem | strategy | final population, % of true front (seeds 1-5) | all evaluated points, % | pymoo NSGA-II | seconds per run |");
    println!("|---|---|---|---|---|---|");
    for (cfg, problem, kind, pymoo) in cases {
        let b = Benchmark::new(problem);
        let m = b.info().metrics.len();
        let r = vec![1.1; m];
        let truth = b.true_front_hypervolume(&r);
        let mut pops = Vec::new();
        let mut alls = Vec::new();
        let mut secs = 0.0;
        for seed in 1..=5u64 {
            let path = format!("{}/../configs/{cfg}.toml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path)
                .expect("config")
                .replace("seed = 1", &format!("seed = {seed}"));
            let text = text
                .replace("kind = \"nsga2\"", &format!("kind = \"{kind}\""))
                .replace("kind = \"smsemoa\"", &format!("kind = \"{kind}\""));
            let study = dse::config::parse(&text, &path, &reg).expect("study");
            let dir = std::env::temp_dir().join(format!(
                "archsweep-quality-{}-{cfg}-{kind}-{seed}",
                std::process::id()
            ));
            let mut o = RunOptions::new(&dir);
            o.write_outputs = false;
            let t = Instant::now();
            run(&study, &o).expect("run");
            secs += t.elapsed().as_secs_f64();
            let j = dse::journal::read(&dir.join("journal.jsonl")).expect("journal");
            let last = j.gens.iter().max_by_key(|g| g.g).expect("generations");
            let by: HashMap<u64, &Vec<f64>> = j
                .points
                .iter()
                .filter_map(|p| p.m.as_ref().map(|m| (p.i, m)))
                .collect();
            let pop: Vec<&Vec<f64>> = last.pop.iter().map(|i| by[i]).collect();
            let all: Vec<&Vec<f64>> = by.values().copied().collect();
            pops.push(100.0 * hypervolume(&pop, &r) / truth);
            alls.push(100.0 * hypervolume(&all, &r) / truth);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let f = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "| {cfg} | {kind} | {} | {} | {:.1} | {:.2} |",
            f(&pops),
            f(&alls),
            pymoo * 100.0,
            secs / 5.0
        );
    }
}

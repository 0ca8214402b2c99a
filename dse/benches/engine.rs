//! Engine benchmarks (criterion): non-dominated sorting, exact hypervolume, a 1M-point sweep
//! end to end, and a full NSGA-II run on ZDT1 with its journal. `cargo bench -p dse`.

use std::f64::consts::PI;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dse::hypervolume::hypervolume;
use dse::pareto::ranks;
use dse::runner::{run, RunOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, m: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..n)
        .map(|_| (0..m).map(|_| rng.random::<f64>()).collect())
        .collect()
}

/// `n` mutually non-dominated points: on the unit circle (2-D) or sphere octant (3-D).
fn front(n: usize, m: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    (0..n)
        .map(|_| {
            let a = rng.random::<f64>() * PI / 2.0;
            if m == 2 {
                vec![a.cos(), a.sin()]
            } else {
                let b = rng.random::<f64>() * PI / 2.0;
                vec![a.cos() * b.cos(), a.cos() * b.sin(), a.sin()]
            }
        })
        .collect()
}

fn sorting(c: &mut Criterion) {
    let mut g = c.benchmark_group("nondominated_sort_100k");
    for m in [2, 3] {
        let pts = random(100_000, m);
        g.bench_function(format!("{m}d"), |b| b.iter(|| ranks(&pts)));
    }
    g.finish();
}

fn hv(c: &mut Criterion) {
    let mut g = c.benchmark_group("hypervolume_10k_front");
    for m in [2, 3] {
        let pts = front(10_000, m);
        let r = vec![1.1; m];
        g.bench_function(format!("{m}d"), |b| b.iter(|| hypervolume(&pts, &r)));
    }
    g.finish();
}

fn study(text: &str) -> dse::Study {
    dse::config::parse(text, "bench.toml", &dse::benchmark_registry()).expect("bench config")
}

fn sweeps(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep");
    g.sample_size(10).measurement_time(Duration::from_secs(40));
    let million = study("name = \"m\"\nmodel = \"trivial\"\n[strategy]\nkind = \"random\"\nbudget = 1000000\n[objectives]\nminimize = [\"a\", \"b\"]\n");
    g.bench_function("random_1M_trivial_with_tables_and_report", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                (
                    run(&million, &RunOptions::new(dir.path())).expect("sweep"),
                    dir,
                )
            },
            BatchSize::PerIteration,
        )
    });
    let zdt1 = study(include_str!("../../configs/zdt1.toml"));
    g.bench_function("nsga2_zdt1_25k_evals_with_journal", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            // The directory is returned so that deleting it falls outside the timing.
            |dir| {
                let mut o = RunOptions::new(dir.path());
                o.write_outputs = false;
                (run(&zdt1, &o).expect("sweep"), dir)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("nsga2_zdt1_25k_evals_with_tables_and_report", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                (
                    run(&zdt1, &RunOptions::new(dir.path())).expect("sweep"),
                    dir,
                )
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, sorting, hv, sweeps);
criterion_main!(benches);

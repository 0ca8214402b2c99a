//! ReRAM simulator benchmarks: a noisy 256x256 high-precision solve (8-bit INV + 24-bit residual
//! VMM, refinement to 20 bits), one ISAAC 128x128 bit-sliced VMM, and one `reram.inv` design
//! point (the unit of a sweep; the 10,000-point sweep is timed by `scripts/reram_sweep_time.sh`).

use criterion::{criterion_group, criterion_main, Criterion};
use dse::model::{EvalContext, Model};
use models::reram::ReramInv;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::reram::inv::{spd_with_condition, HpConfig, HpSolver};
use sim::reram::tech::Technology;
use sim::reram::xbar::{gauss, Crossbar, Device, VmmConfig};

fn solve_256(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let a = spd_with_condition(256, 10.0, &mut rng);
    let mut cfg = HpConfig::default_refine();
    let dev = Device::noisy(0.002, 0.001);
    cfg.inv.device = dev;
    cfg.vmm.device = dev;
    cfg.inv.size = 256;
    let s = HpSolver::program(&a, &cfg, &mut rng).expect("stable");
    let b: Vec<f64> = (0..256).map(|_| gauss(&mut rng)).collect();
    let mut g = c.benchmark_group("reram");
    g.sample_size(20);
    g.bench_function("hp_solve_256_noisy", |bench| {
        bench.iter(|| s.solve(&b, &mut rng))
    });
    g.bench_function("hp_program_256_noisy", |bench| {
        bench.iter(|| HpSolver::program(&a, &cfg, &mut rng).expect("stable"))
    });
    let w = nalgebra::DMatrix::from_fn(128, 128, |_, _| gauss(&mut rng));
    let x: Vec<f64> = (0..128).map(|_| gauss(&mut rng)).collect();
    let xb = Crossbar::program(
        &w,
        &VmmConfig {
            device: dev,
            ..VmmConfig::isaac()
        },
        &mut rng,
    )
    .expect("valid");
    g.bench_function("vmm_isaac_128x128", |bench| {
        bench.iter(|| xb.vmm(&x, &mut rng))
    });
    let m = ReramInv::new(Technology::isaac32());
    let p = m.info().point_with(&[]).expect("defaults");
    let ctx = EvalContext { seed: 1 };
    g.bench_function("reram_inv_point_default", |bench| {
        bench.iter(|| m.evaluate(&p, &ctx).expect("evaluates"))
    });
    // 1,000 distinct design points on every core (the work of a tenth of the 10,000-point
    // sweep, without its journal and report).
    let points: Vec<_> = (0..1000)
        .map(|i| {
            m.info()
                .point_with(&[
                    format!("level_bits={}", 4 + i % 7),
                    format!("inv_adc_bits={}", 4 + (i / 7) % 9),
                    format!("iterations={}", 1 + (i / 63) % 12),
                    format!("vmm_adc_bits={}", 6 + i % 9),
                    format!("vmm_cell_bits={}", 1 + (i / 3) % 4),
                ])
                .expect("in the domain")
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    g.sample_size(10);
    g.bench_function("reram_inv_1000_points_all_cores", |bench| {
        bench.iter(|| {
            std::thread::scope(|sc| {
                for chunk in points.chunks(points.len().div_ceil(threads)) {
                    let m = &m;
                    sc.spawn(move || chunk.iter().filter(|p| m.evaluate(p, &ctx).is_ok()).count());
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, solve_256);
criterion_main!(benches);

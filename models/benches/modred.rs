//! Modular-reduction benchmarks: design-point evaluation rate of the model (128 and 8192 bits),
//! and functional reduction rate at 1024 and 8192 bits next to num-bigint's `%` on the same
//! inputs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dse::model::{EvalContext, Model, Value};
use models::modred::ModredModel;
use num_bigint::BigUint;
use rand::SeedableRng;
use sim::modred::{Arch, DesignSpec, Modulus, Reducer};

fn point(model: &ModredModel, bits: &str, arch: &str, cycles: i64) -> Vec<Value> {
    let info = model.info();
    info.params
        .iter()
        .map(|p| match p.name.as_str() {
            "bits" => Value::Cat(bits.into()),
            "arch" => Value::Cat(arch.into()),
            "cycles" => Value::Int(cycles),
            "lut_share" => Value::Real(0.2),
            _ => p.default.clone(),
        })
        .collect()
}

fn evaluation(c: &mut Criterion) {
    let model = ModredModel::lut();
    let ctx = EvalContext { seed: 1 };
    let mut g = c.benchmark_group("modred_model_eval");
    g.throughput(Throughput::Elements(1));
    for bits in ["128", "8192"] {
        for arch in ["lut", "hybrid"] {
            let p = point(&model, bits, arch, 16);
            g.bench_function(BenchmarkId::new(arch, bits), |b| {
                b.iter(|| model.evaluate(&p, &ctx).expect("evaluates"))
            });
        }
    }
    g.finish();
}

fn inputs(bits: u64, count: usize) -> Vec<BigUint> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(bits);
    (0..count)
        .map(|_| sim::modred::random_bits(&mut rng, bits))
        .collect()
}

fn reduction(c: &mut Criterion) {
    let mut g = c.benchmark_group("modred_reduce");
    for bits in [1024u64, 8192] {
        let m = Modulus::preset("random", bits).expect("preset");
        let xs = inputs(2 * bits, 256);
        g.throughput(Throughput::Elements(xs.len() as u64));
        g.bench_function(BenchmarkId::new("num_bigint_rem", bits), |b| {
            b.iter(|| {
                xs.iter()
                    .map(|x| x % m.value())
                    .fold(0u64, |a, r| a ^ r.bits())
            })
        });
        let designs = [
            ("lut_k6", DesignSpec::lut(2 * bits, 6)),
            ("lut_k8", DesignSpec::lut(2 * bits, 8)),
            (
                "barrett",
                DesignSpec::lut(2 * bits, 6).with_arch(Arch::Barrett),
            ),
            (
                "montgomery",
                DesignSpec::lut(2 * bits, 6).with_arch(Arch::Montgomery),
            ),
        ];
        for (name, d) in designs {
            let r = Reducer::new(&m, &d).expect("builds");
            g.bench_function(BenchmarkId::new(name, bits), |b| {
                b.iter(|| {
                    xs.iter()
                        .map(|x| r.hardware_output(x).expect("in range"))
                        .fold(0u64, |a, r| a ^ r.bits())
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = evaluation, reduction
}
criterion_main!(benches);

//! Sequence-parallel attention simulator benchmarks: one 64-device, 128K-token schedule (plan +
//! event-driven simulation with link contention) per schedule and topology, with the calibrated
//! kernel model's block times already cached (as in a sweep after its first point), and a full
//! `ring.attention` design-point evaluation.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dse::model::{EvalContext, Model};
use models::ring::study::{DEFAULT_HOP_US, DEFAULT_MSG_US};
use models::ring::{CalibratedCompute, RingAttention};
use sim::ring::{simulate, AttnShape, Cluster, Plan, Schedule, Topology};

fn simulate_64(c: &mut Criterion) {
    let compute = CalibratedCompute::new(Arc::new(models::attention::latency::committed()), 1.0);
    let shape = AttnShape {
        tokens: 131072,
        heads: 32,
        kv_heads: 8,
        head_dim: 128,
        causal: true,
        elem_bytes: 2,
    };
    let mut g = c.benchmark_group("ring_simulate_64dev_128k");
    g.sample_size(20);
    for (topology, name) in [
        (Topology::NvSwitch, "nvswitch"),
        (
            Topology::PcieTree {
                per_switch: 4,
                root_factor: 1.0,
            },
            "pcie",
        ),
        (Topology::Torus2d { rows: 8 }, "torus"),
    ] {
        let cluster = Cluster {
            topology,
            link_gbs: 450.0,
            hop_latency_us: DEFAULT_HOP_US,
            msg_overhead_us: DEFAULT_MSG_US,
            overlap: 1.0,
        };
        for schedule in Schedule::ALL {
            // Warm the block-time cache.
            let plan = Plan::new(schedule, shape, 64).expect("plans");
            simulate(&plan, &cluster, &compute).expect("simulates");
            g.bench_function(BenchmarkId::new(schedule.name(), name), |b| {
                b.iter(|| {
                    let plan = Plan::new(schedule, shape, 64).expect("plans");
                    simulate(&plan, &cluster, &compute).expect("simulates")
                })
            });
        }
    }
    g.finish();
}

fn model_point(c: &mut Criterion) {
    let model = RingAttention::new();
    let ctx = EvalContext { seed: 1 };
    let p = model
        .info()
        .point_with(&["devices=64".into(), "tokens_per_device=2048".into()])
        .expect("valid point");
    model.evaluate(&p, &ctx).expect("evaluates");
    c.bench_function("ring_attention_eval_64dev_128k", |b| {
        b.iter(|| model.evaluate(&p, &ctx).expect("evaluates"))
    });
}

criterion_group!(benches, simulate_64, model_point);
criterion_main!(benches);

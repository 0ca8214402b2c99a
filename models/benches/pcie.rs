//! PCIe simulator and validator throughput: simulated TLPs per second (one core) for DMA reads
//! and writes and the NIC workload, and validated rows per second on a simulated trace.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sim::pcie::engine::{simulate, trace_meta, DmaOp, SimConfig, Workload};
use sim::pcie::tlp::Tlp;
use sim::pcie::validate::Validator;

fn workloads() -> Vec<(&'static str, SimConfig, Workload)> {
    let mut cfg = SimConfig::gen3x8();
    cfg.tag_bits = 10;
    vec![
        (
            "read_64B",
            cfg.clone(),
            Workload::dma(DmaOp::Read, 64, 200_000, 64),
        ),
        (
            "write_64B",
            cfg.clone(),
            Workload::dma(DmaOp::Write, 64, 400_000, 64),
        ),
        (
            "readwrite_2KB",
            cfg.clone(),
            Workload::dma(DmaOp::ReadWrite, 2048, 20_000, 64),
        ),
        (
            "nic_imix",
            cfg,
            Workload::Nic {
                packets: 40_000,
                sizes: Workload::imix(),
                gap_ns: 0.0,
                ring: 64,
            },
        ),
    ]
}

fn simulator(c: &mut Criterion) {
    let mut g = c.benchmark_group("pcie_simulate");
    g.sample_size(10);
    for (name, cfg, work) in workloads() {
        let tlps = simulate(&cfg, &work, None).expect("valid workload").tlps;
        g.throughput(Throughput::Elements(tlps));
        g.bench_with_input(
            BenchmarkId::from_parameter(name),
            &(cfg, work),
            |b, (cfg, work)| b.iter(|| simulate(cfg, work, None).expect("valid workload").tlps),
        );
    }
    g.finish();
}

fn validator(c: &mut Criterion) {
    let cfg = SimConfig::gen3x8();
    let work = Workload::Nic {
        packets: 100_000,
        sizes: Workload::imix(),
        gap_ns: 0.0,
        ring: 64,
    };
    let mut rows: Vec<Tlp> = Vec::new();
    simulate(&cfg, &work, Some(&mut rows)).expect("valid workload");
    let meta = trace_meta(&cfg, &work);
    let mut g = c.benchmark_group("pcie_validate");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("nic_trace", |b| {
        b.iter(|| {
            let mut v = Validator::new(&meta, 10);
            for (i, t) in rows.iter().enumerate() {
                v.check(i + 6, t);
            }
            v.finish().total()
        })
    });
    g.finish();
}

criterion_group!(benches, simulator, validator);
criterion_main!(benches);

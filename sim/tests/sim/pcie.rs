//! PCIe: the pcie-bench equations and the simulator against them and against analytic times;
//! flow control, tags, errors, IOMMU and switches; traces validated, mutated and generated.

use sim::pcie::engine::{
    simulate, trace_meta, Billing, DmaOp, SimConfig, Stats, SwitchConfig, Workload,
};
use sim::pcie::generate::{fidelity, generate, TraceModel};
use sim::pcie::link::{bench, Gen, LinkConfig, SKP_OVERHEAD};
use sim::pcie::tlp::{split_completions, split_requests, Dir, Kind, Tlp, ATTR_RO};
use sim::pcie::trace::{read_all, to_csv, TraceMeta};
use sim::pcie::validate::{validate, Report, Rule};
use sim::pcie::PcieError;

fn numbered(rows: &[Tlp]) -> Vec<(usize, Tlp)> {
    rows.iter().enumerate().map(|(i, t)| (i + 2, *t)).collect()
}

fn run(cfg: &SimConfig, work: &Workload) -> Stats {
    simulate(cfg, work, None).unwrap()
}

fn traced(cfg: &SimConfig, work: &Workload) -> (TraceMeta, Vec<Tlp>) {
    let mut rows: Vec<Tlp> = Vec::new();
    simulate(cfg, work, Some(&mut rows)).unwrap();
    (trace_meta(cfg, work), rows)
}

fn check(meta: &TraceMeta, rows: &[Tlp]) -> Report {
    validate(meta, &numbered(rows), 20)
}

fn nic(packets: u64) -> Workload {
    Workload::Nic {
        packets,
        sizes: Workload::imix(),
        gap_ns: 300.0,
        ring: 16,
    }
}

#[test]
fn ack_and_update_fc_limits_follow_the_specification() {
    let mut c = LinkConfig::gen3x8();
    for (mps, want) in [(128, 163), (256, 203), (512, 182), (1024, 246), (4096, 630)] {
        c.mps = mps;
        assert_eq!(c.ack_limit_symbols(), want, "Gen3 x8 MPS {mps}");
    }
    // Other widths and generations (the specification's tables).
    for (gen, lanes, mps, want) in [
        (Gen::Gen1, 1, 128, 237),
        (Gen::Gen1, 16, 128, 48),
        (Gen::Gen2, 4, 512, 205),
        (Gen::Gen3, 32, 4096, 372),
        (Gen::Gen3, 2, 256, 313),
    ] {
        let c = LinkConfig {
            gen,
            lanes,
            mps,
            ..LinkConfig::gen3x8()
        };
        assert_eq!(c.ack_limit_symbols(), want, "{gen:?} x{lanes} MPS {mps}");
    }
}

#[test]
fn the_bench_model_reproduces_pcie_bench() {
    let c = LinkConfig::gen3x8();
    let close = |a: f64, b: f64| (a - b).abs() < 0.005;
    assert!(close(c.raw_gbps(), 63.015), "{}", c.raw_gbps());
    assert!(close(bench::tlp_gbps(&c), 57.88), "{}", bench::tlp_gbps(&c));
    assert!(
        close(bench::write_gbps(&c, 2048), 52.92),
        "{}",
        bench::write_gbps(&c, 2048)
    );
    assert!(
        close(bench::read_gbps(&c, 2048), 53.69),
        "{}",
        bench::read_gbps(&c, 2048)
    );
    // Small reads are limited by the completion headers, not the requests.
    assert!(bench::read_gbps(&c, 64) < bench::read_gbps(&c, 2048));
}

/// Long runs with no flow-control, tag or host limits: the link alone decides.
fn link_bound(billing: Billing) -> SimConfig {
    let mut cfg = SimConfig::gen3x8();
    cfg.billing = billing;
    cfg.tag_bits = 10;
    cfg.host.ph = 0;
    cfg.host.nph = 0;
    cfg.host.mem_gbs = 1000.0;
    cfg.replay_bytes = 1 << 20;
    cfg
}

#[test]
fn the_simulator_in_bench_mode_reaches_pcie_bench() {
    let cfg = link_bound(Billing::Bench);
    let w = run(&cfg, &Workload::dma(DmaOp::Write, 2048, 20_000, 64)).gbps();
    let r = run(&cfg, &Workload::dma(DmaOp::Read, 2048, 20_000, 64)).gbps();
    assert!((w / 52.92 - 1.0).abs() < 0.002, "write {w}");
    assert!((r / 53.69 - 1.0).abs() < 0.002, "read {r}");
}

#[test]
fn wire_billing_puts_dllps_on_the_reverse_direction() {
    // Writes: nothing but MWr TLPs on the upstream wire; the Acks and UpdateFCs ride down.
    let cfg = link_bound(Billing::Wire);
    let c = cfg.link;
    let s = run(&cfg, &Workload::dma(DmaOp::Write, 2048, 20_000, 64));
    let want = c.raw_gbps() * (1.0 - SKP_OVERHEAD) * 2048.0 / (8.0 * c.mwr_bytes(256) as f64);
    assert!(
        (s.gbps() / want - 1.0).abs() < 0.002,
        "{} vs {want}",
        s.gbps()
    );
    assert!(
        s.down.dllps > 0 && s.up.dllps == 0,
        "{:?} {:?}",
        s.up,
        s.down
    );
    // One Ack per latency limit while data flows.
    let busy = s.elapsed_ns;
    let acks = busy / c.ack_limit_ns();
    assert!((s.down.dllps as f64) < 1.05 * 2.0 * acks && (s.down.dllps as f64) > 0.5 * acks);
}

#[test]
fn an_idle_read_takes_the_analytic_latency() {
    let cfg = SimConfig::gen3x8();
    let c = cfg.link;
    let h = &cfg.host;
    for size in [64u32, 256] {
        let s = run(&cfg, &Workload::dma(DmaOp::Read, size, 20, 1));
        let cpl: f64 = split_completions(0, size, c.rcb, c.mps)
            .map(|(_, n, _)| c.cpld_bytes(n) as f64)
            .sum();
        let want = c.mrd_bytes() as f64 * c.ns_per_byte()
            + cfg.link_ns
            + h.read_ns
            + 64.0 / h.mem_gbs
            + cpl * c.ns_per_byte()
            + cfg.link_ns;
        if size == 64 {
            let got = s.latency.quantile(0.5);
            assert!((got / want - 1.0).abs() < 0.006, "{size}: {got} vs {want}");
        }
        assert!(s.latency.quantile(0.5) >= h.read_ns + 2.0 * cfg.link_ns);
    }
}

#[test]
fn tags_limit_outstanding_reads() {
    let mut cfg = SimConfig::gen3x8();
    cfg.tag_bits = 5;
    cfg.host.read_ns = 5000.0;
    let s = run(&cfg, &Workload::dma(DmaOp::Read, 512, 4000, 64));
    // Little's law: 32 tags of 512 B per idle round trip at most.
    let rtt = run(&cfg, &Workload::dma(DmaOp::Read, 512, 10, 1))
        .latency
        .quantile(0.5);
    let bound = 32.0 * 512.0 * 8.0 / rtt;
    assert!(s.gbps() <= bound * 1.02, "{} > {bound}", s.gbps());
    assert!(s.tag_stall_ns > 0.0);
    cfg.tag_bits = 10;
    cfg.host.nph = 0;
    let more = run(&cfg, &Workload::dma(DmaOp::Read, 512, 4000, 256));
    assert!(
        more.gbps() > 1.8 * s.gbps(),
        "{} vs {}",
        more.gbps(),
        s.gbps()
    );
}

#[test]
fn finite_receive_buffers_push_back() {
    let mut cfg = SimConfig::gen3x8();
    cfg.host.mem_gbs = 2.0;
    let s = run(&cfg, &Workload::dma(DmaOp::Write, 4096, 2000, 16));
    assert!(s.gbps() < 2.0 * 8.0 * 1.01, "{}", s.gbps());
    assert!(s.credit_stall_ns > 0.0);
}

#[test]
fn bit_errors_cost_replays() {
    let mut cfg = SimConfig::gen3x8();
    let clean = run(&cfg, &Workload::dma(DmaOp::Write, 1024, 5000, 16));
    cfg.ber = 1e-5;
    let noisy = run(&cfg, &Workload::dma(DmaOp::Write, 1024, 5000, 16));
    assert_eq!(clean.up.replays, 0);
    assert!(
        noisy.up.replays > 0 && noisy.gbps() < clean.gbps(),
        "{:?}",
        noisy.up
    );
}

#[test]
fn the_iommu_misses_on_random_addresses_over_a_large_window() {
    let mut cfg = SimConfig::gen3x8();
    cfg.host.iommu = true;
    let work = |random, window| Workload::Dma {
        op: DmaOp::Read,
        size: 64,
        ops: 20_000,
        window,
        random,
        offset: 0,
        outstanding: 1,
    };
    let seq = run(&cfg, &work(false, 64 << 20));
    let rnd = run(&cfg, &work(true, 64 << 20));
    let small = run(&cfg, &work(true, 128 << 10));
    assert!(rnd.iotlb_misses > 15_000, "{}", rnd.iotlb_misses);
    assert!(
        seq.iotlb_misses < 400 && small.iotlb_misses <= 32,
        "{} {}",
        seq.iotlb_misses,
        small.iotlb_misses
    );
    assert!(rnd.latency.quantile(0.5) > seq.latency.quantile(0.5) + 0.9 * cfg.host.walk_ns);
}

#[test]
fn unaligned_writes_pay_for_partial_cache_lines() {
    let mut cfg = SimConfig::gen3x8();
    cfg.host.mem_gbs = 4.0;
    let work = |offset| Workload::Dma {
        op: DmaOp::Write,
        size: 256,
        ops: 5000,
        window: 8 << 20,
        random: false,
        offset,
        outstanding: 8,
    };
    assert!(run(&cfg, &work(32)).gbps() < 0.9 * run(&cfg, &work(0)).gbps());
}

#[test]
fn devices_behind_a_switch_share_its_upstream_link() {
    let mut cfg = link_bound(Billing::Wire);
    let one = run(&cfg, &Workload::dma(DmaOp::Write, 4096, 4000, 16));
    cfg.switch = Some(SwitchConfig {
        latency_ns: 150.0,
        upstream: cfg.link,
    });
    cfg.devices = 2;
    let two = run(&cfg, &Workload::dma(DmaOp::Write, 4096, 4000, 16));
    // Twice the data through the same upstream link: the aggregate stays at one link's rate.
    assert!(
        (two.gbps() / one.gbps() - 1.0).abs() < 0.03,
        "{} vs {}",
        two.gbps(),
        one.gbps()
    );
    let lat = run(&cfg, &Workload::dma(DmaOp::Read, 64, 100, 1))
        .latency
        .quantile(0.5);
    cfg.switch = None;
    cfg.devices = 1;
    let direct = run(&cfg, &Workload::dma(DmaOp::Read, 64, 100, 1))
        .latency
        .quantile(0.5);
    assert!(lat > direct + 2.0 * 150.0, "{lat} vs {direct}");
}

#[test]
fn gen6_flit_mode_carries_236_of_256_bytes() {
    let mut cfg = link_bound(Billing::Wire);
    cfg.link.gen = Gen::Gen6;
    cfg.link.mps = 512;
    let s = run(&cfg, &Workload::dma(DmaOp::Write, 4096, 4000, 64));
    let c = cfg.link;
    let want = 64.0 * 8.0 * (1.0 - SKP_OVERHEAD) * 236.0 / 256.0 * 512.0 / c.mwr_bytes(512) as f64;
    assert_eq!(
        c.mwr_bytes(512),
        16 + 512,
        "no per-TLP framing in FLIT mode"
    );
    assert!(
        (s.gbps() / want - 1.0).abs() < 0.003,
        "{} vs {want}",
        s.gbps()
    );
}

#[test]
fn splitting_respects_mps_mrrs_rcb_and_4k() {
    let parts: Vec<(u64, u32)> = split_requests(4096 - 100, 1000, 512).collect();
    assert_eq!(parts, vec![(3996, 100), (4096, 512), (4608, 388)]);
    let cpl: Vec<(u64, u32, u32)> = split_completions(0x1030, 300, 64, 256).collect();
    assert_eq!(cpl, vec![(0x1030, 208, 300), (0x1100, 92, 92)]);
    for (a, n, _) in split_completions(0x2010, 1000, 128, 256) {
        assert!(n <= 256);
        assert!((a + n as u64).is_multiple_of(128) || a + n as u64 == 0x2010 + 1000);
    }
}

fn workloads() -> Vec<(SimConfig, Workload)> {
    let base = SimConfig::gen3x8();
    let mut out = vec![];
    for op in [DmaOp::Read, DmaOp::Write, DmaOp::ReadWrite] {
        out.push((base.clone(), Workload::dma(op, 1500, 800, 16)));
    }
    out.push((
        base.clone(),
        Workload::Dma {
            op: DmaOp::ReadWrite,
            size: 3000,
            ops: 500,
            window: 1 << 20,
            random: true,
            offset: 40,
            outstanding: 8,
        },
    ));
    out.push((base.clone(), nic(600)));
    let mut sw = base.clone();
    sw.switch = Some(SwitchConfig {
        latency_ns: 150.0,
        upstream: base.link,
    });
    sw.devices = 3;
    out.push((sw.clone(), Workload::dma(DmaOp::ReadWrite, 700, 300, 8)));
    out.push((sw, nic(300)));
    let mut noisy = base.clone();
    noisy.ber = 1e-6;
    noisy.tag_bits = 10;
    noisy.relaxed = true;
    noisy.link.rcb = 128;
    out.push((noisy, nic(600)));
    let mut small = base;
    small.tag_bits = 5;
    small.host.ph = 4;
    small.host.pd = 32;
    small.host.nph = 4;
    out.push((small, Workload::dma(DmaOp::ReadWrite, 4096, 300, 8)));
    out
}

#[test]
fn simulated_traces_validate() {
    for (cfg, work) in workloads() {
        let (meta, rows) = traced(&cfg, &work);
        assert!(rows.len() > 500);
        let r = check(&meta, &rows);
        assert_eq!(r.total(), 0, "{work:?}: {:?}", r.violations);
        assert!(r.skipped.len() <= 1);
        assert!(rows.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
    }
}

/// Every kind of error injected into valid traces at many places: each is caught, by its rule.
#[test]
fn the_validator_catches_every_mutation() {
    let cfg = SimConfig::gen3x8();
    let (meta, rows) = traced(&cfg, &nic(400));
    assert_eq!(check(&meta, &rows).total(), 0);
    let idx = |pred: &dyn Fn(&Tlp) -> bool| -> Vec<usize> {
        let all: Vec<usize> = (0..rows.len()).filter(|&i| pred(&rows[i])).collect();
        all.iter()
            .step_by((all.len() / 25).max(1))
            .copied()
            .collect()
    };
    let mut tried = 0;
    let mut expect = |rule: Rule, mutated: Vec<Tlp>, meta: &TraceMeta| {
        let r = check(meta, &mutated);
        assert!(r.count(rule) > 0, "{rule:?} not caught: {:?}", r.counts);
        tried += 1;
    };
    let cpl = idx(&|t| t.kind == Kind::CplD);
    let split = idx(&|t| t.kind == Kind::CplD && t.byte_count > t.length);
    let mrd = idx(&|t| t.kind == Kind::MRd);
    let mwr_up = idx(&|t| t.kind == Kind::MWr && t.dir == Dir::Up && t.length == 16);
    let doorbells = idx(&|t| t.kind == Kind::MWr && t.dir == Dir::Down);
    let msi = idx(&|t| t.kind == Kind::MWr && t.address == sim::pcie::engine::MSI_ADDR);
    assert!(!split.is_empty() && !doorbells.is_empty() && !msi.is_empty());
    for &i in &cpl {
        let mut m = rows.clone();
        m[i].requester = 0x7777;
        expect(Rule::Unmatched, m, &meta);
        let mut m = rows.clone();
        m[i].byte_count += 4;
        expect(Rule::ByteCount, m, &meta);
        // The completion moved before its request.
        let req = (0..i)
            .rev()
            .find(|&j| rows[j].kind == Kind::MRd && rows[j].tag == rows[i].tag)
            .unwrap();
        let mut m = rows.clone();
        let c = m.remove(i);
        m.insert(
            req,
            Tlp {
                time_ns: rows[req].time_ns,
                ..c
            },
        );
        expect(Rule::Causality, m, &meta);
    }
    for &i in &split {
        // The first part of a split completion swapped with the next.
        let next = (i + 1..rows.len())
            .find(|&j| rows[j].kind == Kind::CplD && rows[j].tag == rows[i].tag)
            .unwrap();
        let mut m = rows.clone();
        let (a, b) = (m[i], m[next]);
        m[i] = Tlp {
            time_ns: a.time_ns,
            ..b
        };
        m[next] = Tlp {
            time_ns: b.time_ns,
            ..a
        };
        expect(Rule::Ordering, m, &meta);
    }
    for &i in &mrd {
        let mut m = rows.clone();
        m[i].length = meta.mrrs * 2;
        expect(Rule::Mrrs, m, &meta);
        let mut m = rows.clone();
        m[i].address = (m[i].address | 4095) - 7;
        m[i].length = m[i].length.max(16);
        expect(Rule::Cross4k, m, &meta);
        // The same tag issued again while the read is outstanding.
        let mut m = rows.clone();
        m.insert(
            i + 1,
            Tlp {
                time_ns: rows[i].time_ns,
                ..rows[i]
            },
        );
        expect(Rule::Tag, m, &meta);
        let mut m = rows.clone();
        m[i].tag = 300;
        expect(Rule::Tag, m, &meta);
    }
    for &i in &mwr_up {
        let mut m = rows.clone();
        m[i].length = meta.mps + 4;
        expect(Rule::Mps, m, &meta);
    }
    for &i in &doorbells {
        let mut m = rows.clone();
        m.remove(i);
        expect(Rule::Causality, m, &meta);
    }
    for &i in &msi {
        let mut m = rows.clone();
        m[i].attr = ATTR_RO;
        expect(Rule::Ordering, m, &meta);
        // The MSI before the write-back it announces.
        let wb = (0..i)
            .rev()
            .find(|&j| rows[j].kind == Kind::MWr && rows[j].dir == Dir::Up && rows[j].length == 16)
            .unwrap();
        let mut m = rows.clone();
        m.swap(wb, i);
        m[wb].time_ns = rows[wb].time_ns;
        m[i].time_ns = rows[i].time_ns;
        expect(Rule::Causality, m, &meta);
    }
    // Credits: the UpdateFC rows dropped, or fewer credits advertised than the device used.
    let m: Vec<Tlp> = rows
        .iter()
        .filter(|t| t.kind != Kind::FcP)
        .copied()
        .collect();
    expect(Rule::Credits, m, &meta);
    let tight = TraceMeta {
        credits: Some((1, 1, 1)),
        ..meta
    };
    expect(Rule::Credits, rows.clone(), &tight);
    // Data reads before the descriptor: every packet-buffer read moved ahead of its doorbell.
    let first_data = rows
        .iter()
        .position(|t| t.kind == Kind::MRd && t.address >= sim::pcie::engine::PKT_BUF)
        .unwrap();
    let mut m = rows.clone();
    let r = m.remove(first_data);
    m.insert(0, Tlp { time_ns: 0.0, ..r });
    expect(Rule::Causality, m, &meta);
    assert!(tried > 200, "{tried} mutations");
}

#[test]
fn traces_round_trip_and_malformed_ones_name_their_line() {
    let cfg = SimConfig::gen3x8();
    let (meta, rows) = traced(&cfg, &nic(50));
    let csv = to_csv(&meta, &rows);
    let (meta2, back) = read_all(csv.as_bytes(), "t.csv").unwrap();
    assert_eq!(meta2, meta);
    assert_eq!(back.len(), rows.len());
    assert_eq!(
        back[0].0, 6,
        "four metadata lines and the header come first"
    );
    for ((_, a), b) in back.iter().zip(&rows) {
        assert!((a.time_ns - b.time_ns).abs() < 1e-3);
        assert_eq!(Tlp { time_ns: 0.0, ..*a }, Tlp { time_ns: 0.0, ..*b });
    }
    let lines: Vec<&str> = csv.lines().collect();
    let bad = |i: usize, new: &str| -> String {
        let mut l = lines.clone();
        l[i] = new;
        match read_all(l.join("\n").as_bytes(), "t.csv") {
            Err(PcieError::Trace { line, message, .. }) => format!("{line}: {message}"),
            other => panic!("accepted: {other:?}"),
        }
    };
    assert!(bad(7, "1.0,up,MRd,0x10").starts_with("8: 4 columns"));
    assert!(bad(7, "1e9,up,Foo,0x10,4,0,0,0,0,0,0").contains("type `Foo`; choose one of MRd"));
    assert!(bad(7, "1e9,sideways,MRd,0x10,4,0,0,0,0,0,0").contains("choose up or down"));
    assert!(bad(8, "0.0,up,MRd,0x10,4,0,0,0,0,0,0").starts_with("9: time_ns 0 is earlier"));
    assert!(bad(7, "1e9,up,MRd,0xZZ,4,0,0,0,0,0,0").contains("address `0xZZ`"));
    assert!(bad(4, "time,dir").contains("expected the header"));
}

#[test]
fn constrained_generation_always_validates_and_unconstrained_does_not() {
    let cfg = SimConfig::gen3x8();
    for work in [nic(1500), Workload::dma(DmaOp::ReadWrite, 1500, 1500, 16)] {
        let (meta, rows) = traced(&cfg, &work);
        let model = TraceModel::learn(&meta, &rows, 3).unwrap();
        for seed in 0..6 {
            let mut g: Vec<Tlp> = Vec::new();
            generate(&model, 20_000, true, seed, &mut g);
            assert_eq!(g.len(), 20_000);
            let r = check(&meta, &g);
            assert_eq!(r.total(), 0, "seed {seed}: {:?}", r.violations);
        }
        let mut g: Vec<Tlp> = Vec::new();
        generate(&model, 20_000, false, 1, &mut g);
        assert!(check(&meta, &g).total() > 100);
        let f = fidelity(&meta, &rows, &rows);
        assert!(
            f.ks_length == 0.0 && f.tv_bigram == 0.0 && f.frechet < 1e-9,
            "{f:?}"
        );
    }
    assert!(TraceModel::learn(&TraceMeta::default(), &[], 1).is_err());
}

//! Sequence-parallel attention: the fp64 execution of every schedule against full attention,
//! plan bugs caught, and the simulator against analytic times, byte counts and contention.

use sim::ring::{
    reference, simulate, AttnShape, Call, Cluster, ComputeModel, Payload, Plan, Roofline, Schedule,
    Topology,
};

fn shape(tokens: usize, heads: usize, kv_heads: usize, causal: bool) -> AttnShape {
    AttnShape {
        tokens,
        heads,
        kv_heads,
        head_dim: 8,
        causal,
        elem_bytes: 2,
    }
}

#[test]
fn every_schedule_equals_full_attention_in_fp64() {
    for schedule in Schedule::ALL {
        for devices in [1, 2, 3, 4, 5] {
            for causal in [false, true] {
                for (heads, kv_heads) in [(4, 4), (4, 1), (8, 2)] {
                    let s = shape(2 * devices * 6, heads, kv_heads, causal);
                    let x = reference::Qkv::random(&s, 7 + devices as u64);
                    let want = reference::full_attention(&s, &x);
                    let plan = Plan::new(schedule, s, devices).unwrap();
                    let got = reference::execute(&plan, &x).unwrap();
                    let (dout, dlse) = reference::max_abs_diff(&got, &want);
                    assert!(
                        dout < 1e-12 && dlse < 1e-12,
                        "{schedule:?} n={devices} causal={causal} H={heads}/{kv_heads}: out {dout:e} lse {dlse:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn plan_bugs_are_caught_by_the_execution() {
    let s = shape(48, 4, 2, true);
    let x = reference::Qkv::random(&s, 1);
    // A lost K/V hop: the next device computes with a shard it never received.
    let mut plan = Plan::new(Schedule::Ring, s, 4).unwrap();
    let i = plan
        .transfers
        .iter()
        .position(|t| t.step == 1 && t.src == 2)
        .unwrap();
    plan.transfers.remove(i);
    let e = reference::execute(&plan, &x).unwrap_err().to_string();
    assert!(e.contains("never received"), "{e}");
    // A partial that never goes home.
    let mut plan = Plan::new(Schedule::TokenRing, s, 4).unwrap();
    let i = plan
        .transfers
        .iter()
        .position(|t| matches!(t.payload, Payload::Partial { .. }))
        .unwrap();
    plan.transfers.remove(i);
    let e = reference::execute(&plan, &x).unwrap_err().to_string();
    assert!(e.contains("never reached its owner"), "{e}");
    // A block computed twice changes the log-sum-exp by ln 2.
    let mut plan = Plan::new(Schedule::ZigzagRing, s, 4).unwrap();
    let dup = plan.works[0].clone();
    plan.works.insert(0, dup);
    let got = reference::execute(&plan, &x).unwrap();
    let (_, dlse) = reference::max_abs_diff(&got, &reference::full_attention(&s, &x));
    assert!(dlse > 0.1, "{dlse}");
}

/// Compute that costs nothing: the timeline is pure communication.
struct Free;
impl ComputeModel for Free {
    fn call_us(&self, _: &AttnShape, _: &Call) -> f64 {
        0.0
    }
    fn merge_us(&self, _: &AttnShape, _: usize) -> f64 {
        0.0
    }
}

fn cluster(topology: Topology, gbs: f64) -> Cluster {
    Cluster {
        topology,
        link_gbs: gbs,
        hop_latency_us: 1.0,
        msg_overhead_us: 5.0,
        overlap: 1.0,
    }
}

#[test]
fn communication_only_ring_matches_the_analytic_time() {
    // N−1 hops of one K/V shard each, through the switch: bytes / bandwidth + overhead + 2 hops.
    for n in [2, 4, 8] {
        let s = shape(1024 * n, 32, 8, false);
        let plan = Plan::new(Schedule::Ring, s, n).unwrap();
        let t = simulate(&plan, &cluster(Topology::NvSwitch, 100.0), &Free).unwrap();
        let hop = s.kv_bytes(1024) as f64 / 100e3 + 5.0 + 2.0;
        assert!(
            (t.total_us - (n - 1) as f64 * hop).abs() < 1e-6,
            "n={n}: {} vs {}",
            t.total_us,
            (n - 1) as f64 * hop
        );
        assert_eq!(t.bytes_moved, (n * (n - 1)) as u64 * s.kv_bytes(1024));
        // Each device's port carries N−1 shards out and N−1 in.
        for (name, b) in &t.link_bytes {
            assert_eq!(*b, (n - 1) as u64 * s.kv_bytes(1024), "{name}");
        }
    }
}

#[test]
fn compute_bound_schedules_hide_their_communication() {
    let slow = Roofline {
        tflops: 0.001,
        launch_us: 0.0,
        mem_gbs: 1e9,
    };
    let n = 4;
    let s = shape(256 * n, 8, 8, false);
    for schedule in Schedule::ALL {
        let plan = Plan::new(schedule, s, n).unwrap();
        let t = simulate(&plan, &cluster(Topology::NvSwitch, 450.0), &slow).unwrap();
        let per_block = s.flops((256 * 256) as u64) / (0.001 * 1e6);
        let compute = n as f64 * per_block;
        assert!(
            (t.compute_only_us() - compute).abs() / compute < 1e-6,
            "{schedule:?}"
        );
        // Only the first hop (or the last partial) is exposed.
        assert!(t.exposed_comm_us() < 0.01 * compute, "{schedule:?} {t:?}");
        assert_eq!(t.step_us().len(), t.step_end_us.len());
    }
}

#[test]
fn token_ring_halves_mha_traffic_per_direction_and_doubles_gqa_on_a_mesh() {
    // Bytes on the busiest link direction in a middle step (step 2 of 4: Q forward and the
    // step-1 partial back travel on different links of the mesh).
    let n = 4;
    let busiest = |schedule, s: AttnShape| {
        let plan = Plan::new(schedule, s, n).unwrap();
        let net = sim::ring::Network::new(Topology::FullMesh, n, 20.0, 0.0).unwrap();
        let mut per_link = vec![0u64; net.links.len()];
        for t in plan.transfers.iter().filter(|t| t.step == 2) {
            for &l in net.route(t.src, t.dst) {
                per_link[l] += t.bytes;
            }
        }
        *per_link.iter().max().unwrap() as f64
    };
    for (kv_heads, ratio) in [(32, 2.0), (8, 0.5)] {
        let s = AttnShape {
            head_dim: 128,
            ..shape(6144 * n, 32, kv_heads, false)
        };
        let r = busiest(Schedule::Ring, s) / busiest(Schedule::TokenRing, s);
        // The fp32 log-sum-exps add 4 / (d * 2) to the partials.
        let lse = 1.0 + 4.0 / (2.0 * s.head_dim as f64);
        let want = ratio / lse;
        assert!(
            (r - want).abs() < 1e-9,
            "kv_heads {kv_heads}: {r} vs {want}"
        );
    }
    // And in time, communication only: the TokenRing step is shorter by the same factor.
    let s = AttnShape {
        head_dim: 128,
        ..shape(6144 * n, 32, 32, false)
    };
    let c = cluster(Topology::FullMesh, 20.0);
    let step = |sch| {
        simulate(&Plan::new(sch, s, n).unwrap(), &c, &Free)
            .unwrap()
            .step_us()[2]
    };
    let r = step(Schedule::Ring) / step(Schedule::TokenRing);
    assert!(r > 1.8 && r < 2.0, "{r}");
}

#[test]
fn shared_upstream_links_slow_cross_switch_traffic() {
    // 8 devices, 2 per switch: ring hops 1->2, 3->4, 5->6, 7->0 cross the root and share the
    // switches' upstream links with nothing else, so a slower root only slows those.
    let s = shape(1024 * 8, 32, 8, false);
    let plan = Plan::new(Schedule::Ring, s, 8).unwrap();
    let fast = simulate(
        &plan,
        &cluster(
            Topology::PcieTree {
                per_switch: 2,
                root_factor: 1.0,
            },
            25.0,
        ),
        &Free,
    )
    .unwrap();
    let slow = simulate(
        &plan,
        &cluster(
            Topology::PcieTree {
                per_switch: 2,
                root_factor: 0.5,
            },
            25.0,
        ),
        &Free,
    )
    .unwrap();
    let bytes = s.kv_bytes(1024) as f64;
    let hop = |bw: f64, hops: f64| bytes / bw + 5.0 + hops;
    assert!((fast.total_us - 7.0 * hop(25e3, 4.0)).abs() < 1e-6);
    assert!((slow.total_us - 7.0 * hop(12.5e3, 4.0)).abs() < 1e-6);
    // TokenRing on a tree: Q forward and partials back share each device's single uplink.
    let tr = Plan::new(Schedule::TokenRing, shape(1024 * 8, 32, 32, false), 8).unwrap();
    let t = simulate(
        &tr,
        &cluster(
            Topology::PcieTree {
                per_switch: 8,
                root_factor: 1.0,
            },
            25.0,
        ),
        &Free,
    )
    .unwrap();
    let up0 = t.link_bytes.iter().find(|l| l.0 == "gpu0->sw0").unwrap().1;
    let q = tr.shape.q_bytes(1024);
    let partial = tr.shape.partial_bytes(1024);
    assert_eq!(up0, 7 * q + 7 * partial);
}

#[test]
fn zigzag_balances_causal_compute_across_devices() {
    let model = Roofline {
        tflops: 300.0,
        launch_us: 0.0,
        mem_gbs: 3000.0,
    };
    let n = 8;
    let s = shape(4096 * n, 32, 8, true);
    let spread = |sch| {
        let plan = Plan::new(sch, s, n).unwrap();
        let t = simulate(&plan, &cluster(Topology::NvSwitch, 450.0), &model).unwrap();
        let b = &t.compute_busy_us;
        let max = b.iter().copied().fold(0.0, f64::max);
        let min = b.iter().copied().fold(f64::INFINITY, f64::min);
        (max / min, t.total_us)
    };
    let (zz, zz_total) = spread(Schedule::ZigzagRing);
    let (plain, plain_total) = spread(Schedule::Ring);
    assert!(zz < 1.1, "{zz}");
    assert!(plain > 5.0, "{plain}");
    assert!(zz_total < 0.7 * plain_total);
    let (zt, _) = spread(Schedule::ZigzagTokenRing);
    assert!(zt < 1.1, "{zt}");
}

#[test]
fn every_schedule_completes_on_every_topology() {
    let model = Roofline {
        tflops: 300.0,
        launch_us: 5.0,
        mem_gbs: 3000.0,
    };
    for topology in [
        Topology::NvSwitch,
        Topology::FullMesh,
        Topology::Ring,
        Topology::Torus2d { rows: 0 },
        Topology::PcieTree {
            per_switch: 4,
            root_factor: 1.0,
        },
    ] {
        for n in [2, 6, 16, 64] {
            for schedule in Schedule::ALL {
                let s = shape(128 * n, 16, 4, true);
                let plan = Plan::new(schedule, s, n).unwrap();
                let t = simulate(&plan, &cluster(topology, 50.0), &model).unwrap();
                assert!(t.total_us.is_finite() && t.total_us > 0.0);
                assert!(t.total_us + 1e-9 >= t.compute_only_us());
                assert!(t
                    .intervals
                    .iter()
                    .all(|i| i.end_us + 1e-9 >= i.start_us && i.start_us >= 0.0));
            }
        }
    }
}

#[test]
fn without_overlap_transfers_wait_for_the_compute() {
    // Two devices, Ring: the one transfer of step 0 can only move while neither GPU computes,
    // so with overlap 0 it lands after step 0's compute and is fully exposed; with overlap 1
    // it hides behind that compute.
    let model = Roofline {
        tflops: 100.0,
        launch_us: 0.0,
        mem_gbs: 1e9,
    };
    let s = shape(4096 * 2, 8, 8, false);
    let plan = Plan::new(Schedule::Ring, s, 2).unwrap();
    let mut c = cluster(Topology::FullMesh, 50.0);
    let hidden = simulate(&plan, &c, &model).unwrap();
    c.overlap = 0.0;
    let exposed = simulate(&plan, &c, &model).unwrap();
    let transfer = s.kv_bytes(4096) as f64 / 50e3 + 5.0 + 1.0;
    let block = s.flops(4096 * 4096) / 100e6;
    assert!(transfer < block);
    // (The merge into the accumulator costs a few picoseconds here.)
    assert!(
        (hidden.total_us - 2.0 * block).abs() < 1e-3,
        "{}",
        hidden.total_us
    );
    assert!(
        (exposed.total_us - (2.0 * block + transfer)).abs() < 1e-3,
        "{} vs {}",
        exposed.total_us,
        2.0 * block + transfer
    );
    c.overlap = 1.5;
    let e = simulate(&plan, &c, &model).unwrap_err().to_string();
    assert!(e.contains("overlap"), "{e}");
}

//! `ring.attention`: sequence-parallel attention (Ring, zigzag Ring, TokenRing, zigzag
//! TokenRing) on N devices, timed by the `sim::ring` simulator with every block's compute from
//! the H100 attention kernels' calibrated latency model ([`crate::attention::latency`]).
//!
//! [`study`] holds the compute-bound crossover search and the validation against the published
//! figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dse::model::{
    Direction, EvalContext, MetricSpec, Model, ModelError, ModelInfo, ParamSpec, Timeline,
    TimelineBar, Value,
};
use gpu::attention::AttnProblem;
use gpu::mask::MaskSpec;
use gpu::Dtype;
use sim::ring::{
    finalize_bytes, merge_bytes, simulate, Activity, AttnShape, Call, Cluster, ComputeModel, Plan,
    Schedule, Topology,
};

use crate::attention::latency::{self, LatencyModel};

pub mod calibrate;
pub mod study;

/// Block compute from the calibrated kernel model, scaled to another device by its attention
/// throughput relative to the H100 kernels; merges at the calibrated memory bandwidth.
/// Predictions are cached per block shape (a plan has only a few distinct ones).
pub struct CalibratedCompute {
    lat: Arc<LatencyModel>,
    /// Device attention throughput relative to the measured H100 kernels.
    pub scale: f64,
    cache: Mutex<HashMap<(Call, usize, usize, usize), f64>>,
}

impl CalibratedCompute {
    /// With the committed H100 calibration, scaled by `scale`.
    pub fn new(lat: Arc<LatencyModel>, scale: f64) -> Self {
        CalibratedCompute {
            lat,
            scale,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Calibrated single-device time of one attention problem (batch 1), µs, fastest variant.
    pub fn problem_us(&self, shape: &AttnShape, n_q: usize, n_kv: usize, causal: bool) -> f64 {
        let p = AttnProblem {
            batch: 1,
            heads: shape.heads,
            kv_heads: shape.kv_heads,
            n_q,
            n_kv,
            head_dim: shape.head_dim,
            dtype: Dtype::F16,
        };
        let mask = if causal {
            MaskSpec::Causal
        } else {
            MaskSpec::Full
        };
        self.lat
            .best_attention_us(&p, &mask, &LatencyModel::auto_candidates(shape.head_dim))
            .map_or(f64::NAN, |(t, _)| t / self.scale)
    }
}

impl ComputeModel for CalibratedCompute {
    fn call_us(&self, shape: &AttnShape, call: &Call) -> f64 {
        let key = (*call, shape.heads, shape.kv_heads, shape.head_dim);
        if let Some(&t) = self.cache.lock().expect("cache lock").get(&key) {
            return t;
        }
        let t = self.problem_us(shape, call.n_q, call.n_kv, call.causal);
        self.cache.lock().expect("cache lock").insert(key, t);
        t
    }
    fn merge_us(&self, shape: &AttnShape, rows: usize) -> f64 {
        // An elementwise kernel: the decode kernels' launch cost (two launches there) and
        // their measured bandwidth.
        (self.lat.decode_launch_us / 2.0 + merge_bytes(shape, rows) / (self.lat.decode_gbs * 1e3))
            / self.scale
    }
    fn finalize_us(&self, shape: &AttnShape, rows: usize) -> f64 {
        (self.lat.decode_launch_us / 2.0
            + finalize_bytes(shape, rows) / (self.lat.decode_gbs * 1e3))
            / self.scale
    }
}

/// One fully specified scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Schedule.
    pub schedule: Schedule,
    /// Devices.
    pub devices: usize,
    /// Network.
    pub cluster: Cluster,
    /// Shape (total tokens).
    pub shape: AttnShape,
    /// Device attention throughput relative to the H100 kernels.
    pub compute_scale: f64,
}

/// What a scenario costs.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The simulated timeline.
    pub timeline: sim::ring::Timeline,
    /// The plan.
    pub plan: Plan,
}

impl Scenario {
    /// Plans and simulates.
    pub fn run(&self, compute: &CalibratedCompute) -> Result<Outcome, ModelError> {
        let plan = Plan::new(self.schedule, self.shape, self.devices)
            .map_err(|e| ModelError::Infeasible(e.to_string()))?;
        let timeline = simulate(&plan, &self.cluster, compute)
            .map_err(|e| ModelError::Failed(e.to_string()))?;
        if !timeline.total_us.is_finite() {
            return Err(ModelError::Infeasible(
                "a block has no calibrated kernel variant".into(),
            ));
        }
        Ok(Outcome { timeline, plan })
    }
}

/// Typical middle-step duration: the median of steps 1..N−1 (step 0 has no communication to
/// wait for, the tail only partials), or the only step.
pub fn typical_step_us(t: &sim::ring::Timeline, steps: usize) -> f64 {
    let s = t.step_us();
    let mut mid: Vec<f64> = s
        .iter()
        .copied()
        .skip(1)
        .take(steps.saturating_sub(1))
        .collect();
    if mid.is_empty() {
        return s.first().copied().unwrap_or(0.0);
    }
    mid.sort_by(f64::total_cmp);
    mid[mid.len() / 2]
}

/// `ring.attention`: the design model.
pub struct RingAttention {
    info: ModelInfo,
    compute: Mutex<HashMap<u64, Arc<CalibratedCompute>>>,
    lat: Arc<LatencyModel>,
}

/// Exposed communication below this fraction of the time counts as compute-bound.
pub const COMPUTE_BOUND_FRACTION: f64 = 0.05;

const TOPOLOGIES: [&str; 5] = ["nvswitch", "mesh", "pcie", "ring", "torus"];

impl RingAttention {
    /// The model with the committed H100 calibration.
    pub fn new() -> Self {
        let params = vec![
            ParamSpec::categorical(
                "schedule",
                &["ring", "zigzag_ring", "token_ring", "zigzag_token_ring"],
                "zigzag_ring",
                "sequence-parallel schedule",
            ),
            ParamSpec::int(
                "devices",
                1,
                64,
                8,
                "",
                "devices the sequence is split over",
            ),
            ParamSpec::categorical(
                "topology",
                &TOPOLOGIES,
                "nvswitch",
                "interconnect: NVSwitch, full mesh, PCIe tree, ring, 2-D torus",
            ),
            ParamSpec::log_real(
                "link_gbs",
                1.0,
                2000.0,
                450.0,
                "GB/s",
                "device link bandwidth per direction (H100 NVLink 450; PCIe Gen4 x16 ~25 usable)",
            ),
            ParamSpec::int("per_switch", 1, 64, 4, "", "pcie: devices per PCIe switch"),
            ParamSpec::log_real(
                "root_factor",
                0.125,
                8.0,
                1.0,
                "",
                "pcie: switch upstream bandwidth over device link bandwidth",
            ),
            ParamSpec::real(
                "hop_latency_us",
                0.0,
                100.0,
                1.0,
                "us",
                "latency per link crossed (the two-H200 fit puts all latency in the per-transfer cost)",
            ),
            ParamSpec::real(
                "msg_overhead_us",
                0.0,
                1000.0,
                10.0,
                "us",
                "fixed cost per transfer (fitted: 65 us for NCCL both ways on two H200s)",
            ),
            ParamSpec::int(
                "tokens_per_device",
                64,
                1 << 20,
                8192,
                "tokens",
                "sequence tokens per device (total = devices x this)",
            ),
            ParamSpec::int("heads", 1, 256, 32, "", "query heads"),
            ParamSpec::int("kv_heads", 1, 256, 8, "", "key/value heads (divides heads)"),
            ParamSpec::categorical("head_dim", &["64", "128"], "128", "head dimension"),
            ParamSpec::boolean("causal", true, "causal mask"),
            ParamSpec::log_real(
                "compute_scale",
                0.01,
                10.0,
                1.0,
                "",
                "device attention throughput relative to the measured H100 kernels",
            ),
            ParamSpec::real(
                "comm_overlap",
                0.0,
                1.0,
                1.0,
                "",
                "share of a transfer's rate kept while its GPUs compute (1: full overlap; 0.4 fitted on two H200s)",
            ),
        ];
        let metrics = vec![
            MetricSpec::new(
                "latency_us",
                "us",
                Direction::Minimize,
                "forward pass, end to end",
            ),
            MetricSpec::new(
                "step_us",
                "us",
                Direction::Minimize,
                "median duration of the steps after the first",
            ),
            MetricSpec::new(
                "compute_us",
                "us",
                Direction::Minimize,
                "ideal: the busiest device's compute with free communication",
            ),
            MetricSpec::new(
                "efficiency",
                "",
                Direction::Maximize,
                "ideal (compute-only) time over simulated time",
            ),
            MetricSpec::new(
                "exposed_comm_us",
                "us",
                Direction::Minimize,
                "communication not hidden behind compute",
            ),
            MetricSpec::new(
                "exposed_frac",
                "",
                Direction::Minimize,
                "exposed communication over latency",
            ),
            MetricSpec::new(
                "compute_bound",
                "",
                Direction::Maximize,
                "1 when exposed communication is under 5% of the time",
            ),
            MetricSpec::new("bytes_moved_mb", "MB", Direction::Minimize, "all transfers"),
            MetricSpec::new(
                "max_link_mb",
                "MB",
                Direction::Minimize,
                "bytes on the busiest link direction",
            ),
        ];
        RingAttention {
            info: ModelInfo {
                name: "ring.attention".into(),
                version: "2".into(),
                summary: "sequence-parallel attention (Ring/TokenRing, zigzag): simulated time on N devices, compute from the calibrated H100 kernels".into(),
                params,
                metrics,
            },
            compute: Mutex::new(HashMap::new()),
            lat: Arc::new(latency::committed()),
        }
    }

    fn compute(&self, scale: f64) -> Arc<CalibratedCompute> {
        self.compute
            .lock()
            .expect("compute cache lock")
            .entry(scale.to_bits())
            .or_insert_with(|| Arc::new(CalibratedCompute::new(self.lat.clone(), scale)))
            .clone()
    }

    /// The scenario a point describes.
    pub fn scenario(&self, p: &[Value]) -> Result<Scenario, ModelError> {
        let cat = |i: usize| match &p[i] {
            Value::Cat(s) => s.as_str(),
            _ => "",
        };
        let num = |i: usize| p[i].as_f64().unwrap_or(f64::NAN);
        let bad = |e: sim::ring::RingError| ModelError::Infeasible(e.to_string());
        let schedule = Schedule::parse(cat(0)).map_err(bad)?;
        let devices = num(1) as usize;
        let topology = match cat(2) {
            "pcie" => Topology::PcieTree {
                per_switch: num(4) as usize,
                root_factor: num(5),
            },
            "torus" => Topology::Torus2d { rows: 0 },
            t => Topology::parse(t).map_err(bad)?,
        };
        let head_dim: usize = cat(11)
            .parse()
            .map_err(|_| ModelError::Infeasible(format!("head_dim {}", cat(11))))?;
        Ok(Scenario {
            schedule,
            devices,
            cluster: Cluster {
                topology,
                link_gbs: num(3),
                hop_latency_us: num(6),
                msg_overhead_us: num(7),
                overlap: num(14),
            },
            shape: AttnShape {
                tokens: devices * num(8) as usize,
                heads: num(9) as usize,
                kv_heads: num(10) as usize,
                head_dim,
                causal: matches!(p[12], Value::Bool(true)),
                elem_bytes: 2,
            },
            compute_scale: num(13),
        })
    }
}

impl Default for RingAttention {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for RingAttention {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn evaluate(&self, p: &[Value], _ctx: &EvalContext) -> Result<Vec<f64>, ModelError> {
        let sc = self.scenario(p)?;
        let out = sc.run(&self.compute(sc.compute_scale))?;
        let t = &out.timeline;
        let compute = t.compute_only_us();
        let exposed = t.exposed_comm_us();
        let frac = exposed / t.total_us;
        Ok(vec![
            t.total_us,
            typical_step_us(t, out.plan.steps),
            compute,
            compute / t.total_us,
            exposed,
            frac,
            f64::from(u8::from(frac < COMPUTE_BOUND_FRACTION)),
            t.bytes_moved as f64 / 1e6,
            t.max_link_bytes() as f64 / 1e6,
        ])
    }
    fn timeline(&self, p: &[Value]) -> Option<Timeline> {
        let sc = self.scenario(p).ok()?;
        let out = sc.run(&self.compute(sc.compute_scale)).ok()?;
        Some(gantt(&sc, &out.timeline))
    }
}

/// The simulated timeline as a Gantt chart: one row per device.
pub fn gantt(sc: &Scenario, t: &sim::ring::Timeline) -> Timeline {
    Timeline {
        title: format!(
            "{} on {} devices ({}, {} GB/s), {} tokens: {:.0} us",
            sc.schedule.name(),
            sc.devices,
            sc.cluster.topology.label(),
            sc.cluster.link_gbs,
            sc.shape.tokens,
            t.total_us
        ),
        rows: (0..sc.devices).map(|d| format!("gpu{d}")).collect(),
        activities: vec!["compute".into(), "merge / finalize".into(), "send".into()],
        bars: t
            .intervals
            .iter()
            .map(|i| TimelineBar {
                row: i.dev,
                activity: match i.activity {
                    Activity::Compute => 0,
                    Activity::Merge | Activity::Finalize => 1,
                    Activity::Send => 2,
                },
                start: i.start_us,
                end: i.end_us,
            })
            .collect(),
        unit: "us".into(),
    }
}

/// The model, shareable.
pub fn all() -> Vec<Arc<dyn Model>> {
    vec![Arc::new(RingAttention::new())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(model: &RingAttention, set: &[&str]) -> Vec<Value> {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        model.info().point_with(&set).unwrap()
    }

    #[test]
    fn default_point_is_consistent() {
        let m = RingAttention::new();
        let ctx = EvalContext { seed: 1 };
        let v = m.evaluate(&point(&m, &[]), &ctx).unwrap();
        let names: Vec<&str> = m.info().metrics.iter().map(|x| x.name.as_str()).collect();
        let get = |n: &str| v[names.iter().position(|x| *x == n).unwrap()];
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
        assert!(get("compute_us") <= get("latency_us") + 1e-9);
        assert!(get("efficiency") > 0.0 && get("efficiency") <= 1.0 + 1e-12);
        assert!((get("exposed_comm_us") - (get("latency_us") - get("compute_us"))).abs() < 1e-6);
        // 8 devices x 8192 tokens, 8 KV heads, d 128: 7 K/V shards of 2 x 8192 x 8 x 128 x 2 B
        // leave each device.
        assert!((get("bytes_moved_mb") - 8.0 * 7.0 * 33.554432).abs() < 1e-6);
    }

    #[test]
    fn slower_links_never_help_and_token_ring_wins_mha_on_a_slow_mesh() {
        let m = RingAttention::new();
        let ctx = EvalContext { seed: 1 };
        let lat = |set: &[&str]| m.evaluate(&point(&m, set), &ctx).unwrap()[0];
        let mut last = 0.0;
        for gbs in ["900", "450", "100", "25", "5"] {
            let t = lat(&["link_gbs", gbs].join("=").split(' ').collect::<Vec<_>>());
            assert!(t >= last - 1e-6, "{gbs}: {t} < {last}");
            last = t;
        }
        let mha = [
            "topology=mesh",
            "link_gbs=5",
            "kv_heads=32",
            "causal=false",
            "devices=4",
        ];
        let step = |set: &[&str]| m.evaluate(&point(&m, set), &ctx).unwrap()[1];
        let ring = step(&[&mha[..], &["schedule=ring"]].concat());
        let token = step(&[&mha[..], &["schedule=token_ring"]].concat());
        assert!(ring > 1.8 * token, "ring step {ring} token step {token}");
        // End to end TokenRing pays one more (partial-only) step, but still wins.
        let ring = lat(&[&mha[..], &["schedule=ring"]].concat());
        let token = lat(&[&mha[..], &["schedule=token_ring"]].concat());
        assert!(ring > 1.15 * token, "ring {ring} token {token}");
    }

    #[test]
    fn bad_points_are_infeasible_with_the_field_named() {
        let m = RingAttention::new();
        let ctx = EvalContext { seed: 1 };
        let e = m
            .evaluate(&point(&m, &["kv_heads=5"]), &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kv_heads"), "{e}");
        let e = m
            .evaluate(
                &point(&m, &["topology=torus", "devices=7", "tokens_per_device=64"]),
                &ctx,
            )
            .map(|_| ())
            .err();
        // 7 devices form a 1 x 7 torus (a ring): valid.
        assert!(e.is_none(), "{e:?}");
        let e = m
            .evaluate(
                &point(&m, &["schedule=zigzag_ring", "tokens_per_device=65"]),
                &ctx,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("tokens"), "{e}");
    }

    #[test]
    fn timeline_has_a_row_per_device_and_ends_at_the_latency() {
        let m = RingAttention::new();
        let p = point(&m, &["devices=4", "tokens_per_device=2048"]);
        let t = m.timeline(&p).unwrap();
        assert_eq!(t.rows.len(), 4);
        let lat = m.evaluate(&p, &EvalContext { seed: 1 }).unwrap()[0];
        let end = t.bars.iter().map(|b| b.end).fold(0.0, f64::max);
        assert!((end - lat).abs() < 1e-6);
    }

    #[test]
    fn published_figures_are_reproduced_within_the_stated_errors() {
        let checks = study::validation(Arc::new(latency::committed()));
        assert_eq!(checks.len(), 3);
        // README: TokenRing per-step communication on a mesh within 15%, ratio near 2; zigzag
        // Ring fraction of ideal within 10%. On one PCIe switch TokenRing gains nothing.
        assert!(checks[0].rel_err() < 0.15, "{:?}", checks[0]);
        assert!(
            checks[1].simulated > 2.0 * checks[1].published,
            "{:?}",
            checks[1]
        );
        assert!(checks[2].rel_err() < 0.10, "{:?}", checks[2]);
    }

    /// The measured runs predate the ping-pong wgmma kernel: they are checked with the
    /// calibration of the kernel they ran, kept beside them.
    fn kernel_model_of_the_runs() -> latency::LatencyModel {
        latency::parse(
            include_str!("../../../results/ring/gpu_latency_before_pingpong.toml"),
            "results/ring/gpu_latency_before_pingpong.toml",
        )
        .unwrap()
    }

    #[test]
    fn calibrated_block_times_predict_the_measured_sequence_parallel_compute() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../results/ring/h100_degenerate/ring.csv"
        );
        let csv = std::fs::read_to_string(path).unwrap();
        let compute = CalibratedCompute::new(Arc::new(kernel_model_of_the_runs()), 1.0);
        let checks = study::compute_checks(&csv, path, &compute).unwrap();
        assert_eq!(checks.len(), 48);
        for c in &checks {
            println!(
                "{:40} measured {:9.1} predicted {:9.1} ({:+.1}%)",
                c.case,
                c.measured_us,
                c.predicted_us,
                100.0 * c.rel_err()
            );
        }
        let worst = checks.iter().map(|c| c.rel_err().abs()).fold(0.0, f64::max);
        assert!(worst < study::COMPUTE_MODEL_ERROR, "worst {worst}");
    }

    #[test]
    fn simulator_reproduces_the_two_gpu_runs_within_the_stated_error() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../results/ring/h200x2/");
        let runs = std::fs::read_to_string(format!("{dir}ring.csv")).unwrap();
        let links = std::fs::read_to_string(format!("{dir}ring.links.csv")).unwrap();
        let runs = calibrate::parse_runs(&runs, "ring.csv").unwrap();
        let (one, both) = calibrate::parse_links(&links, "ring.links.csv").unwrap();
        assert_eq!(runs.len(), 48);
        assert!(runs.iter().all(|r| r.gpus == 2));
        let c = calibrate::calibrate(
            &runs,
            &one,
            &both,
            Topology::FullMesh,
            Arc::new(kernel_model_of_the_runs()),
        )
        .unwrap();
        println!("{}", calibrate::markdown(&c));
        // NV18 between two H200s: 18 x 25 GB/s per direction in the datasheet.
        assert!(
            c.both_ways.gbs > 200.0 && c.both_ways.gbs < 450.0,
            "{:?}",
            c.both_ways
        );
        assert!(c.max_err() < calibrate::MULTI_GPU_ERROR, "{}", c.max_err());
    }

    #[test]
    fn link_fit_recovers_a_known_line_and_rejects_bad_probes() {
        let pts: Vec<(f64, f64)> = [1e5, 1e6, 1e7, 1e8]
            .iter()
            .map(|&b| (b, 20.0 + b / 300e3))
            .collect();
        let f = calibrate::fit_link(&pts).unwrap();
        assert!(
            (f.overhead_us - 20.0).abs() < 1e-6 && (f.gbs - 300.0).abs() < 1e-6,
            "{f:?}"
        );
        assert!(calibrate::fit_link(&pts[..1]).is_err());
        assert!(calibrate::fit_link(&[(1e6, 10.0), (1e6, 12.0)]).is_err());
        let e = calibrate::parse_runs("schedule,ranks\nring,2\n", "r.csv").unwrap_err();
        assert!(e.contains("r.csv") && e.contains("gpus"), "{e}");
    }

    #[test]
    fn more_tokens_per_device_hide_more_communication() {
        let lat = Arc::new(latency::committed());
        let system = study::pcie_gen4_box();
        let compute = CalibratedCompute::new(lat, 1.0);
        let shape = AttnShape {
            tokens: 0,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            causal: true,
            elem_bytes: 2,
        };
        let rows =
            study::crossover(&system, 8, shape, &[1024, 4096, 16384, 65536], &compute).unwrap();
        for r in &rows {
            let first = r.curve.first().unwrap().1;
            let last = r.curve.last().unwrap().1;
            assert!(last <= first + 1e-9, "{:?}", r);
        }
        let zz = rows
            .iter()
            .find(|r| r.schedule == Schedule::ZigzagRing)
            .unwrap();
        assert!(zz.compute_bound_from.is_some_and(|t| t > 1024), "{zz:?}");
    }
}

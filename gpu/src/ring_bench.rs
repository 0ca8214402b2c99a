//! The driver behind `ringbench`: sequence-parallel attention cases from a TOML file, each run
//! over NCCL (one GPU: degenerate mode), checked against the fp64 reference, timed per step,
//! and set beside our single-GPU kernel on the whole sequence. One CSV row per case.

use serde::Deserialize;
use sim::ring::{AttnShape, Plan, Schedule};

use crate::attention::{self, AttnProblem, AttnVariant, DeviceAttn, DeviceMask, HostAttn};
use crate::device::nvidia_smi_state;
use crate::harness::{Harness, Timing, TimingConfig};
use crate::mask::MaskSpec;
use crate::ring::{SpCluster, SpRun};
use crate::{Dtype, GpuError, Result};

/// A ringbench file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingBenchConfig {
    /// GPUs to use (1: degenerate mode, every rank on GPU 0).
    #[serde(default = "one")]
    pub gpus: usize,
    /// Timed repetitions per case (after one warm-up run).
    #[serde(default = "five")]
    pub reps: usize,
    /// Kernel variant label (`auto`: the fastest measured on Hopper, else block-m64-n64).
    #[serde(default = "auto")]
    pub variant: String,
    /// Highest stream priority for the NCCL streams (default true).
    #[serde(default = "yes")]
    pub comm_priority: bool,
    /// Link probe: NCCL transfer sizes in MB (none: no probe).
    #[serde(default)]
    pub probe_mb: Vec<f64>,
    /// Cases.
    #[serde(default)]
    pub case: Vec<RingCase>,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn five() -> usize {
    5
}
fn auto() -> String {
    "auto".into()
}

/// One case; list-valued fields expand into every combination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingCase {
    /// Schedules (`ring`, `zigzag_ring`, `token_ring`, `zigzag_token_ring`).
    pub schedules: Vec<String>,
    /// Logical ranks.
    pub ranks: Vec<usize>,
    /// Tokens per rank.
    pub tokens_per_rank: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads, one run per entry.
    pub kv_heads: Vec<usize>,
    /// Head dimension.
    pub head_dim: usize,
    /// Causal and/or non-causal.
    pub causal: Vec<bool>,
    /// `f16` or `bf16`.
    pub dtype: String,
}

impl RingBenchConfig {
    /// Parses and checks a file's text; errors name the file.
    pub fn parse(text: &str, path: &str) -> Result<RingBenchConfig> {
        let cfg: RingBenchConfig =
            toml::from_str(text).map_err(|e| GpuError::Config(format!("{path}: {e}")))?;
        let bad = |why: String| Err(GpuError::Config(format!("{path}: {why}")));
        if cfg.probe_mb.iter().any(|&m| !(m > 0.0 && m <= 8192.0)) {
            return bad(format!(
                "probe_mb {:?}: sizes must lie in (0, 8192] MB",
                cfg.probe_mb
            ));
        }
        if cfg.gpus == 0 || cfg.reps == 0 {
            return bad("gpus and reps must be at least 1".into());
        }
        if cfg.variant != "auto" {
            AttnVariant::parse(&cfg.variant)
                .map_err(|e| GpuError::Config(format!("{path}: {e}")))?;
        }
        for (i, c) in cfg.case.iter().enumerate() {
            for s in &c.schedules {
                Schedule::parse(s)
                    .map_err(|e| GpuError::Config(format!("{path}: case {}: {e}", i + 1)))?;
            }
            if !["f16", "bf16"].contains(&c.dtype.as_str()) {
                return bad(format!(
                    "case {}: dtype `{}` (valid: f16, bf16)",
                    i + 1,
                    c.dtype
                ));
            }
            for &r in &c.ranks {
                for &kv in &c.kv_heads {
                    for &causal in &c.causal {
                        let shape = c.shape(r, kv, causal);
                        for s in &c.schedules {
                            let s = Schedule::parse(s).expect("checked");
                            Plan::new(s, shape, r).map_err(|e| {
                                GpuError::Config(format!("{path}: case {}: {e}", i + 1))
                            })?;
                        }
                    }
                }
                if cfg.gpus > 1 && r != cfg.gpus {
                    return bad(format!(
                        "case {}: {r} ranks on {} GPUs (use gpus = 1 or one rank per GPU)",
                        i + 1,
                        cfg.gpus
                    ));
                }
            }
        }
        Ok(cfg)
    }
}

impl RingCase {
    fn shape(&self, ranks: usize, kv_heads: usize, causal: bool) -> AttnShape {
        AttnShape {
            tokens: ranks * self.tokens_per_rank,
            heads: self.heads,
            kv_heads,
            head_dim: self.head_dim,
            causal,
            elem_bytes: 2,
        }
    }
}

/// CSV header of the rows [`run`] writes.
pub const CSV_HEADER: &str = "schedule,ranks,gpus,comm_priority,tokens,heads,kv_heads,head_dim,causal,dtype,variant,median_us,p10_us,p90_us,single_gpu_us,compute_only_us,step_compute_us,step_comm_us,step_comm_min_us,rel_err,lse_max_abs,device,smi";

/// CSV header of the link probe.
pub const PROBE_HEADER: &str =
    "bytes,one_way_us,both_ways_us,one_way_gbs,both_ways_gbs_per_direction,gpus,device";

/// Runs the link probe of `cfg` (empty text when it lists no sizes).
pub fn probe(cluster: &SpCluster, cfg: &RingBenchConfig) -> Result<String> {
    if cfg.probe_mb.is_empty() {
        return Ok(String::new());
    }
    let sizes: Vec<usize> = cfg
        .probe_mb
        .iter()
        .map(|m| ((m * 1e6) as usize).max(4) / 4 * 4)
        .collect();
    let mut csv = format!("{PROBE_HEADER}\n");
    for s in cluster.probe(&sizes, cfg.reps.max(5))? {
        csv.push_str(&format!(
            "{},{:.2},{:.2},{:.2},{:.2},{},{}\n",
            s.bytes,
            s.one_way_us,
            s.both_ways_us,
            s.bytes as f64 / s.one_way_us / 1e3,
            s.bytes as f64 / s.both_ways_us / 1e3,
            cluster.gpus.len(),
            cluster.gpus[0].info.name.replace(',', ";")
        ));
    }
    Ok(csv)
}

fn join(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Runs every case on `cluster`; `log` gets a line per case. Returns the CSV text.
pub fn run(
    cluster: &SpCluster,
    cfg: &RingBenchConfig,
    mut log: impl FnMut(&str),
) -> Result<String> {
    let gpu = &cluster.gpus[0];
    let variant = if cfg.variant == "auto" {
        AttnVariant::parse(if gpu.arch() == "sm_90a" {
            "wgmma-m128-n128-pipe"
        } else {
            "block-m64-n64"
        })?
    } else {
        AttnVariant::parse(&cfg.variant)?
    };
    let mut csv = format!("{CSV_HEADER}\n");
    let smi = nvidia_smi_state().replace(',', ";");
    let mut seed = 1000;
    for c in &cfg.case {
        let dtype = if c.dtype == "bf16" {
            Dtype::Bf16
        } else {
            Dtype::F16
        };
        for &ranks in &c.ranks {
            for &kv_heads in &c.kv_heads {
                for &causal in &c.causal {
                    let shape = c.shape(ranks, kv_heads, causal);
                    let p = AttnProblem {
                        batch: 1,
                        heads: shape.heads,
                        kv_heads,
                        n_q: shape.tokens,
                        n_kv: shape.tokens,
                        head_dim: shape.head_dim,
                        dtype,
                    };
                    seed += 1;
                    let host = HostAttn::random(&p, seed);
                    let mask = if causal {
                        MaskSpec::Causal
                    } else {
                        MaskSpec::Full
                    };
                    // Our kernel on one GPU over the whole sequence: the ideal to compare with.
                    let single = {
                        let mut h = Harness::new(gpu)?;
                        let mut dev = DeviceAttn::new(gpu, &p, &host)?;
                        let dm = DeviceMask::new(gpu, &mask, &p, variant)?;
                        let t: Timing = h.time(
                            &TimingConfig {
                                warmup: 1,
                                reps: cfg.reps,
                                flush_l2: true,
                                // As when results/gpu/ring_h100 was measured.
                                flush_mode: crate::harness::FlushMode::Write,
                            },
                            || attention::launch(gpu, &p, variant, &mut dev, &dm),
                        )?;
                        t.median_us
                    };
                    for s in &c.schedules {
                        let schedule =
                            Schedule::parse(s).map_err(|e| GpuError::Config(e.to_string()))?;
                        let plan = Plan::new(schedule, shape, ranks)
                            .map_err(|e| GpuError::Config(e.to_string()))?;
                        let mut sp =
                            SpRun::new(cluster, plan, dtype, variant, &host.q, &host.k, &host.v)?;
                        sp.run()?; // warm-up (kernel compilation, NCCL connections)
                        let mut runs = Vec::new();
                        for _ in 0..cfg.reps {
                            runs.push(sp.run()?);
                        }
                        // The last run's output, checked on sampled rows.
                        let (o, lse) = sp.output()?;
                        // Every row's fp64 reference costs O(tokens): fewer sampled rows when long.
                        let rows = ((1usize << 23) / shape.tokens).clamp(32, 256);
                        let chk = attention::check(&p, &mask, &host, &o, &lse, rows, seed);
                        if chk.unwritten > 0 {
                            return Err(GpuError::Check(format!(
                                "{s} ranks {ranks}: {} output elements never written",
                                chk.unwritten
                            )));
                        }
                        let times = Timing::from_samples(runs.iter().map(|r| r.total_us).collect());
                        let med = runs
                            .iter()
                            .min_by(|a, b| {
                                (a.total_us - times.median_us)
                                    .abs()
                                    .total_cmp(&(b.total_us - times.median_us).abs())
                            })
                            .expect("reps >= 1");
                        let step_compute: Vec<f64> = med
                            .compute_us
                            .iter()
                            .map(|s| s.iter().copied().fold(0.0, f64::max))
                            .collect();
                        let step_comm: Vec<f64> = med
                            .comm_us
                            .iter()
                            .map(|s| s.iter().copied().fold(0.0, f64::max))
                            .collect();
                        // The device that joined a transfer last sees its own time.
                        let step_comm_min: Vec<f64> = med
                            .comm_us
                            .iter()
                            .map(|s| s.iter().copied().fold(f64::INFINITY, f64::min))
                            .collect();
                        let line = format!(
                            "{s},{ranks},{},{},{},{},{kv_heads},{},{causal},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{},{},{},{:.3e},{:.3e},{},{}",
                            cluster.gpus.len(),
                            cfg.comm_priority,
                            shape.tokens,
                            shape.heads,
                            shape.head_dim,
                            dtype.name(),
                            variant.label(),
                            times.median_us,
                            times.p10_us,
                            times.p90_us,
                            single,
                            med.compute_only_us(),
                            join(&step_compute),
                            join(&step_comm),
                            join(&step_comm_min),
                            chk.out.relative(),
                            chk.lse_max_abs,
                            gpu.info.name.replace(',', ";"),
                            smi
                        );
                        log(&format!(
                            "{s:>18} ranks {ranks} kv {kv_heads:>2} causal {causal:<5} {:>9.1} us (single GPU {single:>8.1} us) err {:.2e}",
                            times.median_us,
                            chk.out.relative()
                        ));
                        csv.push_str(&line);
                        csv.push('\n');
                    }
                }
            }
        }
    }
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_files_are_checked_with_the_file_named() {
        let ok = "[[case]]\nschedules = [\"ring\", \"token_ring\"]\nranks = [2, 4]\ntokens_per_rank = 256\nheads = 8\nkv_heads = [8, 2]\nhead_dim = 128\ncausal = [true]\ndtype = \"bf16\"\n";
        let c = RingBenchConfig::parse(ok, "r.toml").unwrap();
        assert_eq!((c.gpus, c.reps, c.case.len()), (1, 5, 1));
        for (text, want) in [
            (ok.replace("\"ring\"", "\"tree\""), "valid: ring"),
            (ok.replace("bf16", "fp8"), "valid: f16, bf16"),
            (
                ok.replace("kv_heads = [8, 2]", "kv_heads = [3]"),
                "kv_heads",
            ),
            (
                ok.replace("heads = 8", "heads = 8\nwarps = 4"),
                "unknown field",
            ),
            (format!("gpus = 2\n{ok}"), "one rank per GPU"),
            (format!("probe_mb = [0.0]\n{ok}"), "probe_mb"),
        ] {
            let e = RingBenchConfig::parse(&text, "r.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains("r.toml") && e.contains(want), "{e}");
        }
    }
}

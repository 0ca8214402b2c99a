//! `archsweep ring ...`: sequence-parallel attention studies on the `ring.attention` model —
//! one scenario's timeline, the compute-bound crossover, and the validation against the
//! published figures.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use dse::model::Model;
use models::ring::{calibrate, study};
use models::ring::{CalibratedCompute, RingAttention};
use sim::ring::AttnShape;

/// Sequence-parallel attention commands.
#[derive(Subcommand)]
pub enum RingCmd {
    /// Simulate one scenario (the model's defaults with --set overrides) and write its
    /// per-interval timeline (CSV) and Gantt chart (SVG, PNG) into a new directory.
    Timeline {
        /// Parameter overrides, e.g. --set schedule=token_ring --set devices=4.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Output directory (must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// For H100 NVLink and a PCIe Gen4 box: the tokens per device from which each schedule is
    /// compute-bound (exposed communication under 5%).
    Crossover {
        /// Devices.
        #[arg(long, default_value_t = 8)]
        devices: usize,
        /// Query heads.
        #[arg(long, default_value_t = 32)]
        heads: usize,
        /// Key/value heads.
        #[arg(long, default_value_t = 8)]
        kv_heads: usize,
        /// Non-causal attention.
        #[arg(long)]
        non_causal: bool,
        /// Markdown table to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fit the simulator's link parameters to a multi-GPU ringbench run (its link probe) and
    /// the device's compute scale to its measured compute; report the simulator's error on
    /// every measured run.
    Calibrate {
        /// The ringbench CSV of the runs.
        #[arg(long, default_value = "results/ring/h200x2/ring.csv")]
        runs: PathBuf,
        /// The link probe written beside it.
        #[arg(long, default_value = "results/ring/h200x2/ring.links.csv")]
        links: PathBuf,
        /// Topology of the measured machine (see `archsweep list ring.attention`).
        #[arg(long, default_value = "mesh")]
        topology: String,
        /// Kernel latency calibration of the build the runs used (`archsweep gpu calibrate
        /// --write` format).
        #[arg(long, default_value = "results/ring/gpu_latency_before_pingpong.toml")]
        kernel_model: PathBuf,
        /// Markdown report to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The simulator against the published TokenRing and zigzag-Ring figures.
    Validate {
        /// Markdown table to write (never overwritten).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Measured sequence-parallel runs (ringbench CSV) to check the block compute against.
        #[arg(long, default_value = "results/ring/h100_degenerate/ring.csv")]
        measured: PathBuf,
        /// Kernel latency calibration of the build those runs used (`archsweep gpu calibrate
        /// --write` format).
        #[arg(long, default_value = "results/ring/gpu_latency_before_pingpong.toml")]
        kernel_model: PathBuf,
    },
}

pub(crate) fn write_new(path: &Path, text: &str) -> Result<()> {
    if path.exists() {
        bail!(
            "{} exists; results are never overwritten (choose another --out)",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Creates a new output directory; an existing one is refused, so results are never overwritten.
pub(crate) fn new_dir(out: &Path) -> Result<()> {
    if out.exists() {
        bail!(
            "{} exists; results are never overwritten (choose another --out)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

/// A kernel latency calibration from a file (`archsweep gpu calibrate --write` format).
fn kernel_model_at(path: &Path) -> Result<Arc<models::attention::latency::LatencyModel>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let m = models::attention::latency::parse(&text, &path.display().to_string())
        .map_err(anyhow::Error::msg)?;
    Ok(Arc::new(m))
}

pub(crate) fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Runs a ring command.
pub fn run(cmd: RingCmd) -> Result<()> {
    let lat = Arc::new(models::attention::latency::committed());
    match cmd {
        RingCmd::Timeline { set, out } => {
            let model = RingAttention::new();
            let point = model
                .info()
                .point_with(&set)
                .map_err(anyhow::Error::msg)
                .context("--set")?;
            let sc = model.scenario(&point)?;
            let res = sc.run(&CalibratedCompute::new(lat, sc.compute_scale))?;
            new_dir(&out)?;
            let t = &res.timeline;
            let mut csv = String::from("device,activity,step,start_us,end_us,peer,bytes\n");
            for i in &t.intervals {
                csv.push_str(&format!(
                    "{},{:?},{},{:.3},{:.3},{},{}\n",
                    i.dev,
                    i.activity,
                    i.step,
                    i.start_us,
                    i.end_us,
                    i.peer.map_or(String::new(), |p| p.to_string()),
                    i.bytes
                ));
            }
            write_new(&out.join("timeline.csv"), &csv)?;
            let chart = models::ring::gantt(&sc, t);
            let svg = dse::report::plots::render(
                &dse::report::plots::Figure::Gantt(&chart),
                (1100, (28 * sc.devices as u32 + 140).clamp(300, 1400)),
                &out.join("timeline.png"),
            )
            .map_err(anyhow::Error::msg)?;
            write_new(&out.join("timeline.svg"), &svg)?;
            let steps: Vec<String> = t.step_us().iter().map(|s| format!("{s:.1}")).collect();
            let summary = format!(
                "{}\ntotal {:.1} us; compute-only {:.1} us (efficiency {:.1}%); exposed communication {:.1} us; {:.1} MB moved, busiest link direction {:.1} MB\nsteps (us): {}\n",
                chart.title,
                t.total_us,
                t.compute_only_us(),
                100.0 * t.compute_only_us() / t.total_us,
                t.exposed_comm_us(),
                t.bytes_moved as f64 / 1e6,
                t.max_link_bytes() as f64 / 1e6,
                steps.join(" ")
            );
            write_new(
                &out.join("summary.txt"),
                &format!("{summary}command: {}\n", command_line()),
            )?;
            print!("{summary}");
            println!(
                "wrote {}/timeline.{{csv,svg,png}} and summary.txt",
                out.display()
            );
        }
        RingCmd::Crossover {
            devices,
            heads,
            kv_heads,
            non_causal,
            out,
        } => {
            let shape = AttnShape {
                tokens: 0,
                heads,
                kv_heads,
                head_dim: 128,
                causal: !non_causal,
                elem_bytes: 2,
            };
            let sizes: Vec<usize> = (9..=17).map(|k| 1usize << k).collect();
            let mut rows = Vec::new();
            for system in [study::h100_nvlink(), study::pcie_gen4_box()] {
                let compute = CalibratedCompute::new(lat.clone(), system.compute_scale);
                rows.extend(study::crossover(&system, devices, shape, &sizes, &compute)?);
            }
            let md = format!(
                "# Where each schedule becomes compute-bound\n\n{devices} devices, {heads} heads / {kv_heads} KV heads, d 128, {}; compute from the calibrated H100 kernel model. Cells: exposed communication as a share of the forward time, per tokens per device. Compute-bound: under {:.0}%.\n\n{}\nCommand: `{}`\n",
                if non_causal { "non-causal" } else { "causal" },
                100.0 * models::ring::COMPUTE_BOUND_FRACTION,
                study::crossover_markdown(&rows),
                command_line()
            );
            print!("{md}");
            if let Some(p) = out {
                write_new(&p, &md)?;
            }
        }
        RingCmd::Calibrate {
            runs,
            links,
            topology,
            kernel_model,
            out,
        } => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let measured = calibrate::parse_runs(&read(&runs)?, &runs.display().to_string())
                .map_err(anyhow::Error::msg)?;
            let (one, both) = calibrate::parse_links(&read(&links)?, &links.display().to_string())
                .map_err(anyhow::Error::msg)?;
            let topo = sim::ring::Topology::parse(&topology).context("--topology")?;
            let c = calibrate::calibrate(
                &measured,
                &one,
                &both,
                topo,
                kernel_model_at(&kernel_model)?,
            )
            .map_err(anyhow::Error::msg)?;
            let md = format!(
                "# Sequence-parallel attention simulator calibrated on {}\n\n{}\nCommand: `{}`\n",
                runs.display(),
                calibrate::markdown(&c),
                command_line()
            );
            print!("{md}");
            if let Some(p) = out {
                write_new(&p, &md)?;
            }
        }
        RingCmd::Validate {
            out,
            measured,
            kernel_model,
        } => {
            let checks = study::validation(lat);
            let text = std::fs::read_to_string(&measured)
                .with_context(|| format!("reading {}", measured.display()))?;
            let compute = CalibratedCompute::new(kernel_model_at(&kernel_model)?, 1.0);
            let kc = study::compute_checks(&text, &measured.display().to_string(), &compute)
                .map_err(anyhow::Error::msg)?;
            let mut table =
                String::from("| case | measured us | predicted us | error |\n|---|---|---|---|\n");
            for c in &kc {
                table.push_str(&format!(
                    "| {} | {:.1} | {:.1} | {:+.1}% |\n",
                    c.case,
                    c.measured_us,
                    c.predicted_us,
                    100.0 * c.rel_err()
                ));
            }
            let worst = kc.iter().map(|c| c.rel_err().abs()).fold(0.0, f64::max);
            let mean = kc.iter().map(|c| c.rel_err()).sum::<f64>() / kc.len().max(1) as f64;
            let md = format!(
                "# Sequence-parallel attention simulator against published figures\n\n{}\n## Block compute: calibrated kernel model against measured runs\n\nBusiest rank's attention + merge time in {} (one H100, degenerate mode), against the plan's blocks through the kernel model of that build ({}): mean error {:+.1}%, worst {:.1}%.\n\n{}\nCommand: `{}`\n",
                study::validation_markdown(&checks),
                measured.display(),
                kernel_model.display(),
                100.0 * mean,
                100.0 * worst,
                table,
                command_line()
            );
            print!("{md}");
            if let Some(p) = out {
                write_new(&p, &md)?;
            }
        }
    }
    Ok(())
}

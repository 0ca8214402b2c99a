//! `ringbench RING.toml OUT.csv`: sequence-parallel attention (Ring, zigzag Ring, TokenRing,
//! zigzag TokenRing) over NCCL on the GPUs the file names (one: degenerate mode), each case
//! checked against the fp64 reference and timed per step beside our single-GPU kernel. Built
//! on a CPU-only machine, run on the GPU machine. Exit status 2 on any error, 3 when no CUDA
//! device (or no NCCL) is present. With `probe_mb`, the NCCL link probe goes to
//! `OUT.links.csv`.

use gpu::ring::SpCluster;
use gpu::ring_bench::{probe, run, RingBenchConfig};
use gpu::GpuError;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: ringbench RING.toml OUT.csv");
        std::process::exit(2);
    }
    let code = match go(&args[1], &args[2]) {
        Ok(()) => 0,
        Err(GpuError::NoDevice(why)) => {
            eprintln!("ringbench: skipped: no CUDA device ({why})");
            3
        }
        Err(e) => {
            eprintln!("ringbench: error: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn go(cfg_path: &str, out_path: &str) -> gpu::Result<()> {
    let text = std::fs::read_to_string(cfg_path).map_err(|e| GpuError::Io {
        path: cfg_path.into(),
        source: e,
    })?;
    let cfg = RingBenchConfig::parse(&text, cfg_path)?;
    if std::path::Path::new(out_path).exists() {
        return Err(GpuError::Config(format!(
            "{out_path} exists: results are never overwritten; choose a new file"
        )));
    }
    let cluster = SpCluster::open(cfg.gpus, cfg.comm_priority)?;
    for g in &cluster.gpus {
        eprintln!("device: {}", g.describe());
    }
    let links = probe(&cluster, &cfg)?;
    if !links.is_empty() {
        let path = format!("{}.links.csv", out_path.trim_end_matches(".csv"));
        if std::path::Path::new(&path).exists() {
            return Err(GpuError::Config(format!(
                "{path} exists: results are never overwritten; choose a new file"
            )));
        }
        eprint!("{links}");
        std::fs::write(&path, links).map_err(|e| GpuError::Io {
            path: path.clone(),
            source: e,
        })?;
    }
    let csv = run(&cluster, &cfg, |line| eprintln!("{line}"))?;
    std::fs::write(out_path, csv).map_err(|e| GpuError::Io {
        path: out_path.into(),
        source: e,
    })?;
    eprintln!("wrote {out_path}");
    Ok(())
}

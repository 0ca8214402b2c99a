//! `ringbench RING.toml OUT.csv`: sequence-parallel attention (Ring, zigzag Ring, TokenRing,
//! zigzag TokenRing) over NCCL on the GPUs the file names (one: degenerate mode), each case
//! checked against the fp64 reference and timed per step beside our single-GPU kernel. Built
//! on a CPU-only machine, run on the GPU machine. Exit status 2 on any error, 3 when no CUDA
//! device (or no NCCL) is present. With `probe_mb`, the NCCL link probe goes to
//! `OUT.links.csv`.

use gpu::ring::SpCluster;
use gpu::ring_bench::{probe, run, RingBenchConfig};
use gpu::GpuError;

fn write(path: &str, text: &str) -> gpu::Result<()> {
    std::fs::write(path, text).map_err(|e| GpuError::Io {
        path: path.into(),
        source: e,
    })
}

fn main() {
    gpu::tool_main(
        "ringbench",
        "RING.toml OUT.csv",
        |text, cfg_path, out_path| {
            let cfg = RingBenchConfig::parse(text, cfg_path)?;
            let links_path = format!("{}.links.csv", out_path.trim_end_matches(".csv"));
            if !cfg.probe_mb.is_empty() && std::path::Path::new(&links_path).exists() {
                return Err(GpuError::Config(format!(
                    "{links_path} exists: results are never overwritten; choose a new file"
                )));
            }
            let cluster = SpCluster::open(cfg.gpus, cfg.comm_priority)?;
            for g in &cluster.gpus {
                eprintln!("device: {}", g.describe());
            }
            let links = probe(&cluster, &cfg)?;
            if !links.is_empty() {
                eprint!("{links}");
                write(&links_path, &links)?;
            }
            let csv = run(&cluster, &cfg, |line| eprintln!("{line}"))?;
            write(out_path, &csv)?;
            eprintln!("wrote {out_path}");
            Ok(())
        },
    )
}

//! `gpubench BENCH.toml OUT.csv`: runs the GPU bench cases of a TOML file (masked attention,
//! fp16 and PQ decode), checks every kernel against the fp64 reference, and writes one CSV row
//! per measured variant. Lean on purpose (no polars): it is built on a CPU-only machine and run
//! on the GPU machine. Exit status 2 on any error, 3 when no CUDA device is present.

use gpu::bench::{run, BenchConfig};
use gpu::device::Gpu;
use gpu::GpuError;

fn main() {
    gpu::tool_main(
        "gpubench",
        "BENCH.toml OUT.csv",
        |text, cfg_path, out_path| {
            let cfg = BenchConfig::parse(text, cfg_path)?;
            let gpu = Gpu::open(0)?;
            eprintln!("device: {}", gpu.describe());
            let csv = run(&gpu, &cfg, |line| eprintln!("{line}"))?;
            std::fs::write(out_path, csv).map_err(|e| GpuError::Io {
                path: out_path.into(),
                source: e,
            })?;
            eprintln!("wrote {out_path}");
            Ok(())
        },
    )
}

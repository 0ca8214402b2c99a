//! `lowbitbench BENCH.toml OUT.csv`: low-bit weight GEMV/GEMM (clustered 2/3/4-bit, INT8, nested
//! INT4, fp16) on the shapes, batches and formats of a TOML file; every tiling checked against
//! fp64 on fresh random inputs with a poisoned output, then timed; one CSV row per tiling. Exit
//! status 2 on any error, 3 when no CUDA device is present.

use gpu::device::Gpu;
use gpu::lowbit::{run, LowbitConfig};
use gpu::GpuError;

fn main() {
    gpu::tool_main(
        "lowbitbench",
        "BENCH.toml OUT.csv",
        |text, cfg_path, out_path| {
            let cfg = LowbitConfig::parse(text, cfg_path)?;
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

//! `gpubench BENCH.toml OUT.csv`: runs the GPU bench cases of a TOML file (masked attention,
//! fp16 and PQ decode), checks every kernel against the fp64 reference, and writes one CSV row
//! per measured variant. Lean on purpose (no polars): it is built on a CPU-only machine and run
//! on the GPU machine. Exit status 2 on any error, 3 when no CUDA device is present.

use gpu::bench::{run, BenchConfig};
use gpu::device::Gpu;
use gpu::GpuError;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: gpubench BENCH.toml OUT.csv");
        std::process::exit(2);
    }
    let (cfg_path, out_path) = (&args[1], &args[2]);
    let code = match go(cfg_path, out_path) {
        Ok(()) => 0,
        Err(GpuError::NoDevice(why)) => {
            eprintln!("gpubench: skipped: no CUDA device ({why})");
            3
        }
        Err(e) => {
            eprintln!("gpubench: error: {e}");
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
    let cfg = BenchConfig::parse(&text, cfg_path)?;
    if std::path::Path::new(out_path).exists() {
        return Err(GpuError::Config(format!(
            "{out_path} exists: results are never overwritten; choose a new file"
        )));
    }
    let gpu = Gpu::open(0)?;
    eprintln!("device: {}", gpu.describe());
    let csv = run(&gpu, &cfg, |line| eprintln!("{line}"))?;
    std::fs::write(out_path, csv).map_err(|e| GpuError::Io {
        path: out_path.into(),
        source: e,
    })?;
    eprintln!("wrote {out_path}");
    Ok(())
}

//! Measurement done right: warm-up, CUDA events around each repetition, the median of many
//! repetitions, an L2 flush before each (or rotating input sets), outputs poisoned before runs.
//!
//! The flush reads a buffer twice the L2 size by default ([`FlushMode::Read`]): the L2 is then
//! full of clean lines, as it is when a decode step's kernel starts after the previous layer's
//! weights went through. Flushing by writing ([`FlushMode::Write`]) leaves it full of dirty lines,
//! whose write-back is charged to the timed kernel: tens of microseconds at 50 MB, which inflates
//! short memory-bound kernels most.

use crate::device::Gpu;
use crate::kernels::Source;
use crate::{GpuError, Result};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

/// How to time.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingConfig {
    /// Untimed runs first (module load, caches, clocks).
    pub warmup: usize,
    /// Timed repetitions; the median is reported.
    pub reps: usize,
    /// Evict the L2 before every repetition (through a buffer twice its size).
    pub flush_l2: bool,
    /// How the L2 is evicted: `"read"` (clean lines left behind; the default) or `"write"`
    /// (dirty lines left behind, whose write-back the timed kernel pays for).
    pub flush_mode: FlushMode,
}

/// How [`Harness::flush_l2`] evicts the L2 cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlushMode {
    /// Read the flush buffer: the L2 ends full of clean lines.
    #[default]
    Read,
    /// Overwrite the flush buffer: the L2 ends full of dirty lines.
    Write,
}

impl FlushMode {
    /// The name used in bench files.
    pub fn name(self) -> &'static str {
        match self {
            FlushMode::Read => "read",
            FlushMode::Write => "write",
        }
    }
}

impl Default for TimingConfig {
    fn default() -> Self {
        TimingConfig {
            warmup: 10,
            reps: 50,
            flush_l2: true,
            flush_mode: FlushMode::Read,
        }
    }
}

/// Summary of the timed repetitions, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    /// Median.
    pub median_us: f64,
    /// 10th percentile.
    pub p10_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Fastest repetition.
    pub min_us: f64,
    /// Number of repetitions.
    pub reps: usize,
}

impl Timing {
    /// Summarises samples (any order).
    pub fn from_samples(mut us: Vec<f64>) -> Timing {
        us.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if us.is_empty() {
                f64::NAN
            } else {
                us[((us.len() - 1) as f64 * p).round() as usize]
            }
        };
        Timing {
            median_us: q(0.5),
            p10_us: q(0.1),
            p90_us: q(0.9),
            min_us: q(0.0),
            reps: us.len(),
        }
    }
}

/// Device-side helpers: poisoning, flushing, the copy-bandwidth probe.
pub struct Harness<'g> {
    gpu: &'g Gpu,
    flush: Option<CudaSlice<u32>>,
    /// Where the read flush stores its (never taken) result.
    sink: CudaSlice<u32>,
}

/// Launches `read_u4` over every 16-byte vector of `buf` (its store goes to `sink[0]`, and only
/// if a vector is all ones).
fn read_u4(gpu: &Gpu, buf: &CudaSlice<u32>, sink: &mut CudaSlice<u32>) -> Result<()> {
    let n = (buf.len() / 4) as u64;
    let f = gpu.function(Source::Copy, &[], "read_u4")?;
    #[allow(unsafe_code)]
    // SAFETY: read_u4 reads n 16-byte vectors of buf (4n words) and may write sink[0].
    unsafe {
        gpu.stream
            .launch_builder(&f)
            .arg(buf)
            .arg(&n)
            .arg(sink)
            .launch(grid_for(gpu, n))
            .map_err(|e| GpuError::driver("read_u4", e))?;
    }
    Ok(())
}

fn grid_for(gpu: &Gpu, n: u64) -> LaunchConfig {
    let blocks = (n.div_ceil(256)).min(gpu.info.sms as u64 * 16).max(1) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

impl<'g> Harness<'g> {
    /// A harness on `gpu`; allocates the L2 flush buffer (twice the L2 size).
    pub fn new(gpu: &'g Gpu) -> Result<Self> {
        let words = (2 * gpu.info.l2_bytes.max(1 << 20) / 4) as usize;
        let flush = gpu
            .stream
            .alloc_zeros::<u32>(words)
            .map_err(|e| GpuError::driver("allocating the L2 flush buffer", e))?;
        let sink = gpu
            .stream
            .alloc_zeros::<u32>(1)
            .map_err(|e| GpuError::driver("allocating the flush sink", e))?;
        Ok(Harness {
            gpu,
            flush: Some(flush),
            sink,
        })
    }

    /// Fills `buf` (viewed as 32-bit words) with `pattern`: all-ones is NaN in fp16, bf16 and
    /// fp32, so an element the kernel fails to write is caught.
    pub fn poison<T>(&self, buf: &mut CudaSlice<T>, pattern: u32) -> Result<()> {
        let bytes = buf.num_bytes() as u64;
        if !bytes.is_multiple_of(4) {
            return Err(GpuError::Check(format!(
                "cannot poison a buffer of {bytes} bytes"
            )));
        }
        let n = bytes / 4;
        let f = self.gpu.function(Source::Copy, &[], "fill_u32")?;
        #[allow(unsafe_code)]
        // SAFETY: fill_u32 writes exactly n 32-bit words into buf, which holds n words.
        unsafe {
            let mut view = buf.as_view_mut();
            let mut words = view
                .transmute_mut::<u32>(n as usize)
                .ok_or_else(|| GpuError::Check("poison: buffer view".into()))?;
            self.gpu
                .stream
                .launch_builder(&f)
                .arg(&mut words)
                .arg(&pattern)
                .arg(&n)
                .launch(grid_for(self.gpu, n))
                .map_err(|e| GpuError::driver("fill_u32", e))?;
        }
        Ok(())
    }

    /// Evicts the L2 cache through a buffer twice its size, by reading or by overwriting it.
    pub fn flush_l2(&mut self, mode: FlushMode) -> Result<()> {
        let Some(mut buf) = self.flush.take() else {
            return Err(GpuError::Check("the L2 flush buffer is in use".into()));
        };
        let r = match mode {
            FlushMode::Write => self.poison(&mut buf, 0x5a5a_5a5a),
            FlushMode::Read => self.read_all(&buf),
        };
        self.flush = Some(buf);
        r
    }

    /// Reads every word of `buf` (the store to the sink depends on all of them, so no load can
    /// be dropped, and it never happens: the buffer holds no all-ones word).
    fn read_all(&mut self, buf: &CudaSlice<u32>) -> Result<()> {
        read_u4(self.gpu, buf, &mut self.sink)
    }

    /// Times a plain read of `bytes` (rounded up to 16) with `read_u4`, under `cfg` (the same
    /// warm-up, repetitions and L2 flush as a kernel): what reading a kernel's bytes alone
    /// costs, launch included. The buffer is zeroed, so the sink is never written.
    pub fn read_time(&mut self, bytes: usize, cfg: &TimingConfig) -> Result<Timing> {
        let gpu = self.gpu;
        let buf = gpu
            .stream
            .alloc_zeros::<u32>(bytes.div_ceil(16).max(1) * 4)
            .map_err(|e| GpuError::driver("allocating the read buffer", e))?;
        let mut sink = gpu
            .stream
            .alloc_zeros::<u32>(1)
            .map_err(|e| GpuError::driver("allocating the read sink", e))?;
        self.time(cfg, || read_u4(gpu, &buf, &mut sink))
    }

    /// Times `run` (which only enqueues work on the GPU's stream): `warmup` untimed calls, then
    /// `reps` calls each bracketed by CUDA events, optionally after an L2 flush.
    pub fn time(
        &mut self,
        cfg: &TimingConfig,
        mut run: impl FnMut() -> Result<()>,
    ) -> Result<Timing> {
        for _ in 0..cfg.warmup {
            run()?;
        }
        self.gpu.sync()?;
        let mut samples = Vec::with_capacity(cfg.reps);
        let ev = |_| {
            self.gpu
                .ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| GpuError::driver("creating an event", e))
        };
        let starts: Vec<_> = (0..cfg.reps).map(ev).collect::<Result<_>>()?;
        let ends: Vec<_> = (0..cfg.reps).map(ev).collect::<Result<_>>()?;
        for i in 0..cfg.reps {
            if cfg.flush_l2 {
                self.flush_l2(cfg.flush_mode)?;
            }
            starts[i]
                .record(&self.gpu.stream)
                .map_err(|e| GpuError::driver("event record", e))?;
            run()?;
            ends[i]
                .record(&self.gpu.stream)
                .map_err(|e| GpuError::driver("event record", e))?;
        }
        self.gpu.sync()?;
        for i in 0..cfg.reps {
            let ms = starts[i]
                .elapsed_ms(&ends[i])
                .map_err(|e| GpuError::driver("event elapsed time", e))?;
            samples.push(ms as f64 * 1e3);
        }
        Ok(Timing::from_samples(samples))
    }

    /// Measures the device-to-device copy bandwidth (bytes read + written per second) over a
    /// buffer of `bytes`: the ceiling memory-bound kernels are quoted against.
    pub fn copy_bandwidth(&mut self, bytes: usize, cfg: &TimingConfig) -> Result<(f64, Timing)> {
        let n = (bytes / 16) as u64;
        let src = self
            .gpu
            .stream
            .alloc_zeros::<u32>(n as usize * 4)
            .map_err(|e| GpuError::driver("alloc copy src", e))?;
        let mut dst = self
            .gpu
            .stream
            .alloc_zeros::<u32>(n as usize * 4)
            .map_err(|e| GpuError::driver("alloc copy dst", e))?;
        let f = self.gpu.function(Source::Copy, &[], "copy_u4")?;
        let gpu = self.gpu;
        let cfg_launch = LaunchConfig {
            grid_dim: (gpu.info.sms * 8, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let t = self.time(cfg, || {
            #[allow(unsafe_code)]
            // SAFETY: copy_u4 reads and writes n 16-byte vectors; both buffers hold 4n words.
            unsafe {
                gpu.stream
                    .launch_builder(&f)
                    .arg(&src)
                    .arg(&mut dst)
                    .arg(&n)
                    .launch(cfg_launch)
                    .map_err(|e| GpuError::driver("copy_u4", e))?;
            }
            Ok(())
        })?;
        Ok((2.0 * (n * 16) as f64 / (t.median_us * 1e-6), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_mode_defaults_to_read_and_names_the_choices() {
        let t: TimingConfig = toml::from_str("reps = 3").unwrap();
        assert!(t.flush_l2 && t.flush_mode == FlushMode::Read);
        let t: TimingConfig = toml::from_str("flush_mode = \"write\"").unwrap();
        assert_eq!(t.flush_mode.name(), "write");
        let e = toml::from_str::<TimingConfig>("flush_mode = \"dirty\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dirty") && e.contains("read") && e.contains("write"),
            "{e}"
        );
    }

    #[test]
    fn timing_summary_is_order_statistics() {
        let t = Timing::from_samples(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(t.median_us, 3.0);
        assert_eq!(t.min_us, 1.0);
        assert_eq!(t.reps, 5);
        assert!(t.p10_us <= t.median_us && t.median_us <= t.p90_us);
    }
}

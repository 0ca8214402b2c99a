//! The CUDA device: opening it (or saying why not), its properties, and compiled kernels.

use crate::kernels::{KernelKey, Source};
use crate::{GpuError, Result};
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What we record about the device with every measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub sms: u32,
    /// L2 cache size in bytes.
    pub l2_bytes: u64,
    /// Largest dynamic shared memory a block may opt in to, in bytes.
    pub smem_optin_bytes: u32,
    /// Device memory in bytes.
    pub memory_bytes: u64,
    /// CUDA version the driver supports, e.g. 13000.
    pub driver_cuda_version: i32,
    /// Driver version, SM and memory clocks and power state as `nvidia-smi` reports them at open
    /// time (empty where `nvidia-smi` is absent).
    pub smi: String,
}

/// An opened device with one stream and a cache of compiled kernels.
pub struct Gpu {
    /// The CUDA context.
    pub ctx: Arc<CudaContext>,
    /// The stream every launch goes to.
    pub stream: Arc<CudaStream>,
    /// Device properties.
    pub info: DeviceInfo,
    modules: Mutex<HashMap<String, Arc<CudaModule>>>,
}

/// Why GPU work cannot run here, or `None` when a CUDA device can be opened.
pub fn unavailable_reason() -> Option<String> {
    match Gpu::open(0) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// Queries `nvidia-smi` for the driver version and current clocks (empty if absent).
pub fn nvidia_smi_state() -> String {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=driver_version,clocks.sm,clocks.max.sm,clocks.mem,pstate,temperature.gpu,power.draw",
            "--format=csv,noheader",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        _ => String::new(),
    }
}

impl Gpu {
    /// Opens device `ordinal`, or says why not ([`GpuError::NoDevice`]) without panicking.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        // SAFETY-free probes: cudarc's loaders panic when the library is missing, so look first.
        if !cuda_present() {
            return Err(GpuError::NoDevice(
                "the CUDA driver library (libcuda.so) is not installed".into(),
            ));
        }
        let count = CudaContext::device_count().map_err(|e| GpuError::NoDevice(e.to_string()))?;
        if count as usize <= ordinal {
            return Err(GpuError::NoDevice(format!(
                "{count} CUDA devices, asked for #{ordinal}"
            )));
        }
        if !nvrtc_present() {
            return Err(GpuError::NoDevice(
                "NVRTC (libnvrtc.so.13) is not installed: kernels cannot be compiled".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| GpuError::NoDevice(e.to_string()))?;
        let attr = |a: Attr| {
            ctx.attribute(a)
                .map_err(|e| GpuError::driver("device attribute", e))
        };
        let info = DeviceInfo {
            name: ctx.name().map_err(|e| GpuError::driver("device name", e))?,
            compute_capability: ctx
                .compute_capability()
                .map_err(|e| GpuError::driver("compute capability", e))?,
            sms: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32,
            l2_bytes: attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)? as u64,
            smem_optin_bytes: attr(Attr::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?
                as u32,
            memory_bytes: ctx
                .total_mem()
                .map_err(|e| GpuError::driver("total memory", e))? as u64,
            driver_cuda_version: driver_version(),
            smi: nvidia_smi_state(),
        };
        let stream = ctx.default_stream();
        Ok(Gpu {
            ctx,
            stream,
            info,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// A zero-filled device buffer of `n` elements (at least one), `what` naming it in errors.
    pub fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
        what: &str,
    ) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros::<T>(n.max(1))
            .map_err(|e| GpuError::driver(format!("allocating {what}"), e))
    }

    /// The NVRTC target for this device: `sm_90a` on Hopper (for its own instructions), else
    /// `sm_XY`.
    pub fn arch(&self) -> String {
        let (maj, min) = self.info.compute_capability;
        if (maj, min) == (9, 0) {
            "sm_90a".into()
        } else {
            format!("sm_{maj}{min}")
        }
    }

    /// The function `name` from `source` compiled with `defines` (cached per source and defines).
    pub fn function(
        &self,
        source: Source,
        defines: &[(&str, i64)],
        name: &str,
    ) -> Result<CudaFunction> {
        let key = KernelKey::new(source, defines);
        let label = key.label();
        let module = {
            let mut cache = self.modules.lock().expect("kernel cache lock");
            match cache.get(&label) {
                Some(m) => m.clone(),
                None => {
                    let ptx = key.compile(&self.arch())?;
                    let m = self
                        .ctx
                        .load_module(ptx)
                        .map_err(|e| GpuError::driver(format!("loading {label}"), e))?;
                    cache.insert(label.clone(), m.clone());
                    m
                }
            }
        };
        module
            .load_function(name)
            .map_err(|e| GpuError::driver(format!("function {name} in {label}"), e))
    }

    /// Waits for all work on the stream, surfacing asynchronous kernel errors.
    pub fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| GpuError::driver("synchronize", e))
    }

    /// One line describing the device for logs and CSV files.
    pub fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} (sm_{}{}, {} SMs, {} MB L2, CUDA driver {}.{}; nvidia-smi: {})",
            i.name,
            i.compute_capability.0,
            i.compute_capability.1,
            i.sms,
            i.l2_bytes >> 20,
            i.driver_cuda_version / 1000,
            (i.driver_cuda_version % 1000) / 10,
            if i.smi.is_empty() { "n/a" } else { &i.smi }
        )
    }
}

#[allow(unsafe_code)]
fn cuda_present() -> bool {
    // SAFETY: only tries to dlopen the driver library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether NVRTC can be loaded (kernels can be compiled, with or without a device).
#[allow(unsafe_code)]
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen NVRTC.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Whether NCCL can be loaded (`libnccl.so` on the library path; the PyPI wheel
/// nvidia-nccl-cu13 ships `libnccl.so.2`, which needs a `libnccl.so` link beside it).
#[allow(unsafe_code)]
pub fn nccl_present() -> bool {
    // SAFETY: only tries to dlopen NCCL.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

#[allow(unsafe_code)]
fn driver_version() -> i32 {
    let mut v = 0i32;
    // SAFETY: writes one int; the library is loaded (checked in `open`).
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if r == cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        v
    } else {
        0
    }
}

//! CUDA kernels (NVRTC via cudarc), the measurement harness and the lean bench binary. Nothing has landed yet; it arrives with the GPU kernel issues.
#![deny(missing_docs)]

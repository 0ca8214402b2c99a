// Device-to-device copy with 16-byte accesses: the measured memory-bandwidth ceiling.
extern "C" __global__ void copy_u4(const uint4* __restrict__ src, uint4* __restrict__ dst, unsigned long long n) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = src[i];
    }
}

// Fills a buffer with a 32-bit pattern: output poisoning and L2 flushing.
extern "C" __global__ void fill_u32(u32* __restrict__ dst, u32 value, unsigned long long n) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = value;
    }
}

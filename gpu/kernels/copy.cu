// Device-to-device copy with 16-byte accesses: the measured memory-bandwidth ceiling.
extern "C" __global__ void copy_u4(const uint4* __restrict__ src, uint4* __restrict__ dst, unsigned long long n) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = src[i];
    }
}

// Reads n 16-byte vectors: the clean L2 flush. The store depends on every word and happens only
// if one of them is all ones (the flush buffer never holds one), so no load can be dropped.
extern "C" __global__ void read_u4(const uint4* __restrict__ src, unsigned long long n, u32* __restrict__ sink) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    u32 all = 0xffffffffu;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint4 v = src[i];
        all &= v.x | v.y | v.z | v.w;
    }
    if (all == 0xffffffffu && n > 0 && blockIdx.x * blockDim.x + threadIdx.x < n) sink[0] = all;
}

// Fills a buffer with a 32-bit pattern: output poisoning and L2 flushing.
extern "C" __global__ void fill_u32(u32* __restrict__ dst, u32 value, unsigned long long n) {
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        dst[i] = value;
    }
}

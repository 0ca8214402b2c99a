// Shared device helpers for every archsweep kernel. NVRTC compiles these sources with no
// CUDA headers: half and bfloat16 travel as raw 16-bit words and are converted with PTX.
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned char u8;

#define NEG_INF (__int_as_float(0xff800000))

// One 16-bit element (fp16 or bf16, chosen by IS_BF16) to fp32.
__device__ __forceinline__ float elem_to_f32(u16 x) {
#if IS_BF16
    return __int_as_float(((u32)x) << 16);
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x));
    return f;
#endif
}

// Two fp32 values to a packed pair: `lo` in the low half, `hi` in the high half.
__device__ __forceinline__ u32 pack2(float lo, float hi) {
    u32 r;
#if IS_BF16
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#endif
    return r;
}

__device__ __forceinline__ u16 f32_to_elem(float x) {
    return (u16)(pack2(x, 0.0f) & 0xffff);
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Unpacks 8 consecutive elements held in a 16-byte vector.
__device__ __forceinline__ void unpack8(uint4 v, float* out) {
    u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = elem_to_f32((u16)(w[i] & 0xffff));
        out[2 * i + 1] = elem_to_f32((u16)(w[i] >> 16));
    }
}

__device__ __forceinline__ u32 smem_addr(const void* p) {
    return (u32)__cvta_generic_to_shared(p);
}

// 16-byte asynchronous copy global -> shared; `bytes` = 0 fills the destination with zeros.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes));
}
// 16-byte asynchronous copy global -> shared through L1 (data that other blocks of the SM read
// too, such as a GEMV's activations).
__device__ __forceinline__ void cp_async16_ca(void* dst, const void* src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
// 8-byte asynchronous copy global -> shared (through L1).
__device__ __forceinline__ void cp_async8(void* dst, const void* src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Merge of two partial softmax results in natural-log units (the TokenRing/flash-decoding rule).
__device__ __forceinline__ float lse_merge(float a, float b) {
    float m = fmaxf(a, b);
    if (m == NEG_INF) return NEG_INF;
    return m + logf(expf(a - m) + expf(b - m));
}

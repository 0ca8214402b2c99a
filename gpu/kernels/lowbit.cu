// Low-bit weight GEMV / small-batch GEMM: y[b][n] = sum_k W[n][k] x[b][k], fp16 activations,
// fp32 output. Weight formats (FMT):
//   1 LUT2, 2 LUT3, 3 LUT4: clustered codes with a per-row table of 2^bits fp16 centroids
//   4 INT8: per-row scale, q8 = (hu - 8) * 16 + lo, the high nibbles hu and low nibbles lo in
//           two separate 4-bit planes
//   5 INT4: the high-nibble plane of the INT8 weights alone (nested: no second copy), value
//           (hu - 8 + 0.5) * 16 * scale
//   6 FP16: plain fp16 rows (our own baseline)
// Planes are row-major, 32-bit words along k:
//   P2 (2-bit codes, 16 per word, code k at bits 2*(k%16));
//   P1 (bit 2 of 3-bit codes, 32 per word, bit k%32);
//   P4 (4-bit values, 8 per word, value k at bits 4*(k%8)).
// Each thread takes 64 consecutive k per step. LUT formats look codes up in pairs from a per-warp
// table of fp16 pairs in shared memory (one lookup, one fp16x2 FMA per two weights); INT formats
// turn bytes into fp16 with the 0x6400 magic number (one PRMT per two weights). Products are
// summed in fp16x2 over a step (x is pre-scaled so nothing overflows), then in fp32.
// Grid: x = blocks of 4 warps with ROWS rows each, y = split of k into chunks of KC; with more
// than one chunk the outputs are accumulated atomically (the launcher zeroes them first).

#ifndef FMT
#define FMT 1
#endif
#ifndef BATCH
#define BATCH 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
#define WARPS 4

#if FMT == 1
#define BITS 2
#elif FMT == 2
#define BITS 3
#elif FMT == 3
#define BITS 4
#else
#define BITS 0
#endif
#define IS_LUT (FMT <= 3)
#define IS_INT (FMT == 4 || FMT == 5)
// Pair-table entries: two codes per index.
#define PAIRS (1 << (2 * BITS))
// x is held as x * XSCALE in shared memory for the INT formats (keeps fp16 sums in range).
#if FMT == 4
#define XSCALE (1.0f / 128.0f)
#elif FMT == 5
#define XSCALE (1.0f / 8.0f)
#else
#define XSCALE 1.0f
#endif

__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) {
    u32 d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ u32 hsub2(u32 a, u32 b) {
    u32 d;
    asm("sub.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ float h2sum(u32 a) {
    float lo, hi;
    asm("cvt.f32.f16 %0, %1;" : "=f"(lo) : "h"((u16)(a & 0xffff)));
    asm("cvt.f32.f16 %0, %1;" : "=f"(hi) : "h"((u16)(a >> 16)));
    return lo + hi;
}
__device__ __forceinline__ float h2f(u16 a) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(a));
    return f;
}
__device__ __forceinline__ u32 prmt(u32 a, u32 b, u32 s) {
    u32 d;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(s));
    return d;
}
__device__ __forceinline__ u32 bfe(u32 a, u32 pos, u32 len) {
    u32 d;
    asm("bfe.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(pos), "r"(len));
    return d;
}

#if IS_INT
// Four bytes b0..b3 (unsigned 0..255) as two fp16x2 words of (1024 + b).
__device__ __forceinline__ void bytes_to_h2(u32 w, u32& lo, u32& hi) {
    lo = prmt(w, 0x64646464u, 0x7170);   // w's bytes 0 and 1, each under a 0x64
    hi = prmt(w, 0x64646464u, 0x7372);
}
#endif

extern "C" __global__ void __launch_bounds__(WARPS * 32) lowbit_gemv(
    const u32* __restrict__ pa,       // P2 (LUT2, LUT3) | P4 (LUT4) | hi plane (INT) | fp16 rows
    const u32* __restrict__ pb,       // P1 (LUT3) | lo plane (INT8)
    const u16* __restrict__ tables,   // LUT: 2^BITS fp16 centroids per row
    const float* __restrict__ scales, // INT: per-row scale
    const u16* __restrict__ x,        // [BATCH][K] fp16
    float* __restrict__ y,            // [BATCH][N]
    int n_rows, int k, int kc) {
    extern __shared__ __align__(16) unsigned char smem[];
    u16* xs = (u16*)smem;                                   // [BATCH][kc], fp16
    u32* pair = (u32*)(smem + BATCH * kc * 2);              // [WARPS][PAIRS] fp16x2
    __shared__ float xsum[BATCH];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int k0 = blockIdx.y * kc;
    const int klen = min(kc, k - k0);
    // Stage x (pre-scaled; the INT formats take each 8 in the order 0,2,4,6,1,3,5,7 to match
    // their nibble planes).
    for (int i = threadIdx.x; i < BATCH * klen; i += WARPS * 32) {
        int b = i / klen, kk = i - b * klen;
        float v = h2f(x[(size_t)b * k + k0 + kk]) * XSCALE;
        int dst = kk;
#if IS_INT
        int j = kk & 7;
        dst = (kk & ~7) + ((j & 1) ? 4 + (j >> 1) : (j >> 1));
#endif
        xs[b * kc + dst] = f32_to_elem(v);
    }
    if (threadIdx.x < BATCH) xsum[threadIdx.x] = 0.0f;
    __syncthreads();
#if FMT == 5
    // Sum of x over the chunk (the +0.5 of the nested INT4 values).
    for (int b = 0; b < BATCH; ++b) {
        float s = 0.0f;
        for (int i = threadIdx.x; i < klen; i += WARPS * 32) s += h2f(xs[b * kc + i]);
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) atomicAdd(&xsum[b], s);
    }
    __syncthreads();
#endif
    const int steps = klen / 64;
    for (int r = 0; r < ROWS; ++r) {
        const int n = (blockIdx.x * WARPS + warp) * ROWS + r;
        if (n >= n_rows) break;
#if IS_LUT
        u32* pt = pair + warp * PAIRS;
        {
            const u16* t = tables + (size_t)n * (1 << BITS);
            for (int i = lane; i < PAIRS; i += 32) {
#if BITS == 3
                int c0 = (i & 3) | (((i >> 4) & 1) << 2);
                int c1 = ((i >> 2) & 3) | (((i >> 5) & 1) << 2);
#else
                int c0 = i & ((1 << BITS) - 1);
                int c1 = i >> BITS;
#endif
                pt[i] = (u32)t[c0] | ((u32)t[c1] << 16);
            }
            __syncwarp();
        }
#endif
        float acc[BATCH];
#pragma unroll
        for (int b = 0; b < BATCH; ++b) acc[b] = 0.0f;
        for (int s = lane; s < steps; s += 32) {
            const int kk = s * 64;               // within the chunk
            const size_t kg = (size_t)k0 + kk;   // within the row
            u32 hacc[BATCH];
#pragma unroll
            for (int b = 0; b < BATCH; ++b) hacc[b] = 0u;
#if FMT == 1 || FMT == 2
            const uint4 w2 = *(const uint4*)(pa + ((size_t)n * k + kg) / 16);
#if FMT == 2
            const uint2 w1 = *(const uint2*)(pb + ((size_t)n * k + kg) / 32);
#endif
            const u32 ws[4] = {w2.x, w2.y, w2.z, w2.w};
#pragma unroll
            for (int q = 0; q < 4; ++q) {         // 16 weights per word
#if FMT == 2
                const u32 hb = (q < 2 ? w1.x : w1.y) >> ((q & 1) * 16);
#endif
#pragma unroll
                for (int p = 0; p < 8; ++p) {     // pairs
                    u32 idx = bfe(ws[q], 4 * p, 4);
#if FMT == 2
                    idx |= bfe(hb, 2 * p, 2) << 4;
#endif
                    const u32 wv = pt[idx];
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) {
                        const u32 xv = *(const u32*)(xs + b * kc + kk + q * 16 + p * 2);
                        hacc[b] = hfma2(wv, xv, hacc[b]);
                    }
                }
            }
#elif FMT == 3
            const uint4* src = (const uint4*)(pa + ((size_t)n * k + kg) / 8);
            const uint4 a0 = src[0], a1 = src[1];
            const u32 ws[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
#pragma unroll
            for (int q = 0; q < 8; ++q) {         // 8 weights per word
#pragma unroll
                for (int p = 0; p < 4; ++p) {
                    const u32 wv = pt[bfe(ws[q], 8 * p, 8)];
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) {
                        const u32 xv = *(const u32*)(xs + b * kc + kk + q * 8 + p * 2);
                        hacc[b] = hfma2(wv, xv, hacc[b]);
                    }
                }
            }
#elif IS_INT
            const uint4* hs = (const uint4*)(pa + ((size_t)n * k + kg) / 8);
            const uint4 h0 = hs[0], h1 = hs[1];
            const u32 hw[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
#if FMT == 4
            const uint4* ls = (const uint4*)(pb + ((size_t)n * k + kg) / 8);
            const uint4 l0 = ls[0], l1 = ls[1];
            const u32 lw[8] = {l0.x, l0.y, l0.z, l0.w, l1.x, l1.y, l1.z, l1.w};
            const u32 bias = 0x64806480u;   // 1152 = 1024 + 128 in both halves
#else
            const u32 bias = 0x64086408u;   // 1032 = 1024 + 8
#endif
#pragma unroll
            for (int q = 0; q < 8; ++q) {         // 8 weights per word: even ones, then odd
#if FMT == 4
                const u32 ev = ((hw[q] & 0x0f0f0f0fu) << 4) | (lw[q] & 0x0f0f0f0fu);
                const u32 od = (hw[q] & 0xf0f0f0f0u) | ((lw[q] >> 4) & 0x0f0f0f0fu);
#else
                const u32 ev = hw[q] & 0x0f0f0f0fu;
                const u32 od = (hw[q] >> 4) & 0x0f0f0f0fu;
#endif
                u32 w[4];
                bytes_to_h2(ev, w[0], w[1]);
                bytes_to_h2(od, w[2], w[3]);
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const u32 wv = hsub2(w[j], bias);
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) {
                        const u32 xv = *(const u32*)(xs + b * kc + kk + q * 8 + j * 2);
                        hacc[b] = hfma2(wv, xv, hacc[b]);
                    }
                }
            }
#else  // FP16
            const uint4* src = (const uint4*)(pa + ((size_t)n * k + kg) / 2);
#pragma unroll
            for (int q = 0; q < 8; ++q) {
                const uint4 a = src[q];
                const u32 ws[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
                for (int j = 0; j < 4; ++j) {
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) {
                        const u32 xv = *(const u32*)(xs + b * kc + kk + q * 8 + j * 2);
                        hacc[b] = hfma2(ws[j], xv, hacc[b]);
                    }
                }
            }
#endif
#pragma unroll
            for (int b = 0; b < BATCH; ++b) acc[b] += h2sum(hacc[b]);
        }
#pragma unroll
        for (int b = 0; b < BATCH; ++b) {
            float v = acc[b];
            for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            acc[b] = v;
        }
        if (lane == 0) {
#if FMT == 4
            const float sc = scales[n] / XSCALE;
#elif FMT == 5
            const float sc = 16.0f * scales[n] / XSCALE;
#else
            const float sc = 1.0f;
#endif
#pragma unroll
            for (int b = 0; b < BATCH; ++b) {
                float v = acc[b];
#if FMT == 5
                v += 0.5f * xsum[b];
#endif
                v *= sc;
                if (gridDim.y == 1) {
                    y[(size_t)b * n_rows + n] = v;
                } else {
                    atomicAdd(&y[(size_t)b * n_rows + n], v);
                }
            }
        }
    }
}

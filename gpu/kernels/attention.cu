// Masked multi-head attention, prefill. Compile-time parameters (NVRTC -D):
//   HEAD_DIM (64 | 128), NWARPS (BLOCK_M = 16 * NWARPS query rows per block), BLOCK_N (keys per
//   tile, multiple of 16), IS_BF16 (0: fp16, 1: bf16).
// Layouts: Q, O [B, H, NQ, D]; K, V [B, HKV, NKV, D]; LSE [B, H, NQ] fp32 in natural-log units.
//
// attn_block: flash-attention-2 style (tensor-core mma.sync m16n8k16, fp32 accumulation, online
// softmax in base 2). The mask arrives in one representation: per query tile, a list of key tiles
// (entry = tile << 1 | partial), and for partial tiles the per-column allowed row range
// [col_lo[j], col_hi[j]). Empty tiles are never visited; element masking only on partial ones.
// attn_rows: the row-wise variant for very sparse masks: one warp per query row walks the row's
// allowed key indices (CSR), CUDA cores only.

#define BLOCK_M (16 * NWARPS)
#define NTHREADS (32 * NWARPS)
#define KSTEPS (HEAD_DIM / 16)
#define NTILES (BLOCK_N / 8)
#define DTILES (HEAD_DIM / 8)
#define CHUNKS (HEAD_DIM / 8)
#define LN2 0.69314718055994530942f

// Element offset of (row, 8-element chunk) in a swizzled tile: chunk ^ (row % 8) spreads the
// eight rows an ldmatrix reads over all 32 banks.
__device__ __forceinline__ int swz(int row, int chunk) {
    return row * HEAD_DIM + ((chunk ^ (row & 7)) << 3);
}

template <int ROWS>
__device__ __forceinline__ void load_tile(u16* s, const u16* g, int row0, int nvalid) {
    for (int i = threadIdx.x; i < ROWS * CHUNKS; i += NTHREADS) {
        int r = i / CHUNKS, c = i % CHUNKS;
        int gr = row0 + r;
        bool ok = gr < nvalid;
        cp_async16(s + swz(r, c), g + (size_t)(ok ? gr : 0) * HEAD_DIM + c * 8, ok ? 16 : 0);
    }
}

__device__ __forceinline__ void ldsm_x4(u32& r0, u32& r1, u32& r2, u32& r3, const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_t(u32& r0, u32& r1, u32& r2, u32& r3, const u16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void mma16816(float* c, const u32* a, u32 b0, u32 b1) {
#if IS_BF16
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

#include_softmax

extern "C" __global__ void __launch_bounds__(NTHREADS)
attn_block(const u16* __restrict__ Q, const u16* __restrict__ K, const u16* __restrict__ V,
           u16* __restrict__ O, float* __restrict__ LSE, int H, int HKV, int NQ, int NKV,
           float scale_log2, const int* __restrict__ tile_ptr, const int* __restrict__ tile_idx,
           const int* __restrict__ col_lo, const int* __restrict__ col_hi, int mask_batched) {
    extern __shared__ __align__(128) u16 smem[];
    u16* sQ = smem;
    u16* sK = sQ + BLOCK_M * HEAD_DIM;
    u16* sV = sK + 2 * BLOCK_N * HEAD_DIM;
    // Heaviest query tiles (most key tiles under causal-like masks) first: shorter tail.
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hk = h / (H / HKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int mb = mask_batched ? b : 0;
    const int list = mb * gridDim.x + qt;
    const int beg = tile_ptr[list], end = tile_ptr[list + 1];
    const size_t qoff = (size_t)(b * H + h) * NQ * HEAD_DIM;
    const size_t kvoff = (size_t)(b * HKV + hk) * NKV * HEAD_DIM;
    const int q0 = qt * BLOCK_M;
    const int* lo = col_lo + (size_t)mb * NKV;
    const int* hi = col_hi + (size_t)mb * NKV;

    float o[DTILES][4];
#pragma unroll
    for (int d = 0; d < DTILES; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float m_r[2] = {NEG_INF, NEG_INF}, l_r[2] = {0.f, 0.f};
    u32 qf[KSTEPS][4];

    load_tile<BLOCK_M>(sQ, Q + qoff, q0, NQ);
    if (beg < end) {
        int kt = tile_idx[beg] >> 1;
        load_tile<BLOCK_N>(sK, K + kvoff, kt * BLOCK_N, NKV);
        load_tile<BLOCK_N>(sV, V + kvoff, kt * BLOCK_N, NKV);
    }
    cp_async_commit();

    for (int it = beg; it < end; ++it) {
        const int stage = (it - beg) & 1;
        if (it + 1 < end) {
            int kn = tile_idx[it + 1] >> 1;
            load_tile<BLOCK_N>(sK + (stage ^ 1) * BLOCK_N * HEAD_DIM, K + kvoff, kn * BLOCK_N, NKV);
            load_tile<BLOCK_N>(sV + (stage ^ 1) * BLOCK_N * HEAD_DIM, V + kvoff, kn * BLOCK_N, NKV);
        }
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (it == beg) {
#pragma unroll
            for (int kk = 0; kk < KSTEPS; ++kk)
                ldsm_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3],
                        sQ + swz(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
        }
        const int entry = tile_idx[it];
        const u16* ks = sK + stage * BLOCK_N * HEAD_DIM;
        const u16* vs = sV + stage * BLOCK_N * HEAD_DIM;

        float s[NTILES][4];
#pragma unroll
        for (int j = 0; j < NTILES; ++j) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk += 2) {
                u32 b0, b1, b2, b3;
                ldsm_x4(b0, b1, b2, b3, ks + swz(j * 8 + (lane & 7), kk * 2 + (lane >> 3)));
                mma16816(s[j], qf[kk], b0, b1);
                mma16816(s[j], qf[kk + 1], b2, b3);
            }
        }
        softmax_tile(&s[0][0], &o[0][0], m_r, l_r, entry, q0 + warp * 16 + g, t, lo, hi, NKV, scale_log2);
#pragma unroll
        for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
            u32 a[4] = {pack2(s[2 * kk][0], s[2 * kk][1]), pack2(s[2 * kk][2], s[2 * kk][3]),
                        pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int d = 0; d < DTILES; d += 2) {
                u32 b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3, vs + swz(kk * 16 + (lane & 15), d + (lane >> 4)));
                mma16816(o[d], a, b0, b1);
                mma16816(o[d + 1], a, b2, b3);
            }
        }
        __syncthreads();
    }
    cp_async_wait<0>();

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l = l_r[r];
        l += __shfl_xor_sync(0xffffffff, l, 1);
        l += __shfl_xor_sync(0xffffffff, l, 2);
        const int row = q0 + warp * 16 + g + r * 8;
        if (row < NQ) {
            const float inv = l > 0.f ? 1.f / l : 0.f;
            u32* orow = (u32*)(O + qoff + (size_t)row * HEAD_DIM);
#pragma unroll
            for (int d = 0; d < DTILES; ++d) orow[d * 4 + t] = pack2(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
            if (t == 0) LSE[(size_t)(b * H + h) * NQ + row] = l > 0.f ? (m_r[r] + log2f(l)) * LN2 : NEG_INF;
        }
    }
}

// Row-wise masked attention: 4 warps per block, one query row per warp.
#define EPL (HEAD_DIM / 32)
extern "C" __global__ void __launch_bounds__(128)
attn_rows(const u16* __restrict__ Q, const u16* __restrict__ K, const u16* __restrict__ V,
          u16* __restrict__ O, float* __restrict__ LSE, int H, int HKV, int NQ, int NKV,
          float scale_log2, const int* __restrict__ row_ptr, const int* __restrict__ col_idx,
          int mask_batched) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int row = blockIdx.x * 4 + warp, h = blockIdx.y, b = blockIdx.z;
    if (row >= NQ) return;
    const int hk = h / (H / HKV);
    const int mb = mask_batched ? b : 0;
    const size_t qoff = ((size_t)(b * H + h) * NQ + row) * HEAD_DIM;
    const size_t kvoff = (size_t)(b * HKV + hk) * NKV * HEAD_DIM;
    float q[EPL], o[EPL];
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
        q[e] = elem_to_f32(Q[qoff + lane * EPL + e]) * scale_log2;
        o[e] = 0.f;
    }
    const int beg = row_ptr[(size_t)mb * NQ + row], end = row_ptr[(size_t)mb * NQ + row + 1];
    float m = NEG_INF, l = 0.f;
    for (int i = beg; i < end; i += 4) {
        float s[4];
        int key[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            key[u] = i + u < end ? col_idx[i + u] : -1;
            float acc = 0.f;
            if (key[u] >= 0) {
                const u16* kr = K + kvoff + (size_t)key[u] * HEAD_DIM + lane * EPL;
#pragma unroll
                for (int e = 0; e < EPL; ++e) acc += q[e] * elem_to_f32(kr[e]);
            }
            s[u] = acc;
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1)
#pragma unroll
            for (int u = 0; u < 4; ++u) s[u] += __shfl_xor_sync(0xffffffff, s[u], off);
        float mx = m;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            if (key[u] < 0) s[u] = NEG_INF;
            mx = fmaxf(mx, s[u]);
        }
        const float alpha = fast_exp2(m - mx);
        m = mx;
        l *= alpha;
#pragma unroll
        for (int e = 0; e < EPL; ++e) o[e] *= alpha;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            if (key[u] < 0) continue;
            const float p = fast_exp2(s[u] - mx);
            l += p;
            const u16* vr = V + kvoff + (size_t)key[u] * HEAD_DIM + lane * EPL;
#pragma unroll
            for (int e = 0; e < EPL; ++e) o[e] += p * elem_to_f32(vr[e]);
        }
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) O[qoff + lane * EPL + e] = f32_to_elem(o[e] * inv);
    if (lane == 0) LSE[(size_t)(b * H + h) * NQ + row] = l > 0.f ? (m + log2f(l)) * LN2 : NEG_INF;
}

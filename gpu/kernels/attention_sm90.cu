// Masked multi-head attention, prefill, for Hopper (sm_90a): warpgroup MMA (wgmma) with Q and K
// read by the tensor cores straight from 128-byte-swizzled shared memory, P kept in registers
// for O += P V, V read from shared memory as an MN-major operand. Same mask representation and
// layouts as attention.cu (tile lists + per-column row ranges; Q, O [B, H, NQ, D], K, V
// [B, HKV, NKV, D], LSE natural log). Compile-time: HEAD_DIM (64 | 128), NWG (warpgroups per
// block; BLOCK_M = 64 NWG), BLOCK_N (64 | 128), IS_BF16, PIPE (0: each tile's QK^T, softmax
// and PV in sequence, 2 load stages; 1: QK^T of tile i+1 issued before the softmax of tile i,
// so the tensor cores work while the softmax runs, 3 load stages; with two warpgroups the
// stages are handed over through mbarriers, not a block-wide barrier per tile, and the
// warpgroups take turns at the tensor cores: one's softmax overlaps the other's products),
// TMA (two-warpgroup PIPE only; 1: one thread loads each K/V tile with the Tensor Memory
// Accelerator from the tensor maps tm_k and tm_v, 128-byte swizzle, instead of every thread
// issuing cp.async copies; rows past NKV are filled with zeros).

#define BLOCK_M (64 * NWG)
#define NTHREADS (128 * NWG)
#define NTILES (BLOCK_N / 8)
#define DTILES (HEAD_DIM / 8)
#define HALVES (HEAD_DIM / 64)
#define LN2 0.69314718055994530942f
// V as an MN-major wgmma operand (transposed B): LBO = stride between 64-column blocks of the
// head dim, SBO = stride between 8-key groups.
#define V_LBO (BLOCK_N * 128)
#define V_SBO 1024

// Element offset of (row, col) in a tile of `rows` rows stored as HALVES column blocks of 64
// elements (128-byte rows), 16-byte chunks XOR-swizzled by row % 8: the layout wgmma's
// 128-byte swizzle mode reads.
__device__ __forceinline__ int sw_off(int rows, int r, int c) {
    const int half = c >> 6, cc = c & 63;
    return half * rows * 64 + r * 64 + ((((cc >> 3) ^ (r & 7))) << 3) + (cc & 7);
}

template <int ROWS>
__device__ __forceinline__ void load_sw(u16* s, const u16* g, int row0, int nvalid) {
    for (int i = threadIdx.x; i < ROWS * (HEAD_DIM / 8); i += NTHREADS) {
        const int r = i / (HEAD_DIM / 8), c = (i % (HEAD_DIM / 8)) * 8;
        const int gr = row0 + r;
        const bool ok = gr < nvalid;
        cp_async16(s + sw_off(ROWS, r, c), g + (size_t)(ok ? gr : 0) * HEAD_DIM + c, ok ? 16 : 0);
    }
}

// Shared-memory matrix descriptor, 128-byte swizzle.
__device__ __forceinline__ unsigned long long desc(const void* p, int lbo, int sbo) {
    const unsigned long long a = smem_addr(p);
    return ((a & 0x3FFFF) >> 4) | ((unsigned long long)((lbo >> 4) & 0x3FFF) << 16) |
           ((unsigned long long)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void fence_regs(float* r) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

#include_wgmma

#if BLOCK_N == 64
#define WG_S wgmma_ss_n64
#else
#define WG_S wgmma_ss_n128
#endif
#if HEAD_DIM == 64
#define WG_PV wgmma_rs_n64
#else
#define WG_PV wgmma_rs_n128
#endif

#ifndef PIPE
#define PIPE 0
#endif
#define STAGES (PIPE ? 3 : 2)
#ifndef TMA
#define TMA 0
#endif
#if TMA && !(PIPE && NWG == 2)
#error "TMA loads exist for the two-warpgroup pipelined kernel only"
#endif

// A CUtensorMap, passed by value as a __grid_constant__ kernel parameter.
struct __align__(64) TmaDesc {
    unsigned long long v[16];
};

// Issues S = Q K^T for one tile (asynchronous; the caller waits): K-major A (Q) and B (K); per
// 16-wide k step, advance 32 bytes in the row, or to the next 64-column block.
__device__ __forceinline__ void issue_s(float* s, const u16* q_wg, const u16* ks) {
    fence_regs<NTILES * 4>(s);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
        const int half = kk >> 2, off = (kk & 3) * 16;
        WG_S(s, desc(q_wg + half * BLOCK_M * 64 + off, 16, 1024), desc(ks + half * BLOCK_N * 64 + off, 16, 1024), kk > 0);
    }
    wg_commit();
}

#include_softmax

// P (fp32 scores after the softmax) packed into the A fragments of P V: per 16-key step, the
// mma.sync A layout per warp.
__device__ __forceinline__ void pack_p(u32 (*pa)[4], const float* p) {
#pragma unroll
    for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
        pa[kk][0] = pack2(p[(2 * kk) * 4 + 0], p[(2 * kk) * 4 + 1]);
        pa[kk][1] = pack2(p[(2 * kk) * 4 + 2], p[(2 * kk) * 4 + 3]);
        pa[kk][2] = pack2(p[(2 * kk + 1) * 4 + 0], p[(2 * kk + 1) * 4 + 1]);
        pa[kk][3] = pack2(p[(2 * kk + 1) * 4 + 2], p[(2 * kk + 1) * 4 + 3]);
    }
}

// Issues O += P V (asynchronous) from packed P: V an MN-major operand, 8-key groups 1024 bytes
// apart (SBO), 64-column blocks BLOCK_N * 128 bytes apart (LBO). The caller fences O.
__device__ __forceinline__ void issue_pv_packed(float* o, u32 (*pa)[4], const u16* vs) {
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < BLOCK_N / 16; ++kk) WG_PV(o, pa[kk], desc(vs + kk * 16 * 64, V_LBO, V_SBO), 1);
    wg_commit();
}

// Issues O += P V (asynchronous), P from registers.
__device__ __forceinline__ void issue_pv(float* o, const float* p, const u16* vs) {
    u32 pa[BLOCK_N / 16][4];
    pack_p(pa, p);
    fence_regs<DTILES * 4>(o);
    issue_pv_packed(o, pa, vs);
}

__device__ __forceinline__ void async_to_tensor_cores() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// mbarriers in shared memory (PIPE): one "full" and one "empty" barrier per load stage.
__device__ __forceinline__ void mbar_init(unsigned long long* bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
// Arrives on `bar` once every cp.async this thread issued so far has landed.
__device__ __forceinline__ void mbar_arrive_cp_async(unsigned long long* bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long* bar) {
    asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Named barriers over both warpgroups (ids 1 and 2; 0 is __syncthreads): one warpgroup syncs,
// the other arrives.
__device__ __forceinline__ void named_sync(int id) {
    asm volatile("bar.sync %0, 256;\n" ::"r"(id) : "memory");
}
__device__ __forceinline__ void named_arrive(int id) {
    asm volatile("bar.arrive %0, 256;\n" ::"r"(id) : "memory");
}
// Arrives on `bar` and adds `bytes` to the transaction count its phase waits for (TMA).
__device__ __forceinline__ void mbar_expect_tx(unsigned long long* bar, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
// TMA copy of the box at coordinates (c0, c1, c2) of `map` into shared memory at `dst`; its
// bytes complete a transaction on `bar`.
__device__ __forceinline__ void tma_load_3d(void* dst, const TmaDesc* map, int c0, int c1, int c2, unsigned long long* bar) {
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(smem_addr(dst)),
        "l"((unsigned long long)map), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
        : "memory");
}
// Waits until the phase of `bar` with parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(unsigned long long* bar, int parity) {
    asm volatile(
        "{\n"
        ".reg .pred done;\n"
        "WAIT_%=:\n"
        "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n"
        "}\n" ::"r"(smem_addr(bar)), "r"(parity) : "memory");
}

extern "C" __global__ void __launch_bounds__(NTHREADS)
attn_wgmma(const u16* __restrict__ Q, const u16* __restrict__ K, const u16* __restrict__ V,
           u16* __restrict__ O, float* __restrict__ LSE, int H, int HKV, int NQ, int NKV,
           float scale_log2, const int* __restrict__ tile_ptr, const int* __restrict__ tile_idx,
           const int* __restrict__ col_lo, const int* __restrict__ col_hi, int mask_batched
#if TMA
           , const __grid_constant__ TmaDesc tm_k, const __grid_constant__ TmaDesc tm_v
#endif
) {
    extern __shared__ __align__(16) unsigned char raw_smem[];
    // wgmma's swizzle atoms need 1024-byte alignment.
    u16* sQ = (u16*)(raw_smem + ((1024 - (smem_addr(raw_smem) & 1023)) & 1023));
    u16* sK = sQ + BLOCK_M * HEAD_DIM;
    u16* sV = sK + STAGES * BLOCK_N * HEAD_DIM;
#if PIPE && NWG == 2
    // Stage st holds tile `it` when (it - beg) % STAGES == st, for its u-th time when
    // (it - beg) / STAGES == u. full[st] completes once all threads' copies of that use have
    // landed (each thread arrives through cp.async), empty[st] once every thread is done with it.
    unsigned long long* full = (unsigned long long*)(sV + STAGES * BLOCK_N * HEAD_DIM);
    unsigned long long* empty = full + STAGES;
    if (threadIdx.x == 0) {
        for (int i = 0; i < STAGES; ++i) {
            // With TMA, one thread arrives (and sets the bytes to wait for).
            mbar_init(&full[i], TMA ? 1 : NTHREADS);
            mbar_init(&empty[i], NTHREADS);
        }
#if TMA
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
    }
    __syncthreads();
#endif
    const int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hk = h / (H / HKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wg = warp >> 2, wq = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    const int mb = mask_batched ? b : 0;
    const int list = mb * gridDim.x + qt;
    const int beg = tile_ptr[list], end = tile_ptr[list + 1];
    const size_t qoff = (size_t)(b * H + h) * NQ * HEAD_DIM;
    const size_t kvoff = (size_t)(b * HKV + hk) * NKV * HEAD_DIM;
    const int q0 = qt * BLOCK_M;
    const int row0 = q0 + wg * 64 + wq * 16 + g;
    const int* lo = col_lo + (size_t)mb * NKV;
    const int* hi = col_hi + (size_t)mb * NKV;
    auto load_kv = [&](int it) {
        const int st = (it - beg) % STAGES, kt = tile_idx[it] >> 1;
#if TMA
        // One thread: the box of each 64-column block lands in the layout sw_off describes.
        mbar_expect_tx(&full[st], 2 * BLOCK_N * HEAD_DIM * 2);
#pragma unroll
        for (int hh = 0; hh < HALVES; ++hh) {
            tma_load_3d(sK + st * BLOCK_N * HEAD_DIM + hh * BLOCK_N * 64, &tm_k, hh * 64, kt * BLOCK_N, b * HKV + hk, &full[st]);
            tma_load_3d(sV + st * BLOCK_N * HEAD_DIM + hh * BLOCK_N * 64, &tm_v, hh * 64, kt * BLOCK_N, b * HKV + hk, &full[st]);
        }
#else
        load_sw<BLOCK_N>(sK + st * BLOCK_N * HEAD_DIM, K + kvoff, kt * BLOCK_N, NKV);
        load_sw<BLOCK_N>(sV + st * BLOCK_N * HEAD_DIM, V + kvoff, kt * BLOCK_N, NKV);
#endif
    };
    auto k_of = [&](int it) { return sK + ((it - beg) % STAGES) * BLOCK_N * HEAD_DIM; };
    auto v_of = [&](int it) { return sV + ((it - beg) % STAGES) * BLOCK_N * HEAD_DIM; };

    float o[DTILES * 4];
#pragma unroll
    for (int i = 0; i < DTILES * 4; ++i) o[i] = 0.f;
    float m_r[2] = {NEG_INF, NEG_INF}, l_r[2] = {0.f, 0.f};
    // This warpgroup's 64 query rows of the Q tile.
    const u16* q_wg = sQ + wg * 64 * 64;

    load_sw<BLOCK_M>(sQ, Q + qoff, q0, NQ);
#if TMA
    cp_async_commit();
    if (threadIdx.x == 0) {
        if (beg < end) load_kv(beg);
        if (beg + 1 < end) load_kv(beg + 1);
    }
    cp_async_wait<0>();
    async_to_tensor_cores();
    __syncthreads();
#else
    if (beg < end) load_kv(beg);
    cp_async_commit();
#endif
#if PIPE && NWG == 2
    // The warpgroups synchronise only through the stage barriers, so one can run its softmax
    // while the other's matrix products occupy the tensor cores.
#if !TMA
    mbar_arrive_cp_async(&full[0]);
    if (beg + 1 < end) load_kv(beg + 1);
    cp_async_commit();
    mbar_arrive_cp_async(&full[1 % STAGES]);
    // Q (the first commit group) has landed for every thread.
    cp_async_wait<1>();
    async_to_tensor_cores();
    __syncthreads();
#endif
    float s[NTILES * 4], sn[NTILES * 4];
    if (beg < end) {
        mbar_wait(&full[0], 0);
        async_to_tensor_cores();
        issue_s(s, q_wg, k_of(beg));
        wg_wait0();
        fence_regs<NTILES * 4>(s);
    }
    // Ping-pong: the two warpgroups take turns at the tensor cores (named barriers 1 and 2), so
    // one's softmax runs while the other's products do. Warpgroup 1 lets warpgroup 0 go first.
    // Each turn issues Q K^T of tile i + 1 before P V of tile i: the softmax of tile i + 1 then
    // starts as soon as its scores are in, while P V of tile i still runs, and only the
    // rescaling of O waits for P V.
    if (wg == 1 && beg < end) named_arrive(1);
    if (beg < end) softmax_tile(s, o, m_r, l_r, tile_idx[beg], row0, t, lo, hi, NKV, scale_log2);
    // Every tile but the last (whose turn has no Q K^T: peeled below, as ptxas serialises the
    // wgmma pipeline when its instructions are issued conditionally).
    for (int it = beg; it + 1 < end; ++it) {
        const int u = it - beg;
        u32 pa[BLOCK_N / 16][4];
        pack_p(pa, s);
        fence_regs<DTILES * 4>(o);
        mbar_wait(&full[(u + 1) % STAGES], ((u + 1) / STAGES) & 1);
        async_to_tensor_cores();
        named_sync(1 + wg);
        issue_s(sn, q_wg, k_of(it + 1));
        issue_pv_packed(o, pa, v_of(it));
        named_arrive(2 - wg);
        // Tile it + 2 goes to the stage of tile it - 1 once every thread is done with that
        // (the other warpgroup may still be on tile it - 1).
        if (it + 2 < end) {
#if TMA
            if (threadIdx.x == 0) {
                if (u + 2 >= STAGES) mbar_wait(&empty[(u + 2) % STAGES], ((u + 2) / STAGES - 1) & 1);
                load_kv(it + 2);
            }
#else
            if (u + 2 >= STAGES) mbar_wait(&empty[(u + 2) % STAGES], ((u + 2) / STAGES - 1) & 1);
            load_kv(it + 2);
            cp_async_commit();
            mbar_arrive_cp_async(&full[(u + 2) % STAGES]);
#endif
        }
        float alpha[2];
        wg_wait1();
        fence_regs<NTILES * 4>(sn);
        softmax_scores(sn, m_r, l_r, alpha, tile_idx[it + 1], row0, t, lo, hi, NKV, scale_log2);
        wg_wait0();
        fence_regs<DTILES * 4>(o);
        mbar_arrive(&empty[u % STAGES]);
        softmax_rescale(o, alpha);
#pragma unroll
        for (int i = 0; i < NTILES * 4; ++i) s[i] = sn[i];
    }
    if (beg < end) {
        // The last tile: warpgroup 0 hands the turn over once more, warpgroup 1 does not (its
        // turns are matched by warpgroup 0's waits, one per tile).
        named_sync(1 + wg);
        issue_pv(o, s, v_of(end - 1));
        if (wg == 0) named_arrive(2);
        wg_wait0();
        fence_regs<DTILES * 4>(o);
    }
#elif PIPE
    // One warpgroup: a block-wide barrier per tile costs little.
    if (beg + 1 < end) load_kv(beg + 1);
    cp_async_commit();
    float s[NTILES * 4], sn[NTILES * 4];
    if (beg < end) {
        cp_async_wait<1>();
        async_to_tensor_cores();
        __syncthreads();
        issue_s(s, q_wg, k_of(beg));
        wg_wait0();
        fence_regs<NTILES * 4>(s);
    }
    for (int it = beg; it < end; ++it) {
        // Tile it + 1 has landed; every warpgroup is done with tile it - 1, whose stage now
        // receives tile it + 2.
        cp_async_wait<0>();
        async_to_tensor_cores();
        __syncthreads();
        if (it + 2 < end) load_kv(it + 2);
        cp_async_commit();
        if (it + 1 < end) issue_s(sn, q_wg, k_of(it + 1));
        softmax_tile(s, o, m_r, l_r, tile_idx[it], row0, t, lo, hi, NKV, scale_log2);
        issue_pv(o, s, v_of(it));
        wg_wait0();
        fence_regs<DTILES * 4>(o);
        fence_regs<NTILES * 4>(sn);
#pragma unroll
        for (int i = 0; i < NTILES * 4; ++i) s[i] = sn[i];
    }
#else
    for (int it = beg; it < end; ++it) {
        if (it + 1 < end) load_kv(it + 1);
        cp_async_commit();
        cp_async_wait<1>();
        async_to_tensor_cores();
        __syncthreads();
        float s[NTILES * 4];
        issue_s(s, q_wg, k_of(it));
        wg_wait0();
        fence_regs<NTILES * 4>(s);
        softmax_tile(s, o, m_r, l_r, tile_idx[it], row0, t, lo, hi, NKV, scale_log2);
        issue_pv(o, s, v_of(it));
        wg_wait0();
        fence_regs<DTILES * 4>(o);
        __syncthreads();
    }
#endif
    cp_async_wait<0>();

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l = l_r[r];
        l += __shfl_xor_sync(0xffffffff, l, 1);
        l += __shfl_xor_sync(0xffffffff, l, 2);
        const int row = row0 + r * 8;
        if (row < NQ) {
            const float inv = l > 0.f ? 1.f / l : 0.f;
            u32* orow = (u32*)(O + qoff + (size_t)row * HEAD_DIM);
#pragma unroll
            for (int d = 0; d < DTILES; ++d) orow[d * 4 + t] = pack2(o[d * 4 + 2 * r] * inv, o[d * 4 + 2 * r + 1] * inv);
            if (t == 0) LSE[(size_t)(b * H + h) * NQ + row] = l > 0.f ? (m_r[r] + log2f(l)) * LN2 : NEG_INF;
        }
    }
}

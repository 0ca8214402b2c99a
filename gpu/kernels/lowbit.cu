// Low-bit weight GEMV / small-batch GEMM: y[b][n] = sum_k W[n][k] x[b][k], fp16 activations,
// fp32 output. Weight formats (FMT):
//   1 LUT2, 2 LUT3, 3 LUT4: clustered codes with a per-row table of 2^bits fp16 centroids
//   4 INT8: per-row scale; the code c = q8 + 8 = (hu - 8) * 16 + lo, its high nibbles hu and
//           low nibbles lo in two separate 4-bit planes (q8 in -119..=119)
//   5 INT4: the high-nibble plane of the INT8 weights alone (nested: no second copy), value
//           (hu - 8) * 16 * scale: q8 rounded to a multiple of 16
//   6 FP16: plain fp16 rows (our own baseline)
// Planes are row-major, 32-bit words along k:
//   P2 (2-bit codes, 16 per word, code k at bits 2*(k%16));
//   P1 (bit 2 of 3-bit codes, 32 per word, bit k%32);
//   P4 (4-bit values, 8 per word, value k at bits 4*(k%8)).
// Each thread takes 64 consecutive k per step. LUT formats look codes up in pairs from a per-warp
// table of fp16 pairs in shared memory (one lookup, one fp16x2 FMA per two weights); INT formats
// turn bytes into fp16 with the 0x6400 magic number (one PRMT per two weights). Products are
// summed in fp16x2 over a step (x is pre-scaled so nothing overflows), then in fp32.
// Each warp computes ROWS rows at once (one activation load serves them all), and groups of ROWS
// rows in turn. The 2/3-bit codes and the INT planes are fetched a step ahead, and a lane's last
// step of a group fetches its first of the next group; the LUT formats copy the next group's
// centroids into shared memory with cp.async. A block stages its chunk of x once (cp.async;
// the fetches that do not need x start while it lands) for all its warps. Grid: x = blocks of
// WARPS (4, 8 or 16) warps, y = split of k into chunks of kc; with more than one chunk the
// outputs are accumulated atomically (the launcher zeroes them first).

#ifndef FMT
#define FMT 1
#endif
#ifndef BATCH
#define BATCH 1
#endif
#ifndef ROWS
#define ROWS 1
#endif
#ifndef WARPS
#define WARPS 4
#endif

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
// Bytes per row's pair table in shared memory: at least 256, so a table's address has a zero
// low byte and a LUT2/LUT3 lookup address is one PRMT of the index byte into it.
#define TBYTES (PAIRS * 4 < 256 ? 256 : PAIRS * 4)
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
// Bits of w from position `from` moved to position `to` (constant positions fold to one shift).
__device__ __forceinline__ u32 move_bits(u32 w, int from, int to) {
    return from >= to ? w >> (from - to) : w << (to - from);
}
// A 32-bit load from a shared-memory address.
__device__ __forceinline__ u32 lds32(u32 addr) {
    u32 v;
    asm("ld.shared.b32 %0, [%1];" : "=r"(v) : "r"(addr));
    return v;
}

#if IS_INT
// Four bytes b0..b3 (unsigned 0..255) as two fp16x2 words of (1024 + b).
__device__ __forceinline__ void bytes_to_h2(u32 w, u32& lo, u32& hi) {
    lo = prmt(w, 0x64646464u, 0x7170);   // w's bytes 0 and 1, each under a 0x64
    hi = prmt(w, 0x64646464u, 0x7372);
}

// One 8-column word of the high-nibble plane (and, for INT8, of the low-nibble plane) as the
// four fp16 pairs of columns (0,2), (4,6), (1,3), (5,7): q8 for INT8, the high nibble - 8 for
// INT4.
__device__ __forceinline__ void int_word_pairs(u32 hw, u32 lw, u32* w) {
#if FMT == 4
    const u32 ev = ((hw & 0x0f0f0f0fu) << 4) | (lw & 0x0f0f0f0fu);
    const u32 od = (hw & 0xf0f0f0f0u) | ((lw >> 4) & 0x0f0f0f0fu);
    const u32 bias = 0x64886488u;   // 1160 = 1024 + 128 + 8: byte - 136 = q8
#else
    const u32 ev = hw & 0x0f0f0f0fu;
    const u32 od = (hw >> 4) & 0x0f0f0f0fu;
    const u32 bias = 0x64086408u;   // 1032 = 1024 + 8
    (void)lw;
#endif
    bytes_to_h2(ev, w[0], w[1]);
    bytes_to_h2(od, w[2], w[3]);
#pragma unroll
    for (int j = 0; j < 4; ++j) w[j] = hsub2(w[j], bias);
}
#endif

// Activations in shared memory: fp16 pairs, 32 per step (64 k) of a batch column, as 8 chunks
// of 16 bytes (pairs 4c..4c+3). Chunk c of step s of batch column b sits at 16-byte slot
// (b * steps + s) * 8 + (c ^ (s & 7)): a lane reads a chunk with one 16-byte load, and the 8
// lanes of a quarter warp (consecutive steps) hit 8 different slots of 16 bytes, all 32 banks.
__device__ __forceinline__ int x_slot(int b, int steps, int s, int c) {
    return ((b * steps + s) << 3) + (c ^ (s & 7));
}
#define XQ(b, c) xq[x_slot(b, steps, s, c)]

// hacc[r][b] += w[r][j] * x pair (4 c + j) of batch column b, for four weight pairs per row.
__device__ __forceinline__ void fma_pairs(u32 (&hacc)[ROWS][BATCH], const u32 (&w)[ROWS][4],
                                          const uint4* xq, int steps, int s, int c) {
#pragma unroll
    for (int b = 0; b < BATCH; ++b) {
        const uint4 xc = XQ(b, c);
        const u32 xv[4] = {xc.x, xc.y, xc.z, xc.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
            for (int r = 0; r < ROWS; ++r) hacc[r][b] = hfma2(w[r][j], xv[j], hacc[r][b]);
        }
    }
}

#if FMT == 1 || FMT == 2
// The codes of one step (64 k from column kg) of each row: P2 words, and for LUT3 P1 words.
__device__ __forceinline__ void fetch_codes(const u32* __restrict__ pa, const u32* __restrict__ pb,
                                            const int (&rows)[ROWS], int k, size_t kg,
                                            uint4 (&w2)[ROWS], uint2 (&w1)[ROWS]) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        const size_t e = (size_t)rows[r] * k + kg;
        w2[r] = *(const uint4*)(pa + e / 16);
#if FMT == 2
        w1[r] = *(const uint2*)(pb + e / 32);
#else
        w1[r] = make_uint2(0u, 0u);
        (void)pb;
#endif
    }
}
#endif

#if IS_INT
// Words per row and step in the low-nibble plane: INT8 reads it, INT4 does not.
#define LPL (FMT == 4 ? 2 : 1)
// The nibble planes of one step (64 k from column kg) of each row: two 16-byte vectors of the
// high plane, and for INT8 two of the low plane.
__device__ __forceinline__ void fetch_int(const u32* __restrict__ pa, const u32* __restrict__ pb,
                                          const int (&rows)[ROWS], int k, size_t kg,
                                          uint4 (&h)[ROWS][2], uint4 (&l)[ROWS][LPL]) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        const size_t e = ((size_t)rows[r] * k + kg) / 8;
        h[r][0] = ((const uint4*)(pa + e))[0];
        h[r][1] = ((const uint4*)(pa + e))[1];
#if FMT == 4
        l[r][0] = ((const uint4*)(pb + e))[0];
        l[r][1] = ((const uint4*)(pb + e))[1];
#else
        (void)pb;
        (void)l;
#endif
    }
}
#endif

// Formats whose codes are fetched a step ahead, and how (into the w2n/w1n or hn/ln registers).
#if FMT == 1 || FMT == 2
#define PREFETCH 1
#define FETCH(rw, kk) fetch_codes(pa, pb, rw, k, kk, w2n, w1n)
#elif IS_INT
#define PREFETCH 1
#define FETCH(rw, kk) fetch_int(pa, pb, rw, k, kk, hn, ln)
#else
#define PREFETCH 0
#endif

#if IS_LUT
// Lane r < ROWS starts the asynchronous copy of the 2^BITS centroids of row n0 + r (the last
// row for rows past the end) into slot r of `stage`; nothing when n0 is past the end.
__device__ __forceinline__ void stage_tables(const u16* __restrict__ tables, u16* stage, int n0,
                                             int n_rows, int lane) {
    if (lane < ROWS && n0 < n_rows) {
        const u16* src = tables + (size_t)min(n0 + lane, n_rows - 1) * (1 << BITS);
        u16* dst = stage + lane * (1 << BITS);
#if BITS == 2
        cp_async8(dst, src);
#else
#pragma unroll
        for (int c = 0; c < (2 << BITS) / 16; ++c) cp_async16(dst + 8 * c, src + 8 * c, 16);
#endif
    }
    cp_async_commit();
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
    const uint4* xq = (const uint4*)smem;
#if IS_LUT
    // Pair tables [WARPS][ROWS] of PAIRS fp16x2 (TBYTES each) after x, aligned to TBYTES, so a
    // lookup address is the table's address OR four times the index. Then the staging slots of
    // the next rows' centroids, [WARPS][ROWS] of 2^BITS fp16.
    const u32 sm0 = smem_addr(smem);
    const u32 tab0 = (sm0 + BATCH * kc * 2 + TBYTES - 1) & ~(u32)(TBYTES - 1);
    u32* pair = (u32*)(smem + (tab0 - sm0));
#endif
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int k0 = blockIdx.y * kc;
    const int klen = min(kc, k - k0);
    const int steps = klen / 64;
    // Stage x with cp.async through L1, where the SM's other blocks find it (thread i copies
    // chunks 2 qt and 2 qt + 1, 16 k, of step s = i % steps: a quarter warp's copies land in 8
    // different slots, no bank conflict), and while the copies fly start the fetches that do
    // not depend on them.
    uint4* xs = (uint4*)smem;
    for (int b = 0; b < BATCH; ++b) {
        for (int i = threadIdx.x; i < steps * 4; i += WARPS * 32) {
            const int s = i % steps, qt = i / steps;
            const u16* src = x + (size_t)b * k + k0 + s * 64 + qt * 16;
#pragma unroll
            for (int h = 0; h < 2; ++h)
                cp_async16_ca(&xs[x_slot(b, steps, s, 2 * qt + h)], src + 8 * h);
        }
    }
    cp_async_commit();
    const int stride = gridDim.x * WARPS * ROWS;
    int n0 = (blockIdx.x * WARPS + warp) * ROWS;
#if IS_LUT
    // The centroids of a warp's next rows are copied asynchronously into its staging slots
    // (2^BITS fp16 per row, after the pair tables) while it computes the current rows.
    u16* tstage = (u16*)(smem + (tab0 - sm0) + WARPS * ROWS * TBYTES) + warp * ROWS * (1 << BITS);
    stage_tables(tables, tstage, n0, n_rows, lane);
#endif
#if PREFETCH
    // The 2- and 3-bit codes and the INT planes of a lane's next step are fetched one step
    // ahead, across row groups: the last step of a group fetches the first of the next group.
#if IS_INT
    uint4 hn[ROWS][2], ln[ROWS][LPL];
#else
    uint4 w2n[ROWS];
    uint2 w1n[ROWS];
#endif
    {
        int rows[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) rows[r] = min(n0 + r, n_rows - 1);
        if (lane < steps && n0 < n_rows) FETCH(rows, (size_t)k0 + (size_t)lane * 64);
    }
#endif
#if IS_INT
    // The INT formats hold x pre-scaled, each 8 in the order 0,2,4,6,1,3,5,7 to match their
    // nibble planes: each thread rewrites the two chunks it copied, once they have landed.
    cp_async_wait<0>();
    for (int b = 0; b < BATCH; ++b) {
        for (int i = threadIdx.x; i < steps * 4; i += WARPS * 32) {
            const int s = i % steps, qt = i / steps;
            uint4* c0 = &xs[x_slot(b, steps, s, 2 * qt)];
            uint4* c1 = &xs[x_slot(b, steps, s, 2 * qt + 1)];
            const uint4 v0 = *c0, v1 = *c1;
            const u32 vw[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
            u32 out8[8];
#pragma unroll
            for (int pp = 0; pp < 8; ++pp) {
                u32 out = 0;
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    int e = 2 * pp + h;  // staged position within the 16
                    const int d = e & 7;
                    e = (e & ~7) + (d < 4 ? 2 * d : 2 * (d - 4) + 1);
                    const float v = h2f((u16)(vw[e >> 1] >> ((e & 1) * 16))) * XSCALE;
                    out |= (u32)f32_to_elem(v) << (16 * h);
                }
                out8[pp] = out;
            }
            *c0 = make_uint4(out8[0], out8[1], out8[2], out8[3]);
            *c1 = make_uint4(out8[4], out8[5], out8[6], out8[7]);
        }
    }
#else
    cp_async_wait<IS_LUT ? 1 : 0>();   // x has landed (the LUT formats' centroids may still fly)
#endif
    __syncthreads();
    for (; n0 < n_rows; n0 += stride) {
    // Rows past the end repeat the last row; their results are not written.
    int rows[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) rows[r] = min(n0 + r, n_rows - 1);
#if IS_LUT
    u32* pt = pair + warp * ROWS * (TBYTES / 4);
    u32 tb[ROWS];   // shared addresses of this warp's row tables
#pragma unroll
    for (int r = 0; r < ROWS; ++r) tb[r] = tab0 + (u32)((warp * ROWS + r) * TBYTES);
    cp_async_wait<0>();
    __syncwarp();   // the staged centroids have landed; every lane is done with the old tables
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
        const u16* t = tstage + r * (1 << BITS);
        for (int i = lane; i < PAIRS; i += 32) {
#if BITS == 3
            const int c0 = (i & 3) | (((i >> 4) & 1) << 2);
            const int c1 = ((i >> 2) & 3) | (((i >> 5) & 1) << 2);
#else
            const int c0 = i & ((1 << BITS) - 1);
            const int c1 = i >> BITS;
#endif
            pt[r * (TBYTES / 4) + i] = (u32)t[c0] | ((u32)t[c1] << 16);
        }
    }
    __syncwarp();   // the pair tables are built; the staging slots are free
    stage_tables(tables, tstage, n0 + stride, n_rows, lane);
#endif
    float acc[ROWS][BATCH];
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
#pragma unroll
        for (int b = 0; b < BATCH; ++b) acc[r][b] = 0.0f;
    for (int s = lane; s < steps; s += 32) {
        const size_t kg = (size_t)k0 + (size_t)s * 64;   // within the row
        u32 hacc[ROWS][BATCH];
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int b = 0; b < BATCH; ++b) hacc[r][b] = 0u;
#if FMT == 1 || FMT == 2
        uint4 w2[ROWS];
        uint2 w1[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            w2[r] = w2n[r];
            w1[r] = w1n[r];
        }
#elif IS_INT
        u32 hw[ROWS][8];
#if FMT == 4
        u32 lw[ROWS][8];
#endif
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            hw[r][0] = hn[r][0].x; hw[r][1] = hn[r][0].y; hw[r][2] = hn[r][0].z; hw[r][3] = hn[r][0].w;
            hw[r][4] = hn[r][1].x; hw[r][5] = hn[r][1].y; hw[r][6] = hn[r][1].z; hw[r][7] = hn[r][1].w;
#if FMT == 4
            lw[r][0] = ln[r][0].x; lw[r][1] = ln[r][0].y; lw[r][2] = ln[r][0].z; lw[r][3] = ln[r][0].w;
            lw[r][4] = ln[r][1].x; lw[r][5] = ln[r][1].y; lw[r][6] = ln[r][1].z; lw[r][7] = ln[r][1].w;
#endif
        }
#endif
#if PREFETCH
        {
            // This lane's next step: in these rows, or the first of the next row group.
            const bool here = s + 32 < steps;
            const int nf = here ? n0 : n0 + stride;
            const size_t kf = here ? kg + 32 * 64 : (size_t)k0 + (size_t)lane * 64;
            if (nf < n_rows) {
                int rf[ROWS];
#pragma unroll
                for (int r = 0; r < ROWS; ++r) rf[r] = min(nf + r, n_rows - 1);
                FETCH(rf, kf);
            }
        }
#endif
#if FMT == 1 || FMT == 2
#pragma unroll
        for (int q = 0; q < 4; ++q) {             // 16 weights per word
            // Four times each pair's table index, one per byte: the 8 pairs of this word, even
            // pairs in xe, odd in xo. Index bits 0-3 are the two 2-bit codes (bits 4p..4p+3 of
            // the word); for LUT3, bits 4-5 are their third bits (bits 2p, 2p+1 of the word's
            // 16 in the P1 plane).
            u32 xe[ROWS], xo[ROWS];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                const u32 word = q == 0 ? w2[r].x : q == 1 ? w2[r].y : q == 2 ? w2[r].z : w2[r].w;
                xe[r] = (word << 2) & 0x3c3c3c3cu;
                xo[r] = (word >> 2) & 0x3c3c3c3cu;
#if FMT == 2
                // The 16 third bits, nibble j = pairs 2j and 2j + 1, moved to bits 0-7 and
                // 16-23 of t. A multiply shifts nibble j's bits for pair 2j (or 2j + 1) to bits
                // 6-7 of byte j; the cross terms land only on bits 2-4, outside those.
                const u32 hw = q < 2 ? w1[r].x : w1[r].y;
                const u32 t = prmt(hw, 0u, (q & 1) ? 0x4342 : 0x4140);
                xe[r] |= ((t & 0x00330033u) * 0x440u) & 0xc0c0c0c0u;
                xo[r] |= ((t & 0x00cc00ccu) * 0x110u) & 0xc0c0c0c0u;
#endif
            }
            uint4 xc[BATCH];
#pragma unroll
            for (int p = 0; p < 8; ++p) {         // pairs
                u32 xv[BATCH];
#pragma unroll
                for (int b = 0; b < BATCH; ++b) {
                    if (p % 4 == 0) xc[b] = XQ(b, 2 * q + p / 4);
                    xv[b] = p % 4 == 0 ? xc[b].x : p % 4 == 1 ? xc[b].y : p % 4 == 2 ? xc[b].z : xc[b].w;
                }
#pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    // The table's address with its low byte replaced by the pair's index byte.
                    const u32 addr = prmt(p & 1 ? xo[r] : xe[r], tb[r], 0x7650 + (p >> 1));
                    const u32 wv = lds32(addr);
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) hacc[r][b] = hfma2(wv, xv[b], hacc[r][b]);
                }
            }
        }
#elif FMT == 3
        u32 ws[ROWS][8];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const uint4* src = (const uint4*)(pa + ((size_t)rows[r] * k + kg) / 8);
            const uint4 a0 = src[0], a1 = src[1];
            ws[r][0] = a0.x; ws[r][1] = a0.y; ws[r][2] = a0.z; ws[r][3] = a0.w;
            ws[r][4] = a1.x; ws[r][5] = a1.y; ws[r][6] = a1.z; ws[r][7] = a1.w;
        }
#pragma unroll
        for (int q = 0; q < 8; ++q) {             // 8 weights per word
#pragma unroll
            for (int p = 0; p < 4; ++p) {
                u32 xv[BATCH];
#pragma unroll
                for (int b = 0; b < BATCH; ++b) {
                    const uint4 xc = XQ(b, q);
                    xv[b] = p == 0 ? xc.x : p == 1 ? xc.y : p == 2 ? xc.z : xc.w;
                }
#pragma unroll
                for (int r = 0; r < ROWS; ++r) {
                    const u32 wv = lds32((move_bits(ws[r][q], 8 * p, 2) & 0x3fcu) | tb[r]);
#pragma unroll
                    for (int b = 0; b < BATCH; ++b) hacc[r][b] = hfma2(wv, xv[b], hacc[r][b]);
                }
            }
        }
#elif IS_INT
        // hw (and lw) hold this step's planes, fetched a step ahead.
#pragma unroll
        for (int q = 0; q < 8; ++q) {             // 8 weights per word: even ones, then odd
            u32 w[ROWS][4];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
#if FMT == 4
                int_word_pairs(hw[r][q], lw[r][q], w[r]);
#else
                int_word_pairs(hw[r][q], 0u, w[r]);
#endif
            }
            fma_pairs(hacc, w, xq, steps, s, q);
        }
#else  // FP16
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            u32 ws[ROWS][4];
#pragma unroll
            for (int r = 0; r < ROWS; ++r) {
                const uint4 a = ((const uint4*)(pa + ((size_t)rows[r] * k + kg) / 2))[q];
                ws[r][0] = a.x; ws[r][1] = a.y; ws[r][2] = a.z; ws[r][3] = a.w;
            }
            fma_pairs(hacc, ws, xq, steps, s, q);
        }
#endif
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
#pragma unroll
            for (int b = 0; b < BATCH; ++b) acc[r][b] += h2sum(hacc[r][b]);
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
#pragma unroll
        for (int b = 0; b < BATCH; ++b) {
            float v = acc[r][b];
            for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            acc[r][b] = v;
        }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
            const int n = n0 + r;
            if (n >= n_rows) break;
#if FMT == 4
            const float sc = scales[n] / XSCALE;
#elif FMT == 5
            const float sc = 16.0f * scales[n] / XSCALE;
#else
            const float sc = 1.0f;
#endif
#pragma unroll
            for (int b = 0; b < BATCH; ++b) {
                float v = acc[r][b];
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
#if IS_LUT
    cp_async_wait<0>();   // no copy may be left in flight at exit
#endif
}

// ---------------------------------------------------------------------------------------------
// Tensor-core small-batch GEMM (BATCH 8, 16 or 32), every format:
// mma.sync m16n8k16 with the weights as the 16-row A operand (decoded to fp16 in registers) and
// the activations as B (batch columns in tiles of 8), fp32 accumulators. Each warp owns ROWS
// tiles of 16 rows; a block of 4 warps stages its k-chunk of x once in shared memory, and for
// the LUT formats its rows' centroid tables (codes are looked up one by one).
//
// A dot product may visit k in any order as long as A and B agree. Lane (g, t) of a warp holds
// A and B elements of the logical k {2t, 2t+1, 2t+8, 2t+9} of each 16-k step; here lane t takes
// the 16 physical columns [16t, 16t+16) of every 64-column block (4 steps), in the order its
// decode produces pairs. The staging writes x in that order: for step s of a 64-block, batch
// column b and lane t, one uint2 {pair 2s, pair 2s+1}.
#if BATCH >= 8
#define NT (BATCH / 8)

// Where column cidx (0..15 of a lane's 16) sits in the lane's pairs: pair p (0..7), half which.
__device__ __forceinline__ void col_pair(int cidx, int& p, int& which) {
#if FMT == 6 || IS_LUT
    p = cidx >> 1;
    which = cidx & 1;
#else
    // Per 8-column word, bytes_to_h2 of the even nibbles gives the pairs (0,2), (4,6), of the
    // odd ones (1,3), (5,7).
    const int r = cidx & 7, byte = r >> 1;
    p = (cidx >> 3) * 4 + (r & 1) * 2 + (byte >> 1);
    which = byte & 1;
#endif
}

__device__ __forceinline__ void mma16816(float* d, const u32* a, u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The raw words of one row's 16 columns starting at element e (a multiple of 16).
struct Raw {
    uint4 a, b;
};

__device__ __forceinline__ Raw fetch_row(const u32* __restrict__ pa, const u32* __restrict__ pb,
                                         size_t e) {
    Raw r;
#if IS_LUT && BITS == 4
    const uint2 c4 = *(const uint2*)(pa + e / 8);
    r.a = make_uint4(c4.x, c4.y, 0u, 0u);
#elif IS_LUT
    r.a = make_uint4(pa[e / 16], 0u, 0u, 0u);
#if BITS == 3
    r.a.y = pb[e / 32] >> (e & 31);
#endif
#elif FMT == 6
    const uint4* src = (const uint4*)(pa + e / 2);
    r.a = src[0];
    r.b = src[1];
#else
    const uint2 h = *(const uint2*)(pa + e / 8);
    r.a = make_uint4(h.x, h.y, 0u, 0u);
#if FMT == 4
    const uint2 l = *(const uint2*)(pb + e / 8);
    r.a.z = l.x;
    r.a.w = l.y;
#endif
#endif
    return r;
}

// The 8 fp16 pairs of a fetched row segment (the LUT formats look centroids up in `tab`).
__device__ __forceinline__ void decode_row(const Raw& r, u32* w, const u16* tab) {
#if IS_LUT
    u32 code[16];
#if BITS == 4
#pragma unroll
    for (int c = 0; c < 16; ++c) code[c] = ((c < 8 ? r.a.x : r.a.y) >> (4 * (c & 7))) & 15u;
#else
#pragma unroll
    for (int c = 0; c < 16; ++c) {
        code[c] = (r.a.x >> (2 * c)) & 3u;
#if BITS == 3
        code[c] |= ((r.a.y >> c) & 1u) << 2;
#endif
    }
#endif
#pragma unroll
    for (int p = 0; p < 8; ++p) w[p] = (u32)tab[code[2 * p]] | ((u32)tab[code[2 * p + 1]] << 16);
#elif FMT == 6
    w[0] = r.a.x; w[1] = r.a.y; w[2] = r.a.z; w[3] = r.a.w;
    w[4] = r.b.x; w[5] = r.b.y; w[6] = r.b.z; w[7] = r.b.w;
#else
#pragma unroll
    for (int i = 0; i < 2; ++i) int_word_pairs(i ? r.a.y : r.a.x, i ? r.a.w : r.a.z, w + 4 * i);
#endif
}

extern "C" __global__ void __launch_bounds__(WARPS * 32) lowbit_mma(
    const u32* __restrict__ pa, const u32* __restrict__ pb, const u16* __restrict__ tables,
    const float* __restrict__ scales, const u16* __restrict__ x, float* __restrict__ y,
    int n_rows, int k, int kc) {
    extern __shared__ __align__(16) unsigned char smem[];
    const u32* xs = (const u32*)smem;   // [blocks64][4 steps][BATCH][4 lanes][2] fp16 pairs
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int k0 = blockIdx.y * kc;
    const int klen = min(kc, k - k0);
    const int blocks64 = klen / 64;
    // Stage: word ((((c * 4 + s) * BATCH + b) * 4 + tt) * 2 + h) holds pair 2s + h of lane tt
    // in 64-block c for batch column b. x is read 8 halves at a time and scattered.
    u16* xh = (u16*)smem;
    for (int i = threadIdx.x; i < BATCH * (klen / 8); i += WARPS * 32) {
        const int b = i / (klen / 8), col8 = i % (klen / 8);
        const uint4 v8 = *(const uint4*)(x + (size_t)b * k + k0 + col8 * 8);
        const u32 vw[4] = {v8.x, v8.y, v8.z, v8.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            const int col = col8 * 8 + e;
            const int c = col >> 6, tt = (col >> 4) & 3;
            int p, which;
            col_pair(col & 15, p, which);
            const int word = (((c * 4 + (p >> 1)) * BATCH + b) * 4 + tt) * 2 + (p & 1);
            xh[word * 2 + which] = (u16)(vw[e >> 1] >> ((e & 1) * 16));
        }
    }
#if IS_LUT
    // Centroid tables of the block's rows (past the end: the last row's).
    u16* tabs = (u16*)(smem + (size_t)blocks64 * 4 * BATCH * 8 * 4);
    const int nb0 = blockIdx.x * WARPS * 16 * ROWS;
    for (int i = threadIdx.x; i < WARPS * 16 * ROWS * (1 << BITS); i += WARPS * 32) {
        const int r = min(nb0 + (i >> BITS), n_rows - 1);
        tabs[i] = tables[(size_t)r * (1 << BITS) + (i & ((1 << BITS) - 1))];
    }
#endif
    __syncthreads();
    const int n0 = (blockIdx.x * WARPS + warp) * 16 * ROWS;
    if (n0 >= n_rows) return;
    float acc[ROWS][NT][4];
#pragma unroll
    for (int m = 0; m < ROWS; ++m)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[m][j][e] = 0.0f;
    // Rows past the end read the last row; their results are not written.
    size_t rbase[ROWS][2];
#pragma unroll
    for (int m = 0; m < ROWS; ++m)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh)
            rbase[m][hh] = (size_t)min(n0 + 16 * m + g + 8 * hh, n_rows - 1) * k + k0 + 16 * t;
    const uint2* xv = (const uint2*)xs;
    const u16* tab[ROWS][2];
#pragma unroll
    for (int m = 0; m < ROWS; ++m)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
#if IS_LUT
            tab[m][hh] = tabs + (size_t)(warp * 16 * ROWS + 16 * m + g + 8 * hh) * (1 << BITS);
#else
            tab[m][hh] = nullptr;
#endif
        }
    // (Fetching the next 64 columns ahead, in registers, measured no faster on H100: the
    // resident warps already cover the latency, and the extra registers cost occupancy.)
    for (int c = 0; c < blocks64; ++c) {
        u32 w[ROWS][2][8];
#pragma unroll
        for (int m = 0; m < ROWS; ++m)
#pragma unroll
            for (int hh = 0; hh < 2; ++hh)
                decode_row(fetch_row(pa, pb, rbase[m][hh] + (size_t)c * 64), w[m][hh], tab[m][hh]);
#pragma unroll
        for (int s = 0; s < 4; ++s) {
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const uint2 bx = xv[((c * 4 + s) * BATCH + j * 8 + g) * 4 + t];
#pragma unroll
                for (int m = 0; m < ROWS; ++m) {
                    const u32 a[4] = {w[m][0][2 * s], w[m][1][2 * s], w[m][0][2 * s + 1],
                                      w[m][1][2 * s + 1]};
                    mma16816(acc[m][j], a, bx.x, bx.y);
                }
            }
        }
    }
#pragma unroll
    for (int m = 0; m < ROWS; ++m)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
            const int n = n0 + 16 * m + g + 8 * hh;
            if (n >= n_rows) continue;
#if FMT == 4
            const float sc = scales[n];
#elif FMT == 5
            const float sc = 16.0f * scales[n];
#else
            const float sc = 1.0f;
#endif
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int b = j * 8 + 2 * t + e;
                    const float v = acc[m][j][2 * hh + e] * sc;
                    if (gridDim.y == 1) {
                        y[(size_t)b * n_rows + n] = v;
                    } else {
                        atomicAdd(&y[(size_t)b * n_rows + n], v);
                    }
                }
        }
}
#endif

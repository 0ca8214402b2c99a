// Decode attention (one query token per sequence), split-KV with log-sum-exp merging.
// Compile-time parameters: HEAD_DIM (64 | 128), IS_BF16 (0 | 1), PQ_M (subspaces, PQ kernel only).
// Layouts: Q [B, H, D]; fp16 cache K, V [B, HKV, LCAP, D]; partial results per split slot:
// part_o [B, H, SLOTS, D] fp32 (normalised), part_lse [B, H, SLOTS] fp32 (natural log).
#define LN2 0.69314718055994530942f
#define LPK (HEAD_DIM / 8)   // lanes per key: each holds one 16-byte chunk of the row
#define KPW (32 / LPK)       // keys per warp per step
#define DEC_WARPS 4
#define UNROLL 8

extern "C" __global__ void __launch_bounds__(DEC_WARPS * 32)
decode_split(const u16* __restrict__ Q, const u16* __restrict__ K, const u16* __restrict__ V,
             float* __restrict__ part_o, float* __restrict__ part_lse, int H, int HKV, int LCAP,
             const int* __restrict__ lens, int chunk, int slot_base, int slots, float scale_log2) {
    const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hk = h / (H / HKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int kl = lane % LPK, kg = lane / LPK;
    const int len = lens[b];
    const int start = split * chunk;
    const int stop = min(len, start + chunk);
    const size_t kvoff = (size_t)(b * HKV + hk) * LCAP * HEAD_DIM + kl * 8;

    float q[8];
    unpack8(*(const uint4*)(Q + (size_t)(b * H + h) * HEAD_DIM + kl * 8), q);
#pragma unroll
    for (int e = 0; e < 8; ++e) q[e] *= scale_log2;

    float m = NEG_INF, l = 0.f, acc[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] = 0.f;
    const int step = DEC_WARPS * KPW;
    for (int wbase = start + warp * KPW; wbase < stop; wbase += step * UNROLL) {
        uint4 kv[UNROLL], vv[UNROLL];
        int key[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            key[u] = wbase + kg + u * step;
            bool ok = key[u] < stop;
            const size_t off = kvoff + (size_t)(ok ? key[u] : start) * HEAD_DIM;
            kv[u] = *(const uint4*)(K + off);
            vv[u] = *(const uint4*)(V + off);
        }
        float s[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            float kf[8];
            unpack8(kv[u], kf);
            float d = 0.f;
#pragma unroll
            for (int e = 0; e < 8; ++e) d += q[e] * kf[e];
            s[u] = d;
        }
#pragma unroll
        for (int off = LPK / 2; off > 0; off >>= 1)
#pragma unroll
            for (int u = 0; u < UNROLL; ++u) s[u] += __shfl_xor_sync(0xffffffff, s[u], off);
        float mx = m;
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            if (key[u] >= stop) s[u] = NEG_INF;
            mx = fmaxf(mx, s[u]);
        }
        const float m_use = mx == NEG_INF ? 0.f : mx;
        const float alpha = fast_exp2(m - m_use);
        m = mx;
        l *= alpha;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[e] *= alpha;
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
            const float p = fast_exp2(s[u] - m_use);
            l += p;
            float vf[8];
            unpack8(vv[u], vf);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[e] += p * vf[e];
        }
    }

    __shared__ float sm_m[DEC_WARPS * KPW], sm_l[DEC_WARPS * KPW];
    __shared__ float sm_acc[DEC_WARPS * KPW][HEAD_DIM];
    const int gid = warp * KPW + kg;
#pragma unroll
    for (int e = 0; e < 8; ++e) sm_acc[gid][kl * 8 + e] = acc[e];
    if (kl == 0) {
        sm_m[gid] = m;
        sm_l[gid] = l;
    }
    __syncthreads();
    if (threadIdx.x < HEAD_DIM) {
        float M = NEG_INF;
        for (int i = 0; i < DEC_WARPS * KPW; ++i) M = fmaxf(M, sm_m[i]);
        const float mu = M == NEG_INF ? 0.f : M;
        float L = 0.f, od = 0.f;
        for (int i = 0; i < DEC_WARPS * KPW; ++i) {
            const float w = fast_exp2(sm_m[i] - mu);
            L += sm_l[i] * w;
            od += sm_acc[i][threadIdx.x] * w;
        }
        const size_t slot = (size_t)(b * H + h) * slots + slot_base + split;
        part_o[slot * HEAD_DIM + threadIdx.x] = L > 0.f ? od / L : 0.f;
        if (threadIdx.x == 0) part_lse[slot] = L > 0.f ? (M + log2f(L)) * LN2 : NEG_INF;
    }
}

// Merges the split slots of each (b, h) into the final output (and its log-sum-exp).
extern "C" __global__ void decode_combine(const float* __restrict__ part_o, const float* __restrict__ part_lse,
                                          u16* __restrict__ O, float* __restrict__ LSE, int H, int slots) {
    const int h = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
    const size_t bh = (size_t)b * H + h;
    float M = NEG_INF;
    for (int s = 0; s < slots; ++s) M = fmaxf(M, part_lse[bh * slots + s]);
    const float mu = M == NEG_INF ? 0.f : M;
    float L = 0.f, od = 0.f;
    for (int s = 0; s < slots; ++s) {
        const float w = expf(part_lse[bh * slots + s] - mu);
        L += w;
        od += w * part_o[(bh * slots + s) * HEAD_DIM + d];
    }
    O[bh * HEAD_DIM + d] = f32_to_elem(L > 0.f ? od / L : 0.f);
    if (d == 0) LSE[bh] = L > 0.f ? mu + logf(L) : NEG_INF;
}

#ifdef PQ_M
// Decode over a product-quantized cache. Head dim split in PQ_M subspaces of DSUB dims, 256
// centroids each. codes_k, codes_v [B, HKV, LCAP, PQ_M] u8; codebooks cb_k, cb_v
// [HKV, PQ_M, 256, DSUB] in the element type. Each block owns `chunk` keys of one (b, h):
// builds the table T[m][c] = q_m . Ck[m][c] in shared memory, copies the value codebook there,
// then works through sub-chunks of PQ_SUB keys: scores (thread per key, PQ_M table lookups;
// the value codes staged in shared memory alongside),
// exact max and exponentials for the sub-chunk, and value accumulation (warp per key, each lane
// owning HEAD_DIM / 32 output dims and decoding them from the codebook).
#define DSUB (HEAD_DIM / PQ_M)
#ifndef PQ_THREADS
#define PQ_THREADS 512
#endif
#define PQ_SUB 512
#define DPL (HEAD_DIM / 32)
#define SPL (DPL >= DSUB ? DPL / DSUB : 1)
#define EPS (DPL >= DSUB ? DSUB : DPL)

extern "C" __global__ void __launch_bounds__(PQ_THREADS)
decode_pq(const u16* __restrict__ Q, const u8* __restrict__ codes_k, const u8* __restrict__ codes_v,
          const u16* __restrict__ cb_k, const u16* __restrict__ cb_v, float* __restrict__ part_o,
          float* __restrict__ part_lse, int H, int HKV, int LCAP, const int* __restrict__ lens,
          int chunk, int slots, float scale_log2) {
    extern __shared__ __align__(16) unsigned char pq_smem[];
    float* table = (float*)pq_smem;                       // [PQ_M][256]
    u16* cv = (u16*)(table + PQ_M * 256);                 // [PQ_M][256][DSUB]
    float* ps = (float*)(cv + PQ_M * 256 * DSUB);         // [PQ_SUB] scores, then weights
    u8* cvs = (u8*)(ps + PQ_SUB);                         // [PQ_SUB][PQ_M] value codes
    __shared__ float red[PQ_THREADS / 32];
    __shared__ float wacc[PQ_THREADS / 32][HEAD_DIM];

    const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hk = h / (H / HKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int len = lens[b];
    const int start = split * chunk;
    const int stop = min(len, start + chunk);
    const u16* qrow = Q + (size_t)(b * H + h) * HEAD_DIM;
    const u16* ck = cb_k + (size_t)hk * PQ_M * 256 * DSUB;
    const u16* cvg = cb_v + (size_t)hk * PQ_M * 256 * DSUB;
    for (int i = threadIdx.x; i < PQ_M * 256; i += PQ_THREADS) {
        const int mm = i / 256;
        float d = 0.f;
#pragma unroll
        for (int e = 0; e < DSUB; ++e) d += elem_to_f32(qrow[mm * DSUB + e]) * elem_to_f32(ck[i * DSUB + e]);
        table[i] = d * scale_log2;
    }
    for (int i = threadIdx.x; i < PQ_M * 256 * DSUB / 8; i += PQ_THREADS)
        ((uint4*)cv)[i] = ((const uint4*)cvg)[i];
    __syncthreads();

    const size_t coff = (size_t)(b * HKV + hk) * LCAP * PQ_M;
    float m = NEG_INF, l = 0.f, acc[DPL];
#pragma unroll
    for (int e = 0; e < DPL; ++e) acc[e] = 0.f;
    // This lane's output dims d0 .. d0 + DPL span SPL subspaces, EPS dims of each.
    const int d0 = lane * DPL;
    const int msub0 = d0 / DSUB;
    const int eoff = d0 % DSUB;
    for (int sub0 = start; sub0 < stop; sub0 += PQ_SUB) {
        const int n = min(PQ_SUB, stop - sub0);
        float tmax = NEG_INF;
        for (int i = threadIdx.x; i < n; i += PQ_THREADS) {
            const uint4* cp = (const uint4*)(codes_k + coff + (size_t)(sub0 + i) * PQ_M);
            // Stage the value codes of the sub-chunk in shared memory (their loads go out with
            // the key codes), so the value pass below never waits on global memory.
            const uint4* vp = (const uint4*)(codes_v + coff + (size_t)(sub0 + i) * PQ_M);
#pragma unroll
            for (int w = 0; w < PQ_M / 16; ++w) ((uint4*)(cvs + i * PQ_M))[w] = vp[w];
            float s = 0.f;
#pragma unroll
            for (int w = 0; w < PQ_M / 16; ++w) {
                const uint4 c4 = cp[w];
                const u32 cw[4] = {c4.x, c4.y, c4.z, c4.w};
#pragma unroll
                for (int x = 0; x < 16; ++x) {
                    const int mm = w * 16 + x;
                    s += table[mm * 256 + ((cw[x >> 2] >> ((x & 3) * 8)) & 0xff)];
                }
            }
            ps[i] = s;
            tmax = fmaxf(tmax, s);
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffff, tmax, off));
        if (lane == 0) red[warp] = tmax;
        __syncthreads();
        float mx = m;
        for (int i = 0; i < PQ_THREADS / 32; ++i) mx = fmaxf(mx, red[i]);
        const float alpha = fast_exp2(m - mx);
        m = mx;
        l *= alpha;
#pragma unroll
        for (int e = 0; e < DPL; ++e) acc[e] *= alpha;
        float tsum = 0.f;
        for (int i = threadIdx.x; i < n; i += PQ_THREADS) {
            const float p = fast_exp2(ps[i] - mx);
            ps[i] = p;
            tsum += p;
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) tsum += __shfl_xor_sync(0xffffffff, tsum, off);
        __syncthreads();
        if (lane == 0) red[warp] = tsum;
        __syncthreads();
        for (int i = 0; i < PQ_THREADS / 32; ++i) l += red[i];
        // Value pass: warp w takes keys w, w + 8, ...; lane owns dims d0 .. d0 + DPL.
        for (int i = warp; i < n; i += PQ_THREADS / 32 * 4) {
            u32 code[4][SPL];
            float p[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const int k = i + u * (PQ_THREADS / 32);
                const bool ok = k < n;
                p[u] = ok ? ps[k] : 0.f;
                const u8* cr = cvs + (ok ? k : 0) * PQ_M + msub0;
#if SPL == 2
                const u32 two = *(const unsigned short*)cr;
                code[u][0] = two & 0xff;
                code[u][1] = two >> 8;
#else
#pragma unroll
                for (int sl = 0; sl < SPL; ++sl) code[u][sl] = cr[sl];
#endif
            }
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
                for (int sl = 0; sl < SPL; ++sl) {
                    const u16* c = cv + ((msub0 + sl) * 256 + code[u][sl]) * DSUB + eoff;
                    float cf[EPS];
#if EPS == 4
                    const uint2 w = *(const uint2*)c;
                    cf[0] = elem_to_f32((u16)(w.x & 0xffff));
                    cf[1] = elem_to_f32((u16)(w.x >> 16));
                    cf[2] = elem_to_f32((u16)(w.y & 0xffff));
                    cf[3] = elem_to_f32((u16)(w.y >> 16));
#elif EPS == 2
                    const u32 w = *(const u32*)c;
                    cf[0] = elem_to_f32((u16)(w & 0xffff));
                    cf[1] = elem_to_f32((u16)(w >> 16));
#else
                    cf[0] = elem_to_f32(c[0]);
#endif
#pragma unroll
                    for (int e = 0; e < EPS; ++e) acc[sl * EPS + e] += p[u] * cf[e];
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int e = 0; e < DPL; ++e) wacc[warp][d0 + e] = acc[e];
    __syncthreads();
    if (threadIdx.x < HEAD_DIM) {
        float od = 0.f;
        for (int w = 0; w < PQ_THREADS / 32; ++w) od += wacc[w][threadIdx.x];
        const size_t slot = (size_t)(b * H + h) * slots + split;
        part_o[slot * HEAD_DIM + threadIdx.x] = l > 0.f ? od / l : 0.f;
        if (threadIdx.x == 0) part_lse[slot] = l > 0.f ? (m + log2f(l)) * LN2 : NEG_INF;
    }
}
#if DSUB >= 2
// The same over the "lanes" layout, in which no shared-memory lookup has a bank conflict. The
// older kernel's lookups hit random banks (32 random words in 32 banks take about 3.5 passes);
// here every lane of a warp reads a different bank on every lookup:
// - Score tables, one per group of PQ_G = min(M, 32) subspaces: row c (256 bytes) holds
//   T[g*PQ_G + (j mod PQ_G)][c] in word j, repeated along the row. Lane l (key l of a 32-key
//   tile) reads word l + x of its code's row at step x, which is subspace (l + x) mod PQ_G: bank
//   (l + x) mod 32. The cache stores each key's codes rotated by (its tile position) within each
//   group, so that the code for step x sits in a fixed byte. The address is one byte permute:
//   (code << 8) | 4 l.
// - Value codebook, one row per centroid c (256 bytes): the whole head dimension of centroid c.
//   Lane l owns output words l and l + 32 (elements 2l, 2l + 1, 64 + 2l, 65 + 2l): bank l. The
//   value codes come packed per lane group (the lanes whose words share subspaces) and tile, so
//   a lane holds its codes for the tile's 32 keys in registers.
// - No block barriers in the main loop: each warp runs an online softmax over its own tiles,
//   prefetching the next tile's codes, and the warps merge once at the end.
// Tiles: codes_k [B, HKV, tiles][PQ_KU][32 lanes] uint4, codes_v [B, HKV, tiles][PQ_VU][PQ_VJ]
// uint4 (gpu/src/decode.rs packs them). chunk_tiles tiles per split. Codebooks cb_k, cb_v
// centroid-major: [HKV][256][HEAD_DIM], centroid c of every subspace in one row.
#define PQ_G (PQ_M < 32 ? PQ_M : 32)
#define PQ_NG (PQ_M / PQ_G)
#define PQ_VW (HEAD_DIM / 64)
#define PQ_VJ (64 / DSUB)
#define PQ_KU (PQ_M / 16)
#define PQ_VU (2 * PQ_VW)
#ifndef PQ_LW
#define PQ_LW 16
#endif

__device__ __forceinline__ u32 word_of(const uint4* v, int w) {
    const uint4 x = v[w >> 2];
    return (w & 3) == 0 ? x.x : (w & 3) == 1 ? x.y : (w & 3) == 2 ? x.z : x.w;
}

extern "C" __global__ void __launch_bounds__(PQ_LW * 32)
decode_pq_lanes(const u16* __restrict__ Q, const uint4* __restrict__ codes_k, const uint4* __restrict__ codes_v,
                const u16* __restrict__ cb_k, const u16* __restrict__ cb_v, float* __restrict__ part_o,
                float* __restrict__ part_lse, int H, int HKV, int tiles_cap, const int* __restrict__ lens,
                int chunk_tiles, int slots, float scale_log2) {
    extern __shared__ __align__(16) unsigned char pq_smem[];
    float* tab = (float*)pq_smem;                       // [PQ_NG][256][64]
    u32* vcb = (u32*)(pq_smem + PQ_NG * 65536);         // [256][64]
    const int split = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int hk = h / (H / HKV);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int len = lens[b];
    const int t0 = split * chunk_tiles;
    const int t1 = min((len + 31) >> 5, t0 + chunk_tiles);
    const u16* qrow = Q + (size_t)(b * H + h) * HEAD_DIM;
    const u16* ck = cb_k + (size_t)hk * PQ_M * 256 * DSUB;
    const u16* cvg = cb_v + (size_t)hk * PQ_M * 256 * DSUB;
    // The codebooks arrive centroid-major ([256][HEAD_DIM] per KV head): consecutive threads take
    // consecutive subspaces of one centroid, so the loads are coalesced and the table stores hit
    // consecutive banks. Loads go out in batches of 8 so their latencies overlap.
    __shared__ float qs[HEAD_DIM];
    if (threadIdx.x < HEAD_DIM) qs[threadIdx.x] = elem_to_f32(qrow[threadIdx.x]) * scale_log2;
    __syncthreads();
    for (int i0 = 0; i0 < PQ_M * 256; i0 += 8 * PQ_LW * 32) {
        float ce[8][DSUB];
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int i = i0 + u * PQ_LW * 32 + threadIdx.x;
            const u16* src = ck + (size_t)(i < PQ_M * 256 ? i : 0) * DSUB;
#pragma unroll
            for (int e = 0; e < DSUB; e += 2) {
                const u32 w = *(const u32*)(src + e);
                ce[u][e] = elem_to_f32((u16)(w & 0xffff));
                ce[u][e + 1] = elem_to_f32((u16)(w >> 16));
            }
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
            const int i = i0 + u * PQ_LW * 32 + threadIdx.x;
            if (i >= PQ_M * 256) break;
            const int c = i / PQ_M, mm = i % PQ_M;
            float d = 0.f;
#pragma unroll
            for (int e = 0; e < DSUB; ++e) d += qs[mm * DSUB + e] * ce[u][e];
            float* row = tab + (mm / PQ_G) * 16384 + c * 64;
#pragma unroll
            for (int j = mm % PQ_G; j < 64; j += PQ_G) row[j] = d;
        }
    }
    {
        // Value codebook rows: HEAD_DIM / 8 uint4 per centroid, into 256-byte rows.
        constexpr int RU = HEAD_DIM / 8, NU = 256 * RU / (PQ_LW * 32);
        uint4 vb[NU];
#pragma unroll
        for (int u = 0; u < NU; ++u) vb[u] = ((const uint4*)cvg)[u * PQ_LW * 32 + threadIdx.x];
#pragma unroll
        for (int u = 0; u < NU; ++u) {
            const int i = u * PQ_LW * 32 + threadIdx.x;
            ((uint4*)vcb)[(i / RU) * 16 + i % RU] = vb[u];
        }
    }
    __syncthreads();

    const u32 lane4 = (u32)lane * 4;
    const int vj = lane / (DSUB / 2);
    const uint4* kt = codes_k + (size_t)(b * HKV + hk) * tiles_cap * (PQ_KU * 32) + lane;
    const uint4* vt = codes_v + (size_t)(b * HKV + hk) * tiles_cap * (PQ_VU * PQ_VJ) + vj;
    float m = NEG_INF, l = 0.f, acc[2 * PQ_VW];
#pragma unroll
    for (int e = 0; e < 2 * PQ_VW; ++e) acc[e] = 0.f;
    uint4 kq[PQ_KU], vq[PQ_VU];
    int t = t0 + warp;
    if (t < t1) {
#pragma unroll
        for (int u = 0; u < PQ_KU; ++u) kq[u] = kt[(size_t)t * (PQ_KU * 32) + u * 32];
#pragma unroll
        for (int u = 0; u < PQ_VU; ++u) vq[u] = vt[(size_t)t * (PQ_VU * PQ_VJ) + u * PQ_VJ];
    }
    for (; t < t1; t += PQ_LW) {
        uint4 nk[PQ_KU], nv[PQ_VU];
        const int tn = t + PQ_LW;
        if (tn < t1) {
#pragma unroll
            for (int u = 0; u < PQ_KU; ++u) nk[u] = kt[(size_t)tn * (PQ_KU * 32) + u * 32];
#pragma unroll
            for (int u = 0; u < PQ_VU; ++u) nv[u] = vt[(size_t)tn * (PQ_VU * PQ_VJ) + u * PQ_VJ];
        }
        // Score of this lane's key: byte x of group g is the code of subspace g*PQ_G + (x + l) mod PQ_G.
        float s = 0.f;
#pragma unroll
        for (int g = 0; g < PQ_NG; ++g)
#pragma unroll
            for (int x = 0; x < PQ_G; ++x) {
                const int pos = g * PQ_G + x;
                const u32 a = __byte_perm(word_of(kq, pos >> 2), lane4, 0x5504 | ((pos & 3) << 4));
                s += *(const float*)(pq_smem + g * 65536 + a + 4 * x);
            }
        if (t * 32 + lane >= len) s = NEG_INF;
        float mx = s;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, off));
        const float mn = fmaxf(m, mx);
        const float mu = mn == NEG_INF ? 0.f : mn;
        const float alpha = fast_exp2(m - mu);
        const float p = fast_exp2(s - mu);
        m = mn;
        l = l * alpha + p;
#pragma unroll
        for (int e = 0; e < 2 * PQ_VW; ++e) acc[e] *= alpha;
        // Values: key k's weight from lane k; this lane's value codes for key k are bytes
        // k * PQ_VW .. of its packed run.
#pragma unroll
        for (int k = 0; k < 32; ++k) {
            const float pk = __shfl_sync(0xffffffff, p, k);
#pragma unroll
            for (int i = 0; i < PQ_VW; ++i) {
                const int byte = k * PQ_VW + i;
                const u32 a = __byte_perm(word_of(vq, byte >> 2), lane4, 0x5504 | ((byte & 3) << 4));
                const u32 w = *(const u32*)(pq_smem + PQ_NG * 65536 + a + 128 * i);
                acc[2 * i] += pk * elem_to_f32((u16)(w & 0xffff));
                acc[2 * i + 1] += pk * elem_to_f32((u16)(w >> 16));
            }
        }
#pragma unroll
        for (int u = 0; u < PQ_KU; ++u) kq[u] = nk[u];
#pragma unroll
        for (int u = 0; u < PQ_VU; ++u) vq[u] = nv[u];
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) l += __shfl_xor_sync(0xffffffff, l, off);
    __syncthreads();  // the tables are free: merge the warps through them
    float* wm = tab;                      // [PQ_LW]
    float* wl = tab + PQ_LW;              // [PQ_LW]
    float* wacc = tab + 2 * PQ_LW;        // [PQ_LW][HEAD_DIM]
#pragma unroll
    for (int i = 0; i < PQ_VW; ++i) {
        wacc[warp * HEAD_DIM + 64 * i + 2 * lane] = acc[2 * i];
        wacc[warp * HEAD_DIM + 64 * i + 2 * lane + 1] = acc[2 * i + 1];
    }
    if (lane == 0) {
        wm[warp] = m;
        wl[warp] = l;
    }
    __syncthreads();
    if (threadIdx.x < HEAD_DIM) {
        float M = NEG_INF;
        for (int i = 0; i < PQ_LW; ++i) M = fmaxf(M, wm[i]);
        const float mu = M == NEG_INF ? 0.f : M;
        float L = 0.f, od = 0.f;
        for (int i = 0; i < PQ_LW; ++i) {
            const float w = fast_exp2(wm[i] - mu);
            L += wl[i] * w;
            od += wacc[i * HEAD_DIM + threadIdx.x] * w;
        }
        const size_t slot = (size_t)(b * H + h) * slots + split;
        part_o[slot * HEAD_DIM + threadIdx.x] = L > 0.f ? od / L : 0.f;
        if (threadIdx.x == 0) part_lse[slot] = L > 0.f ? (M + log2f(L)) * LN2 : NEG_INF;
    }
}
#endif
#endif

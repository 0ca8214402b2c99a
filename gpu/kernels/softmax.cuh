// Online softmax of one S tile, shared by the tile kernels (attention.cu, attention_sm90.cu).
// S is held as the mma.sync / wgmma accumulator fragment: for n-tile j (8 keys), s[4 j + e] is
// row `row0` (e < 2) or `row0 + 8` (e >= 2), column 8 j + 2 t + (e & 1). Needs NTILES, DTILES
// and BLOCK_N.
//
// The scale is folded into the exponent's FFMA, exp2(s * scale_log2 - m) with m in log2 units:
// the row maximum is taken over the raw scores and scaled once (the scale is positive).

// Masks (partial tiles) and turns the raw scores S into P in place; updates the running
// maximum m_r (log2 units) and sum l_r; returns in alpha the factor by which O must be rescaled.
__device__ __forceinline__ void softmax_scores(float* s, float* m_r, float* l_r, float* alpha, int entry,
                                               int row0, int t, const int* lo, const int* hi, int NKV,
                                               float scale_log2) {
    const int kt = entry >> 1;
    if (entry & 1) {
#pragma unroll
        for (int j = 0; j < NTILES; ++j)
#pragma unroll
            for (int e0 = 0; e0 < 2; ++e0) {
                const int col = kt * BLOCK_N + j * 8 + 2 * t + e0;
                const int clo = col < NKV ? lo[col] : 0x7fffffff;
                const int chi = col < NKV ? hi[col] : 0;
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const int row = row0 + r * 8;
                    if (row < clo || row >= chi) s[j * 4 + r * 2 + e0] = NEG_INF;
                }
            }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float mx = NEG_INF;
#pragma unroll
        for (int j = 0; j < NTILES; ++j) mx = fmaxf(mx, fmaxf(s[j * 4 + 2 * r], s[j * 4 + 2 * r + 1]));
        mx = fmaxf(mx * scale_log2, m_r[r]);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
        const float m_use = mx == NEG_INF ? 0.f : mx;
        alpha[r] = fast_exp2(m_r[r] - m_use);
        m_r[r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < NTILES; ++j) {
            s[j * 4 + 2 * r] = fast_exp2(fmaf(s[j * 4 + 2 * r], scale_log2, -m_use));
            s[j * 4 + 2 * r + 1] = fast_exp2(fmaf(s[j * 4 + 2 * r + 1], scale_log2, -m_use));
            sum += s[j * 4 + 2 * r] + s[j * 4 + 2 * r + 1];
        }
        l_r[r] = l_r[r] * alpha[r] + sum;
    }
}

// O *= alpha, row by row.
__device__ __forceinline__ void softmax_rescale(float* o, const float* alpha) {
#pragma unroll
    for (int d = 0; d < DTILES; ++d) {
        o[d * 4 + 0] *= alpha[0];
        o[d * 4 + 1] *= alpha[0];
        o[d * 4 + 2] *= alpha[1];
        o[d * 4 + 3] *= alpha[1];
    }
}

// Masks (partial tiles), runs the online softmax on S in place (S becomes P) and rescales O.
__device__ __forceinline__ void softmax_tile(float* s, float* o, float* m_r, float* l_r, int entry, int row0,
                                             int t, const int* lo, const int* hi, int NKV, float scale_log2) {
    float alpha[2];
    softmax_scores(s, m_r, l_r, alpha, entry, row0, t, lo, hi, NKV, scale_log2);
    softmax_rescale(o, alpha);
}

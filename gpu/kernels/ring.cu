// Sequence-parallel attention (Ring / TokenRing): merging a partial result into a device's
// fp32 accumulator with the TokenRing rule, and the final conversion to the element type.
// Partials and accumulators are [H, rows, HEAD_DIM]; LSEs [H, rows], natural log, -inf for a
// row that saw no key. One block per (row, head), one thread per output dimension.

extern "C" __global__ void sp_merge(const u16* __restrict__ po, const float* __restrict__ plse,
                                    float* __restrict__ acc, float* __restrict__ acc_lse, int rows) {
    const int r = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
    const size_t row = (size_t)h * rows + r;
    const float lb = plse[row];
    const float la = acc_lse[row];
    __syncthreads();  // every thread has read the old lse before thread 0 replaces it
    if (lb == NEG_INF) return;
    const float b = elem_to_f32(po[row * HEAD_DIM + d]);
    float* a = &acc[row * HEAD_DIM + d];
    if (la == NEG_INF) {
        *a = b;
    } else {
        // out = out_a + sigmoid(lse_b - lse_a) (out_b - out_a)
        const float w = 1.f / (1.f + expf(la - lb));
        *a += w * (b - *a);
    }
    if (d == 0) acc_lse[row] = lse_merge(la, lb);
}

// Accumulator rows to the element type; the accumulator starts as (0, -inf) via sp_reset.
extern "C" __global__ void sp_finalize(const float* __restrict__ acc, u16* __restrict__ out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = f32_to_elem(acc[i]);
}

extern "C" __global__ void sp_reset(float* __restrict__ acc, float* __restrict__ acc_lse, int n, int rows) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) acc[i] = 0.f;
    if (i < rows) acc_lse[i] = NEG_INF;
}

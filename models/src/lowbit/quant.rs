//! Weight quantizers (CPU reference implementations): per-group uniform round-to-nearest
//! (asymmetric), clustering-based non-uniform (1-D k-means per output channel or per group),
//! activation smoothing (scale migration from activations to weights), and INT8 with INT4 nested
//! in its high nibble (INT8 values `q` in [-119, 119] are stored as `q + 8`, so the high nibble
//! is `q` rounded to a multiple of 16: round-to-nearest INT4 with zero representable). Each returns the dequantized weights (row-major, `n` rows of `k`), the
//! values a kernel multiplies; the packed forms for the GPU are in [`gpu::lowbit::Packed`].

/// Per-group asymmetric round-to-nearest with `bits` bits: each group of `group` consecutive
/// weights of a row gets `min` and `(max - min) / (2^bits - 1)`.
pub fn uniform(w: &[f32], k: usize, bits: u32, group: usize) -> Vec<f32> {
    let levels = ((1u32 << bits) - 1) as f32;
    let mut out = w.to_vec();
    for g in out.chunks_mut(group.min(k).max(1)) {
        let lo = g.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let scale = (hi - lo) / levels;
        if scale <= 0.0 {
            continue;
        }
        for v in g.iter_mut() {
            *v = lo + ((*v - lo) / scale).round().clamp(0.0, levels) * scale;
        }
    }
    out
}

/// 1-D k-means (Lloyd) with `levels` centroids initialised at the quantiles; returns the sorted
/// centroids and each value's code.
pub fn kmeans_1d(values: &[f32], levels: usize, iters: usize) -> (Vec<f32>, Vec<u8>) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let n = sorted.len();
    let mut c: Vec<f32> = (0..levels)
        .map(|i| sorted[((2 * i + 1) * n / (2 * levels)).min(n - 1)])
        .collect();
    let nearest = |c: &[f32], v: f32| -> usize {
        let mut best = 0;
        for (j, cj) in c.iter().enumerate() {
            if (v - cj).abs() < (v - c[best]).abs() {
                best = j;
            }
        }
        best
    };
    for _ in 0..iters {
        let mut sum = vec![0.0f64; levels];
        let mut cnt = vec![0usize; levels];
        for &v in &sorted {
            let j = nearest(&c, v);
            sum[j] += v as f64;
            cnt[j] += 1;
        }
        let mut moved = false;
        for j in 0..levels {
            if cnt[j] > 0 {
                let m = (sum[j] / cnt[j] as f64) as f32;
                moved |= m != c[j];
                c[j] = m;
            }
        }
        if !moved {
            break;
        }
    }
    c.sort_by(f32::total_cmp);
    let codes = values.iter().map(|&v| nearest(&c, v) as u8).collect();
    (c, codes)
}

/// Clustered weights: k-means with 2^bits centroids per group of `group` weights of a row
/// (`group` = `k`: one table per output channel).
pub fn clustered(w: &[f32], k: usize, bits: u32, group: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len());
    for g in w.chunks(group.min(k).max(1)) {
        let (c, codes) = kmeans_1d(g, 1 << bits, 30);
        out.extend(codes.iter().map(|&i| c[i as usize]));
    }
    out
}

/// Clustered weights with one table per row, as codes and tables (for the GPU packing).
pub fn clustered_codes(w: &[f32], k: usize, bits: u32) -> (Vec<u8>, Vec<f32>) {
    let mut codes = Vec::with_capacity(w.len());
    let mut tables = Vec::new();
    for row in w.chunks(k) {
        let (c, cd) = kmeans_1d(row, 1 << bits, 30);
        codes.extend(cd);
        tables.extend(c);
    }
    (codes, tables)
}

/// Symmetric INT8 per output channel: values in [-119, 119] (room for the nesting offset) and
/// per-row scales (`max |w| / 119`).
pub fn int8_rows(w: &[f32], k: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::new();
    for row in w.chunks(k) {
        let m = row.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let s = if m > 0.0 { m / 119.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-119.0, 119.0) as i8),
        );
    }
    (q, scales)
}

/// The INT8 weights' values.
pub fn int8_values(q: &[i8], scales: &[f32], k: usize) -> Vec<f32> {
    q.iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scales[i / k])
        .collect()
}

/// The nested INT4 weights' values: the high nibble of each stored INT8 code `q + 8`, i.e. `q`
/// rounded to the nearest multiple of 16 (ties up).
pub fn int4_values(q: &[i8], scales: &[f32], k: usize) -> Vec<f32> {
    q.iter()
        .enumerate()
        .map(|(i, &v)| (((v as i32 + 8) >> 4) * 16) as f32 * scales[i / k])
        .collect()
}

/// Smoothing scales per input column: `s_j = max|X_j|^alpha / max_n |W_nj|^(1 - alpha)`
/// (SmoothQuant's migration); the weights are quantized as `W diag(s)` and the activations
/// divided by `s`.
pub fn smooth_scales(act_absmax: &[f32], w: &[f32], k: usize, alpha: f32) -> Vec<f32> {
    let mut wmax = vec![0.0f32; k];
    for row in w.chunks(k) {
        for (m, v) in wmax.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    act_absmax
        .iter()
        .zip(&wmax)
        .map(|(&a, &m)| {
            let s = a.max(1e-5).powf(alpha) / m.max(1e-5).powf(1.0 - alpha);
            if s.is_finite() && s > 0.0 {
                s
            } else {
                1.0
            }
        })
        .collect()
}

/// Quantizes `W diag(s)` with `quant` and folds the scales back (`Q(W diag(s)) diag(1/s)`): the
/// product with unscaled activations equals the smoothed layer's.
pub fn with_smoothing(
    w: &[f32],
    k: usize,
    s: &[f32],
    quant: impl Fn(&[f32]) -> Vec<f32>,
) -> Vec<f32> {
    let scaled: Vec<f32> = w.iter().enumerate().map(|(i, v)| v * s[i % k]).collect();
    quant(&scaled)
        .iter()
        .enumerate()
        .map(|(i, v)| v / s[i % k])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, seed: u64) -> Vec<f32> {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..6).map(|_| r.random_range(-1.0f32..1.0)).sum::<f32>() * 0.02)
            .collect()
    }

    fn mse(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn uniform_error_is_within_half_a_step_and_falls_with_bits() {
        let w = gaussian(4 * 256, 1);
        let mut last = f64::INFINITY;
        for bits in [2, 3, 4, 8] {
            let q = uniform(&w, 256, bits, 64);
            for (g, qg) in w.chunks(64).zip(q.chunks(64)) {
                let lo = g.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = g.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let step = (hi - lo) / ((1 << bits) - 1) as f32;
                for (a, b) in g.iter().zip(qg) {
                    assert!((a - b).abs() <= step / 2.0 + 1e-7);
                }
                let distinct: std::collections::BTreeSet<u32> =
                    qg.iter().map(|v| v.to_bits()).collect();
                assert!(distinct.len() <= 1 << bits);
            }
            let e = mse(&w, &q);
            assert!(e < last, "{bits} bits: {e}");
            last = e;
        }
    }

    #[test]
    fn kmeans_beats_uniform_on_bell_shaped_weights_and_uses_at_most_its_levels() {
        let w = gaussian(8 * 512, 2);
        for bits in [2, 3, 4] {
            let c = clustered(&w, 512, bits, 512);
            let u = uniform(&w, 512, bits, 512);
            assert!(mse(&w, &c) < mse(&w, &u), "{bits} bits");
            for row in c.chunks(512) {
                let distinct: std::collections::BTreeSet<u32> =
                    row.iter().map(|v| v.to_bits()).collect();
                assert!(distinct.len() <= 1 << bits);
            }
        }
        let (cent, codes) = kmeans_1d(&[0.0, 0.1, 5.0, 5.2], 2, 10);
        assert_eq!(codes, vec![0, 0, 1, 1]);
        assert!((cent[0] - 0.05).abs() < 1e-6 && (cent[1] - 5.1).abs() < 1e-6);
    }

    #[test]
    fn nested_int4_is_the_high_nibble_of_int8() {
        let w = gaussian(3 * 128, 3);
        let (q, s) = int8_rows(&w, 128);
        let v8 = int8_values(&q, &s, 128);
        let v4 = int4_values(&q, &s, 128);
        for i in 0..w.len() {
            let st = s[i / 128];
            assert!((v8[i] - w[i]).abs() <= 0.5 * st + 1e-7);
            assert!((v4[i] - v8[i]).abs() <= 8.0 * st + 1e-6);
        }
        assert!(mse(&w, &v8) * 50.0 < mse(&w, &v4));
    }

    #[test]
    fn smoothing_folds_back_exactly_without_quantization() {
        let w = gaussian(4 * 64, 4);
        let act: Vec<f32> = (0..64).map(|j| 1.0 + j as f32).collect();
        let s = smooth_scales(&act, &w, 64, 0.5);
        let back = with_smoothing(&w, 64, &s, |x| x.to_vec());
        for (a, b) in w.iter().zip(&back) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-3));
        }
        assert!(s[63] > s[0]);
    }
}

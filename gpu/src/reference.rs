//! fp64 CPU references and the error measures every kernel is judged by.

/// Attention of one query row over the keys `keys` (indices into `k`/`v`, rows of `d`
/// elements), with `scale` applied to the scores. Returns the output row and the log-sum-exp
/// (natural log); an empty key set gives zeros and -inf.
pub fn attention_row(
    q: &[f64],
    k: &[f32],
    v: &[f32],
    d: usize,
    keys: impl Iterator<Item = usize> + Clone,
    scale: f64,
) -> (Vec<f64>, f64) {
    let score = |j: usize| -> f64 {
        let kr = &k[j * d..(j + 1) * d];
        q.iter().zip(kr).map(|(a, &b)| a * b as f64).sum::<f64>() * scale
    };
    let m = keys.clone().map(score).fold(f64::NEG_INFINITY, f64::max);
    let mut out = vec![0.0; d];
    if m == f64::NEG_INFINITY {
        return (out, f64::NEG_INFINITY);
    }
    let mut l = 0.0;
    for j in keys {
        let p = (score(j) - m).exp();
        l += p;
        for (o, &x) in out.iter_mut().zip(&v[j * d..(j + 1) * d]) {
            *o += p * x as f64;
        }
    }
    for o in &mut out {
        *o /= l;
    }
    (out, m + l.ln())
}

/// Accumulates ‖got − want‖² and ‖want‖² (and the largest absolute difference) over any number
/// of rows; [`ErrorStats::relative`] is the norm-relative error.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ErrorStats {
    /// Sum of squared differences.
    pub diff2: f64,
    /// Sum of squared reference values.
    pub ref2: f64,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Values compared.
    pub count: u64,
    /// Non-finite values in the output (unwritten poison or overflow).
    pub non_finite: u64,
}

impl ErrorStats {
    /// Adds one row.
    pub fn add(&mut self, got: &[f64], want: &[f64]) {
        for (&g, &w) in got.iter().zip(want) {
            self.count += 1;
            if !g.is_finite() {
                self.non_finite += 1;
                continue;
            }
            self.diff2 += (g - w) * (g - w);
            self.ref2 += w * w;
            self.max_abs = self.max_abs.max((g - w).abs());
        }
    }
    /// ‖got − want‖ / ‖want‖ (infinite when any output was not finite).
    pub fn relative(&self) -> f64 {
        if self.non_finite > 0 {
            f64::INFINITY
        } else if self.ref2 == 0.0 {
            self.diff2.sqrt()
        } else {
            (self.diff2 / self.ref2).sqrt()
        }
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        if na == nb {
            1.0
        } else {
            0.0
        }
    } else {
        dot / (na * nb)
    }
}

/// The partial-result merge used by split-KV decoding and sequence-parallel attention:
/// lse = logaddexp(lse_a, lse_b), out = out_a + sigmoid(lse_b − lse_a) (out_b − out_a).
pub fn merge_partials(out_a: &[f64], lse_a: f64, out_b: &[f64], lse_b: f64) -> (Vec<f64>, f64) {
    if lse_b == f64::NEG_INFINITY {
        return (out_a.to_vec(), lse_a);
    }
    if lse_a == f64::NEG_INFINITY {
        return (out_b.to_vec(), lse_b);
    }
    let m = lse_a.max(lse_b);
    let lse = m + ((lse_a - m).exp() + (lse_b - m).exp()).ln();
    let w = 1.0 / (1.0 + (lse_a - lse_b).exp());
    (
        out_a
            .iter()
            .zip(out_b)
            .map(|(a, b)| a + w * (b - a))
            .collect(),
        lse,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_scores_average_the_values() {
        let k = vec![0.0f32; 3 * 2];
        let v = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (o, lse) = attention_row(&[1.0, 1.0], &k, &v, 2, 0..3, 1.0);
        assert!((o[0] - 3.0).abs() < 1e-12 && (o[1] - 4.0).abs() < 1e-12);
        assert!((lse - 3f64.ln()).abs() < 1e-12);
        let (o, lse) = attention_row(&[1.0, 1.0], &k, &v, 2, 0..0, 1.0);
        assert_eq!((o, lse), (vec![0.0, 0.0], f64::NEG_INFINITY));
    }

    #[test]
    fn merging_two_halves_equals_the_whole() {
        let d = 4;
        let k: Vec<f32> = (0..40)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let v: Vec<f32> = (0..40).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
        let q = [0.5, -0.25, 1.0, 0.75];
        let (whole, lw) = attention_row(&q, &k, &v, d, 0..10, 0.7);
        let (a, la) = attention_row(&q, &k, &v, d, 0..4, 0.7);
        let (b, lb) = attention_row(&q, &k, &v, d, 4..10, 0.7);
        let (m, lm) = merge_partials(&a, la, &b, lb);
        assert!((lm - lw).abs() < 1e-12);
        for (x, y) in m.iter().zip(&whole) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn error_stats_flag_unwritten_outputs() {
        let mut e = ErrorStats::default();
        e.add(&[1.0, 2.0], &[1.0, 2.5]);
        assert!((e.relative() - 0.5 / (1.0f64 + 6.25).sqrt()).abs() < 1e-12);
        e.add(&[f64::NAN], &[1.0]);
        assert!(e.relative().is_infinite());
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
    }
}

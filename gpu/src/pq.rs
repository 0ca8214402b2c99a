//! Product quantization of KV caches (MILLION): the head dimension is split into `m` subspaces,
//! each quantized to one of 256 centroids (an 8-bit code) learned by k-means.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Centroids of every subspace: `[m][256][dsub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    /// Subspaces.
    pub m: usize,
    /// Dimensions per subspace.
    pub dsub: usize,
    /// Centroids, `[m][256][dsub]`.
    pub centroids: Vec<f32>,
}

/// Centroids per subspace (8-bit codes).
pub const CENTROIDS: usize = 256;

impl Codebook {
    /// Trains one codebook on `n` vectors of `d = m * dsub` elements (`data`, row-major) with
    /// `iters` Lloyd iterations after a k-means++-style seeding from a sample; deterministic in
    /// `seed`. Subspaces are trained in parallel.
    pub fn train(data: &[f32], d: usize, m: usize, iters: usize, seed: u64) -> Codebook {
        assert!(
            m > 0 && d.is_multiple_of(m),
            "head dim {d} must split into {m} subspaces"
        );
        let n = data.len() / d;
        assert!(n > 0, "no training vectors");
        let dsub = d / m;
        let sub: Vec<Vec<f32>> = (0..m)
            .into_par_iter()
            .map(|s| {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(seed ^ (s as u64).wrapping_mul(0x9e37_79b9));
                let pts: Vec<&[f32]> = (0..n)
                    .map(|i| &data[i * d + s * dsub..i * d + (s + 1) * dsub])
                    .collect();
                kmeans(&pts, dsub, iters, &mut rng)
            })
            .collect();
        Codebook {
            m,
            dsub,
            centroids: sub.concat(),
        }
    }

    fn centroid(&self, s: usize, c: usize) -> &[f32] {
        let o = (s * CENTROIDS + c) * self.dsub;
        &self.centroids[o..o + self.dsub]
    }

    /// Codes of `n` vectors: `[n][m]`.
    pub fn encode(&self, data: &[f32]) -> Vec<u8> {
        let d = self.m * self.dsub;
        data.par_chunks(d)
            .flat_map_iter(|x| {
                (0..self.m)
                    .map(move |s| nearest(&x[s * self.dsub..(s + 1) * self.dsub], self, s) as u8)
            })
            .collect()
    }

    /// Reconstructed vectors from codes.
    pub fn decode(&self, codes: &[u8]) -> Vec<f32> {
        codes
            .chunks(self.m)
            .flat_map(|c| {
                c.iter()
                    .enumerate()
                    .flat_map(|(s, &k)| self.centroid(s, k as usize).to_vec())
            })
            .collect()
    }

    /// Bits per cached element: 8 bits per `dsub` elements.
    pub fn bits_per_element(&self) -> f64 {
        8.0 / self.dsub as f64
    }
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(x: &[f32], cb: &Codebook, s: usize) -> usize {
    let mut best = (f32::INFINITY, 0);
    for c in 0..CENTROIDS {
        let dd = dist2(x, cb.centroid(s, c));
        if dd < best.0 {
            best = (dd, c);
        }
    }
    best.1
}

fn kmeans(pts: &[&[f32]], dsub: usize, iters: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = pts.len();
    // Seeding: k-means++ over a sample of at most 4096 points (fewer points than centroids:
    // repeat them; the spare centroids stay unused).
    let sample: Vec<usize> = (0..n.min(4096)).map(|_| rng.random_range(0..n)).collect();
    let mut cent: Vec<f32> = Vec::with_capacity(CENTROIDS * dsub);
    cent.extend_from_slice(pts[sample[0]]);
    let mut d2: Vec<f32> = sample
        .iter()
        .map(|&i| dist2(pts[i], &cent[0..dsub]))
        .collect();
    for _ in 1..CENTROIDS {
        let total: f64 = d2.iter().map(|&x| x as f64).sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f64>() * total;
            let mut k = d2.len() - 1;
            for (i, &x) in d2.iter().enumerate() {
                r -= x as f64;
                if r <= 0.0 {
                    k = i;
                    break;
                }
            }
            k
        } else {
            rng.random_range(0..sample.len())
        };
        let c = pts[sample[pick]].to_vec();
        for (i, &p) in sample.iter().enumerate() {
            d2[i] = d2[i].min(dist2(pts[p], &c));
        }
        cent.extend_from_slice(&c);
    }
    let mut assign = vec![0usize; n];
    for _ in 0..iters {
        for (i, p) in pts.iter().enumerate() {
            let mut best = (f32::INFINITY, 0);
            for c in 0..CENTROIDS {
                let dd = dist2(p, &cent[c * dsub..(c + 1) * dsub]);
                if dd < best.0 {
                    best = (dd, c);
                }
            }
            assign[i] = best.1;
        }
        let mut sum = vec![0f64; CENTROIDS * dsub];
        let mut cnt = vec![0usize; CENTROIDS];
        for (i, p) in pts.iter().enumerate() {
            cnt[assign[i]] += 1;
            for (e, &x) in p.iter().enumerate() {
                sum[assign[i] * dsub + e] += x as f64;
            }
        }
        for c in 0..CENTROIDS {
            if cnt[c] > 0 {
                for e in 0..dsub {
                    cent[c * dsub + e] = (sum[c * dsub + e] / cnt[c] as f64) as f32;
                }
            }
        }
    }
    cent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_vectors_are_reconstructed_exactly() {
        // 200 vectors drawn from 50 distinct ones: every subspace has <= 50 distinct values, far
        // fewer than 256 centroids, so k-means places a centroid on each.
        let d = 8;
        let base: Vec<f32> = (0..50 * d)
            .map(|i| ((i * 7919 % 101) as f32) * 0.1 - 5.0)
            .collect();
        let data: Vec<f32> = (0..200)
            .flat_map(|i| base[(i % 50) * d..(i % 50 + 1) * d].to_vec())
            .collect();
        let cb = Codebook::train(&data, d, 4, 5, 1);
        let rec = cb.decode(&cb.encode(&data));
        for (a, b) in rec.iter().zip(&data) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(cb.bits_per_element(), 4.0);
    }

    #[test]
    fn more_subspaces_quantize_better() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let d = 32;
        let data: Vec<f32> = (0..3000 * d)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        let err = |m| {
            let cb = Codebook::train(&data, d, m, 4, 2);
            let rec = cb.decode(&cb.encode(&data));
            rec.iter()
                .zip(&data)
                .map(|(a, b)| ((a - b) * (a - b)) as f64)
                .sum::<f64>()
        };
        let (e4, e16) = (err(4), err(16));
        assert!(e16 < e4 * 0.5, "M=16 error {e16} vs M=4 {e4}");
    }
}

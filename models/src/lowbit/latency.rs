//! Latency of the low-bit GEMV/GEMM kernels and of the cuBLAS fp16 peer, from the committed H100
//! measurements (`results/gpu/lowbit_h100/`): measured values where the (format, shape, batch)
//! was measured, otherwise a per-(format, batch) fit `t = a + bytes / B` over the measured
//! shapes (relative least squares), interpolated linearly in the batch between the measured
//! batches. The fit's largest relative error over the measurements is stated with it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use gpu::lowbit::{read_peers, read_results, Format, LowbitRow, PeerRow};

use crate::attention::latency::lstsq;

/// A kernel time: measured, or modelled from the measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Time, µs.
    pub us: f64,
    /// Whether it is a measurement (else the fit or an interpolation between batches).
    pub measured: bool,
}

/// Which kernel: one of ours, or the cuBLAS fp16 peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kernel {
    Ours(u8),
    Cublas,
}

fn kernel(f: Format) -> Kernel {
    Kernel::Ours(f.code() as u8)
}

/// The measured kernels and their fits.
#[derive(Debug, Clone)]
pub struct KernelModel {
    /// Measured median µs per (kernel, k, n, batch): our selected tilings and the peer.
    measured: BTreeMap<(Kernel, usize, usize, usize), f64>,
    /// `[a µs, 1/B µs per byte]` per (kernel, batch).
    fits: BTreeMap<(Kernel, usize), [f64; 2]>,
    /// Measured batches, ascending.
    batches: Vec<usize>,
    /// Copy bandwidth measured in the same run, GB/s.
    pub copy_gbytes_per_s: f64,
    /// Device name.
    pub device: String,
    /// Largest relative error of the fits over the measurements.
    pub max_fit_err: f64,
}

/// Bytes a GEMV/GEMM moves: weights (with tables and scales), fp16 activations in, fp32 out.
pub fn traffic_bytes(weight_bytes: f64, k: usize, n: usize, batch: usize) -> f64 {
    weight_bytes + (batch * (2 * k + 4 * n)) as f64
}

impl KernelModel {
    /// The committed H100 measurements.
    pub fn committed() -> &'static KernelModel {
        static M: OnceLock<KernelModel> = OnceLock::new();
        M.get_or_init(|| {
            KernelModel::from_csv(
                include_str!("../../../results/gpu/lowbit_h100/ours.csv"),
                include_str!("../../../results/gpu/lowbit_h100/peers.csv"),
            )
            .expect("committed low-bit measurements parse")
        })
    }

    /// From a `lowbitbench` CSV and the peers' CSV of the same run.
    pub fn from_csv(ours: &str, peers: &str) -> Result<KernelModel, String> {
        let rows: Vec<LowbitRow> = read_results(ours, "ours.csv").map_err(|e| e.to_string())?;
        let peers: Vec<PeerRow> = read_peers(peers, "peers.csv").map_err(|e| e.to_string())?;
        let mut measured = BTreeMap::new();
        let mut bytes = BTreeMap::new();
        for r in rows.iter().filter(|r| r.selected) {
            let key = (kernel(r.format), r.k, r.n, r.batch);
            measured.insert(key, r.median_us);
            bytes.insert(key, traffic_bytes(r.weight_bytes as f64, r.k, r.n, r.batch));
        }
        for p in peers.iter().filter(|p| p.peer == "cublas_fp16") {
            let key = (Kernel::Cublas, p.k, p.n, p.batch);
            measured.insert(key, p.median_us);
            bytes.insert(
                key,
                traffic_bytes(
                    Format::Fp16.weight_bytes(p.n, p.k) as f64,
                    p.k,
                    p.n,
                    p.batch,
                ),
            );
        }
        let first = rows.first().ok_or("ours.csv: no measurements")?;
        let mut batches: Vec<usize> = measured.keys().map(|k| k.3).collect();
        batches.sort_unstable();
        batches.dedup();
        // Per (kernel, batch): the design rows [1, bytes] and the times.
        type Rows = (Vec<Vec<f64>>, Vec<f64>);
        let mut groups: BTreeMap<(Kernel, usize), Rows> = BTreeMap::new();
        for (key, &t) in &measured {
            let g = groups.entry((key.0, key.3)).or_default();
            g.0.push(vec![1.0, bytes[key]]);
            g.1.push(t);
        }
        let mut fits = BTreeMap::new();
        for (key, (a, y)) in &groups {
            let c = if y.len() >= 2 {
                lstsq(a, y)
            } else {
                vec![0.0, y[0] / a[0][1]]
            };
            fits.insert(*key, [c[0], c[1]]);
        }
        let max_fit_err = measured
            .iter()
            .map(|(key, &t)| {
                let [a, b] = fits[&(key.0, key.3)];
                ((a + b * bytes[key]) - t).abs() / t
            })
            .fold(0.0, f64::max);
        Ok(KernelModel {
            measured,
            fits,
            batches,
            copy_gbytes_per_s: first.copy_gbytes_per_s,
            device: gpu::results::Timed::device(first).to_string(),
            max_fit_err,
        })
    }

    /// The batches measured.
    pub fn batches(&self) -> &[usize] {
        &self.batches
    }

    fn at_batch(&self, kern: Kernel, k: usize, n: usize, batch: usize, bytes: f64) -> Estimate {
        match self.measured.get(&(kern, k, n, batch)) {
            Some(&us) => Estimate { us, measured: true },
            None => {
                let [a, b] = self.fits[&(kern, batch)];
                Estimate {
                    us: a + b * bytes,
                    measured: false,
                }
            }
        }
    }

    fn estimate(
        &self,
        kern: Kernel,
        k: usize,
        n: usize,
        batch: usize,
        weight_bytes: f64,
        exact_layout: bool,
    ) -> Estimate {
        let b = batch.clamp(self.batches[0], *self.batches.last().unwrap_or(&1));
        let at = |bb: usize| {
            let e = self.at_batch(kern, k, n, bb, traffic_bytes(weight_bytes, k, n, bb));
            if exact_layout {
                e
            } else {
                let [a, s] = self.fits[&(kern, bb)];
                Estimate {
                    us: a + s * traffic_bytes(weight_bytes, k, n, bb),
                    measured: false,
                }
            }
        };
        let hi = self
            .batches
            .iter()
            .position(|&x| x >= b)
            .unwrap_or(self.batches.len() - 1);
        if self.batches[hi] == b || hi == 0 {
            return at(self.batches[hi]);
        }
        let (b0, b1) = (self.batches[hi - 1], self.batches[hi]);
        let (t0, t1) = (at(b0).us, at(b1).us);
        Estimate {
            us: t0 + (t1 - t0) * (b - b0) as f64 / (b1 - b0) as f64,
            measured: false,
        }
    }

    /// Our kernel's time for an `n` x `k` weight in format `f` at `batch` (1-32).
    pub fn ours_us(&self, f: Format, k: usize, n: usize, batch: usize) -> Estimate {
        self.estimate(kernel(f), k, n, batch, f.weight_bytes(n, k) as f64, true)
    }

    /// Our kernel's modelled time when the weights take `weight_bytes` in format `f`'s kernel
    /// (per-group centroid tables, which the measured kernel does not have: always modelled).
    pub fn ours_bytes_us(
        &self,
        f: Format,
        k: usize,
        n: usize,
        batch: usize,
        weight_bytes: f64,
    ) -> Estimate {
        let exact = (weight_bytes - f.weight_bytes(n, k) as f64).abs() < 0.5;
        self.estimate(kernel(f), k, n, batch, weight_bytes, exact)
    }

    /// cuBLAS fp16 (torch.nn.functional.linear) for the same problem.
    pub fn cublas_us(&self, k: usize, n: usize, batch: usize) -> Estimate {
        self.estimate(
            Kernel::Cublas,
            k,
            n,
            batch,
            Format::Fp16.weight_bytes(n, k) as f64,
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_points_come_back_and_the_fit_states_its_error() {
        let m = KernelModel::committed();
        assert_eq!(m.batches(), &[1, 8, 32]);
        assert!(m.device.starts_with("NVIDIA H100"));
        // Measured cases come back as measured: the selected row and cuBLAS's row of the files.
        let ours = read_results(
            include_str!("../../../results/gpu/lowbit_h100/ours.csv"),
            "ours.csv",
        )
        .unwrap();
        let want = ours
            .iter()
            .find(|r| r.selected && r.format == Format::Int4 && r.n == 28672 && r.batch == 1)
            .unwrap();
        let e = m.ours_us(Format::Int4, 8192, 28672, 1);
        assert!(e.measured && (e.us - want.median_us).abs() < 1e-9, "{e:?}");
        let peers = read_peers(
            include_str!("../../../results/gpu/lowbit_h100/peers.csv"),
            "peers.csv",
        )
        .unwrap();
        let want = peers
            .iter()
            .find(|p| p.peer == "cublas_fp16" && p.k == 4096 && p.n == 4096 && p.batch == 1)
            .unwrap();
        let c = m.cublas_us(4096, 4096, 1);
        assert!(c.measured && (c.us - want.median_us).abs() < 1e-3, "{c:?}");
        // Every measurement is within the stated error of the fit, and the error is bounded.
        println!("fit error {:.3}", m.max_fit_err);
        assert!(
            m.max_fit_err > 0.0 && m.max_fit_err <= 0.20,
            "{}",
            m.max_fit_err
        );
        // An unmeasured shape is modelled, between the measured ones it lies between.
        let mid = m.ours_us(Format::Lut2, 8192, 8192, 1);
        assert!(!mid.measured);
        let (lo, hi) = (
            m.ours_us(Format::Lut2, 4096, 11008, 1).us,
            m.ours_us(Format::Lut2, 8192, 28672, 1).us,
        );
        assert!(mid.us > lo && mid.us < hi, "{lo} {} {hi}", mid.us);
        // Batches between the measured ones interpolate; time grows with the batch.
        let b4 = m.ours_us(Format::Int8, 4096, 4096, 4);
        let (b1, b8) = (
            m.ours_us(Format::Int8, 4096, 4096, 1).us,
            m.ours_us(Format::Int8, 4096, 4096, 8).us,
        );
        assert!(!b4.measured && b4.us > b1 && b4.us < b8);
        // More bytes (per-group tables) never make the modelled kernel faster.
        let row = m.ours_us(Format::Lut3, 4096, 4096, 1);
        let grouped = m.ours_bytes_us(
            Format::Lut3,
            4096,
            4096,
            1,
            Format::Lut3.weight_bytes(4096, 4096) as f64 * 1.5,
        );
        assert!(!grouped.measured && grouped.us > row.us * 0.9);
    }
}

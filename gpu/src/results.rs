//! Reading `gpubench` CSV files back, and regression checks of a new run against a committed
//! baseline (`archsweep gpu regress`).

use crate::{GpuError, Result};

/// One measured row of a `gpubench` CSV file (the fields models and regression checks use).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// "attention", "decode_fp16", "decode_pq" or "copy".
    pub kind: String,
    /// Case name.
    pub case: String,
    /// Mask label or cache description.
    pub mask: String,
    /// Element type.
    pub dtype: String,
    /// batch, heads, kv_heads, n_q, n_kv, head_dim.
    pub shape: [usize; 6],
    /// Variant label.
    pub variant: String,
    /// Whether the search selected it.
    pub selected: bool,
    /// Median time, µs.
    pub median_us: f64,
    /// Useful TFLOP/s.
    pub useful_tflops: f64,
    /// GB/s of required traffic.
    pub gbytes_per_s: f64,
    /// Norm-relative error.
    pub rel_err: f64,
    /// Device name.
    pub device: String,
}

impl Measured {
    /// The identity of a measurement across runs.
    pub fn key(&self) -> String {
        format!(
            "{} {} {} {} {:?} {}",
            self.kind, self.case, self.mask, self.dtype, self.shape, self.variant
        )
    }
}

/// Splits one CSV line (double-quoted fields may hold commas).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses a `gpubench` CSV file; `path` names it in errors (with the line and column).
pub fn read(text: &str, path: &str) -> Result<Vec<Measured>> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| GpuError::Config(format!("{path}: empty file")))?;
    let cols = split_csv(header);
    let col = |name: &str| {
        cols.iter()
            .position(|c| c == name)
            .ok_or_else(|| GpuError::Config(format!("{path}: line 1: missing column {name:?}")))
    };
    let idx = [
        "kind",
        "case",
        "mask",
        "dtype",
        "batch",
        "heads",
        "kv_heads",
        "n_q",
        "n_kv",
        "head_dim",
        "variant",
        "selected",
        "median_us",
        "useful_tflops",
        "gbytes_per_s",
        "rel_err",
        "device",
    ]
    .map(col);
    let mut i = [0usize; 17];
    for (k, r) in idx.into_iter().enumerate() {
        i[k] = r?;
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_csv(line);
        let get = |k: usize| -> Result<&str> {
            f.get(i[k])
                .map(String::as_str)
                .ok_or_else(|| GpuError::Config(format!("{path}: line {}: too few fields", n + 1)))
        };
        let num = |k: usize| -> Result<f64> {
            let s = get(k)?;
            match s {
                "NaN" | "nan" | "inf" | "-inf" => Ok(s.parse::<f64>().unwrap_or(f64::NAN)),
                _ => s.parse::<f64>().map_err(|_| {
                    GpuError::Config(format!(
                        "{path}: line {}, column {:?}: {s:?} is not a number",
                        n + 1,
                        cols[i[k]]
                    ))
                }),
            }
        };
        let int = |k: usize| -> Result<usize> {
            let s = get(k)?;
            s.parse::<usize>().map_err(|_| {
                GpuError::Config(format!(
                    "{path}: line {}, column {:?}: {s:?} is not a count",
                    n + 1,
                    cols[i[k]]
                ))
            })
        };
        out.push(Measured {
            kind: get(0)?.into(),
            case: get(1)?.into(),
            mask: get(2)?.into(),
            dtype: get(3)?.into(),
            shape: [int(4)?, int(5)?, int(6)?, int(7)?, int(8)?, int(9)?],
            variant: get(10)?.into(),
            selected: get(11)? == "true",
            median_us: num(12)?,
            useful_tflops: num(13)?,
            gbytes_per_s: num(14)?,
            rel_err: num(15)?,
            device: get(16)?.into(),
        });
    }
    Ok(out)
}

/// A measurement that got slower than its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    /// The measurement's identity.
    pub key: String,
    /// Baseline median, µs.
    pub baseline_us: f64,
    /// New median, µs.
    pub new_us: f64,
}

impl Regression {
    /// New time over baseline time.
    pub fn ratio(&self) -> f64 {
        self.new_us / self.baseline_us
    }
}

/// Outcome of comparing a run with a baseline.
#[derive(Debug, Clone, Default)]
pub struct RegressReport {
    /// Rows slower by more than the threshold.
    pub slower: Vec<Regression>,
    /// Rows compared.
    pub compared: usize,
    /// Baseline rows missing from the new run.
    pub missing: Vec<String>,
    /// Geometric mean of new/baseline over compared rows.
    pub geomean_ratio: f64,
}

/// Compares `new` with `baseline` row by row (same kind, case, mask, dtype, shape and variant):
/// a row regresses when its median grew by more than `threshold` (0.10 = 10%). Runs on
/// different devices are refused.
pub fn regress(baseline: &[Measured], new: &[Measured], threshold: f64) -> Result<RegressReport> {
    if let (Some(a), Some(b)) = (baseline.first(), new.first()) {
        if a.device != b.device {
            return Err(GpuError::Config(format!(
                "baseline measured on {:?}, new run on {:?}: timings only compare on the same device",
                a.device, b.device
            )));
        }
    }
    let mut rep = RegressReport::default();
    let mut log_sum = 0.0;
    for b in baseline {
        match new.iter().find(|n| n.key() == b.key()) {
            None => rep.missing.push(b.key()),
            Some(n) => {
                rep.compared += 1;
                log_sum += (n.median_us / b.median_us).ln();
                if n.median_us > b.median_us * (1.0 + threshold) {
                    rep.slower.push(Regression {
                        key: b.key(),
                        baseline_us: b.median_us,
                        new_us: n.median_us,
                    });
                }
            }
        }
    }
    rep.geomean_ratio = if rep.compared > 0 {
        (log_sum / rep.compared as f64).exp()
    } else {
        f64::NAN
    };
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "kind,case,mask,dtype,batch,heads,kv_heads,n_q,n_kv,head_dim,variant,selected,predicted_us,median_us,p10_us,p90_us,min_us,reps,useful_tflops,gbytes_per_s,bw_fraction,rel_err,max_abs_err,regs,local_bytes,device,smi
attention,causal,causal,f16,2,16,16,4096,4096,128,block-m128-n64,true,700.0,1000.0,990,1010,985,30,150.0,10.0,0.1,2.7e-4,1e-3,177,0,\"NVIDIA H100\",\"580, 1980 MHz\"
decode_fp16,d,f16-cache,f16,8,32,32,1,32768,128,split32,true,NaN,1400.0,1,1,1,30,1.0,3000.0,1.05,2e-4,1e-3,0,0,\"NVIDIA H100\",\"x\"
";

    #[test]
    fn reads_rows_and_flags_slowdowns_over_the_threshold() {
        let base = read(CSV, "base.csv").unwrap();
        assert_eq!(base.len(), 2);
        assert_eq!(base[0].shape, [2, 16, 16, 4096, 4096, 128]);
        assert_eq!(base[0].device, "NVIDIA H100");
        let mut new = base.clone();
        new[0].median_us = 1150.0; // 15% slower: flagged
        new[1].median_us = 1500.0; // 7% slower: within 10%
        let r = regress(&base, &new, 0.10).unwrap();
        assert_eq!(r.compared, 2);
        assert_eq!(r.slower.len(), 1);
        assert!((r.slower[0].ratio() - 1.15).abs() < 1e-12);
        let mut other = new.clone();
        other[0].device = "NVIDIA H200".into();
        other[1].device = "NVIDIA H200".into();
        assert!(regress(&base, &other, 0.1).is_err());
        let missing = regress(&base, &new[..1], 0.1).unwrap();
        assert_eq!(missing.missing.len(), 1);
    }

    #[test]
    fn bad_numbers_name_line_and_column() {
        let bad = CSV.replace("1000.0,990", "fast,990");
        let e = read(&bad, "run.csv").unwrap_err().to_string();
        assert!(
            e.contains("run.csv: line 2") && e.contains("median_us"),
            "{e}"
        );
    }
}

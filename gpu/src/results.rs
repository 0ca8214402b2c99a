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

/// A CSV file read for its named columns; every error names the file, the line and the column.
pub(crate) struct CsvTable<'a> {
    path: &'a str,
    cols: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

impl<'a> CsvTable<'a> {
    /// Splits `text` into a header and non-empty rows.
    pub(crate) fn parse(text: &str, path: &'a str) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| GpuError::Config(format!("{path}: empty file")))?;
        Ok(CsvTable {
            path,
            cols: split_csv(header),
            rows: lines
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| (n + 1, split_csv(l)))
                .collect(),
        })
    }
    /// Index of each named column.
    pub(crate) fn columns<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N]> {
        let mut out = [0usize; N];
        for (o, name) in out.iter_mut().zip(names) {
            *o = self.cols.iter().position(|c| c == name).ok_or_else(|| {
                GpuError::Config(format!("{}: line 1: missing column {name:?}", self.path))
            })?;
        }
        Ok(out)
    }
    /// The rows with their line numbers.
    pub(crate) fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(move |(line, f)| Row {
            table: self,
            line: *line,
            f,
        })
    }
}

/// One row of a [`CsvTable`].
pub(crate) struct Row<'a> {
    table: &'a CsvTable<'a>,
    line: usize,
    f: &'a [String],
}

impl Row<'_> {
    /// Field of column index `c`.
    pub(crate) fn get(&self, c: usize) -> Result<&str> {
        self.f.get(c).map(String::as_str).ok_or_else(|| {
            GpuError::Config(format!(
                "{}: line {}: too few fields",
                self.table.path, self.line
            ))
        })
    }
    fn bad(&self, c: usize, s: &str, what: &str) -> GpuError {
        GpuError::Config(format!(
            "{}: line {}, column {:?}: {s:?} is not {what}",
            self.table.path, self.line, self.table.cols[c]
        ))
    }
    /// A number (NaN and infinities accepted).
    pub(crate) fn num(&self, c: usize) -> Result<f64> {
        let s = self.get(c)?;
        match s {
            "NaN" | "nan" | "inf" | "-inf" => Ok(s.parse::<f64>().unwrap_or(f64::NAN)),
            _ => s.parse::<f64>().map_err(|_| self.bad(c, s, "a number")),
        }
    }
    /// A count.
    pub(crate) fn int(&self, c: usize) -> Result<usize> {
        let s = self.get(c)?;
        s.parse::<usize>().map_err(|_| self.bad(c, s, "a count"))
    }
    /// `true` or `false`.
    pub(crate) fn flag(&self, c: usize) -> Result<bool> {
        match self.get(c)? {
            "true" => Ok(true),
            "false" => Ok(false),
            s => Err(self.bad(c, s, "true or false")),
        }
    }
}

/// Parses a `gpubench` CSV file; `path` names it in errors (with the line and column).
pub fn read(text: &str, path: &str) -> Result<Vec<Measured>> {
    let t = CsvTable::parse(text, path)?;
    let i = t.columns([
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
    ])?;
    t.rows()
        .map(|r| {
            Ok(Measured {
                kind: r.get(i[0])?.into(),
                case: r.get(i[1])?.into(),
                mask: r.get(i[2])?.into(),
                dtype: r.get(i[3])?.into(),
                shape: [
                    r.int(i[4])?,
                    r.int(i[5])?,
                    r.int(i[6])?,
                    r.int(i[7])?,
                    r.int(i[8])?,
                    r.int(i[9])?,
                ],
                variant: r.get(i[10])?.into(),
                selected: r.get(i[11])? == "true",
                median_us: r.num(i[12])?,
                useful_tflops: r.num(i[13])?,
                gbytes_per_s: r.num(i[14])?,
                rel_err: r.num(i[15])?,
                device: r.get(i[16])?.into(),
            })
        })
        .collect()
}

/// A timed measurement that regression checks can compare across runs.
pub trait Timed {
    /// The measurement's identity across runs.
    fn key(&self) -> String;
    /// Median time, µs.
    fn median_us(&self) -> f64;
    /// The device it was measured on.
    fn device(&self) -> &str;
}

impl Timed for Measured {
    fn key(&self) -> String {
        Measured::key(self)
    }
    fn median_us(&self) -> f64 {
        self.median_us
    }
    fn device(&self) -> &str {
        &self.device
    }
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
pub fn regress<T: Timed>(baseline: &[T], new: &[T], threshold: f64) -> Result<RegressReport> {
    if let (Some(a), Some(b)) = (baseline.first(), new.first()) {
        if a.device() != b.device() {
            return Err(GpuError::Config(format!(
                "baseline measured on {:?}, new run on {:?}: timings only compare on the same device",
                a.device(), b.device()
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
                log_sum += (n.median_us() / b.median_us()).ln();
                if n.median_us() > b.median_us() * (1.0 + threshold) {
                    rep.slower.push(Regression {
                        key: b.key(),
                        baseline_us: b.median_us(),
                        new_us: n.median_us(),
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

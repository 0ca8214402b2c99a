//! The points table (one row per evaluated point) written with polars as Parquet and CSV, and
//! reading objective columns back from any CSV or Parquet table.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::config::Study;
use crate::journal::{Header, PointRecord};
use crate::model::{ParamKind, Value};
use crate::pareto::constrained_ranks;

/// Table problems.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A polars failure while writing or reading.
    #[error("{path}: {message}")]
    Polars {
        /// The file.
        path: PathBuf,
        /// polars' message.
        message: String,
    },
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A column that is missing or not numeric.
    #[error("{path}: {message}")]
    Column {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the valid column names.
        message: String,
    },
    /// A file that is neither CSV nor Parquet.
    #[error("{0}: unsupported table format; use a .csv or .parquet file")]
    Format(PathBuf),
}

/// Derived per-point quantities the table and report share.
pub struct Analysis {
    /// Records sorted by plan index.
    pub records: Vec<PointRecord>,
    /// Decoded parameters per record.
    pub params: Vec<Vec<Value>>,
    /// Objective vectors (minimised) of successful points; `None` for failed ones.
    pub objectives: Vec<Option<Vec<f64>>>,
    /// Total constraint violation (infinity for failed points).
    pub violation: Vec<f64>,
    /// Whether each point is on the Pareto front of the feasible successful points.
    pub on_front: Vec<bool>,
}

impl Analysis {
    /// Sorts and analyses the records of a study.
    pub fn new(study: &Study, mut records: Vec<PointRecord>) -> Analysis {
        records.sort_by_key(|r| r.i);
        let info = study.model.info();
        let params: Vec<Vec<Value>> = records
            .iter()
            .map(|r| {
                info.params
                    .iter()
                    .zip(&r.p)
                    .map(|(p, v)| p.conform(v.clone()))
                    .collect()
            })
            .collect();
        let objectives: Vec<Option<Vec<f64>>> = records
            .iter()
            .map(|r| r.m.as_ref().map(|m| study.objective_vector(m)))
            .collect();
        let violation: Vec<f64> = records
            .iter()
            .zip(&params)
            .map(|(r, p)| {
                r.m.as_ref()
                    .map_or(f64::INFINITY, |m| study.violation(p, m))
            })
            .collect();
        let ok: Vec<usize> = (0..records.len())
            .filter(|&i| objectives[i].is_some() && violation[i] <= 0.0)
            .collect();
        let pts: Vec<&[f64]> = ok
            .iter()
            .map(|&i| objectives[i].as_deref().unwrap_or(&[]))
            .collect();
        let ranks = constrained_ranks(&pts, &vec![0.0; pts.len()]);
        let mut on_front = vec![false; records.len()];
        for (k, &i) in ok.iter().enumerate() {
            on_front[i] = ranks[k] == 0;
        }
        Analysis {
            records,
            params,
            objectives,
            violation,
            on_front,
        }
    }

    /// Row of each plan index.
    pub fn positions(&self) -> std::collections::HashMap<u64, usize> {
        self.records
            .iter()
            .enumerate()
            .map(|(k, r)| (r.i, k))
            .collect()
    }

    /// Indices of the front's points.
    pub fn front(&self) -> Vec<usize> {
        (0..self.records.len())
            .filter(|&i| self.on_front[i])
            .collect()
    }
}

/// Builds the points table.
pub fn table(study: &Study, header: &Header, a: &Analysis) -> PolarsResult<DataFrame> {
    let info = study.model.info();
    let n = a.records.len();
    let mut cols: Vec<Column> = Vec::new();
    cols.push(Column::new(
        "index".into(),
        a.records.iter().map(|r| r.i).collect::<Vec<u64>>(),
    ));
    cols.push(Column::new(
        "generation".into(),
        a.records.iter().map(|r| r.g).collect::<Vec<Option<u32>>>(),
    ));
    for (k, p) in info.params.iter().enumerate() {
        let name: PlSmallStr = p.name.as_str().into();
        let col = match p.kind {
            ParamKind::Int { .. } => Column::new(
                name,
                a.params
                    .iter()
                    .map(|v| {
                        if let Value::Int(i) = v[k] {
                            Some(i)
                        } else {
                            None
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            ParamKind::Real { .. } => Column::new(
                name,
                a.params.iter().map(|v| v[k].as_f64()).collect::<Vec<_>>(),
            ),
            ParamKind::Bool => Column::new(
                name,
                a.params
                    .iter()
                    .map(|v| {
                        if let Value::Bool(b) = v[k] {
                            Some(b)
                        } else {
                            None
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            ParamKind::Categorical { .. } => Column::new(
                name,
                a.params
                    .iter()
                    .map(|v| v[k].to_string())
                    .collect::<Vec<_>>(),
            ),
        };
        cols.push(col);
    }
    for (k, m) in info.metrics.iter().enumerate() {
        cols.push(Column::new(
            m.name.as_str().into(),
            a.records
                .iter()
                .map(|r| r.m.as_ref().map(|m| m[k]))
                .collect::<Vec<Option<f64>>>(),
        ));
    }
    cols.push(Column::new(
        "status".into(),
        a.records
            .iter()
            .map(|r| if r.m.is_some() { "ok" } else { "failed" })
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new(
        "error".into(),
        a.records
            .iter()
            .map(|r| r.e.clone())
            .collect::<Vec<Option<String>>>(),
    ));
    cols.push(Column::new(
        "feasible".into(),
        a.violation.iter().map(|v| *v <= 0.0).collect::<Vec<bool>>(),
    ));
    cols.push(Column::new(
        "violation".into(),
        a.violation
            .iter()
            .map(|v| v.is_finite().then_some(*v))
            .collect::<Vec<Option<f64>>>(),
    ));
    cols.push(Column::new("pareto".into(), a.on_front.clone()));
    cols.push(Column::new(
        "eval_seconds".into(),
        a.records.iter().map(|r| r.t).collect::<Vec<f64>>(),
    ));
    cols.push(Column::new(
        "hash".into(),
        a.records
            .iter()
            .map(|r| r.h.to_string())
            .collect::<Vec<_>>(),
    ));
    cols.push(Column::new_scalar(
        "seed".into(),
        Scalar::from(header.seed),
        n,
    ));
    cols.push(Column::new_scalar(
        "model".into(),
        Scalar::from(PlSmallStr::from(header.model.as_str())),
        n,
    ));
    cols.push(Column::new_scalar(
        "model_version".into(),
        Scalar::from(PlSmallStr::from(header.model_version.as_str())),
        n,
    ));
    cols.push(Column::new_scalar(
        "config_hash".into(),
        Scalar::from(PlSmallStr::from(header.config_hash.as_str())),
        n,
    ));
    DataFrame::new(n, cols)
}

fn polars_err(path: &Path) -> impl Fn(PolarsError) -> TableError + '_ {
    move |e| TableError::Polars {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes `points.parquet` and `points.csv` into `dir`, each through a temporary file renamed
/// into place, so a reader never sees half a table.
pub fn write_tables(dir: &Path, df: &mut DataFrame) -> Result<(), TableError> {
    let pq = dir.join("points.parquet");
    let tmp = dir.join(".points.parquet.tmp");
    let f = File::create(&tmp).map_err(|source| TableError::Io {
        path: tmp.clone(),
        source,
    })?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Uncompressed)
        .finish(df)
        .map_err(polars_err(&pq))?;
    std::fs::rename(&tmp, &pq).map_err(|source| TableError::Io {
        path: pq.clone(),
        source,
    })?;
    let csv = dir.join("points.csv");
    let tmp = dir.join(".points.csv.tmp");
    let mut f = File::create(&tmp).map_err(|source| TableError::Io {
        path: tmp.clone(),
        source,
    })?;
    CsvWriter::new(&mut f)
        .include_header(true)
        .finish(df)
        .map_err(polars_err(&csv))?;
    std::fs::rename(&tmp, &csv).map_err(|source| TableError::Io {
        path: csv.clone(),
        source,
    })?;
    Ok(())
}

/// Reads a CSV or Parquet table.
pub fn read_table(path: &Path) -> Result<DataFrame, TableError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let open = || {
        File::open(path).map_err(|source| TableError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    match ext.as_str() {
        "parquet" | "pq" => ParquetReader::new(open()?)
            .finish()
            .map_err(polars_err(path)),
        "csv" => {
            open()?;
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(None)
                .try_into_reader_with_file_path(Some(path.to_path_buf()))
                .and_then(|r| r.finish())
                .map_err(polars_err(path))
        }
        _ => Err(TableError::Format(path.to_path_buf())),
    }
}

/// The named columns as floats, keeping rows where all are present and finite (and, when the
/// table has a `status` column, where it says `ok`). Returns the kept row numbers and values.
pub fn numeric_columns(
    df: &DataFrame,
    names: &[String],
    path: &Path,
) -> Result<(Vec<usize>, Vec<Vec<f64>>), TableError> {
    let valid = || {
        df.get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut cols = Vec::new();
    for name in names {
        let c = df.column(name).map_err(|_| TableError::Column {
            path: path.to_path_buf(),
            message: format!("no column '{name}'; columns: {}", valid()),
        })?;
        let dt = c.dtype();
        if !(dt.is_primitive_numeric() || dt.is_bool() || dt.is_null()) {
            return Err(TableError::Column {
                path: path.to_path_buf(),
                message: format!("column '{name}' is not numeric (type {dt})"),
            });
        }
        let c = c.cast(&DataType::Float64).map_err(polars_err(path))?;
        let v: Vec<Option<f64>> = c.f64().map_err(polars_err(path))?.iter().collect();
        cols.push(v);
    }
    let status: Option<Vec<bool>> = df.column("status").ok().and_then(|c| {
        c.str()
            .ok()
            .map(|s| s.iter().map(|x| x == Some("ok")).collect())
    });
    let mut rows = Vec::new();
    let mut vals = Vec::new();
    for r in 0..df.height() {
        if status.as_ref().is_some_and(|s| !s[r]) {
            continue;
        }
        let row: Option<Vec<f64>> = cols
            .iter()
            .map(|c| c[r].filter(|x| x.is_finite()))
            .collect();
        if let Some(row) = row {
            rows.push(r);
            vals.push(row);
        }
    }
    Ok((rows, vals))
}

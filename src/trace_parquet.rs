//! TLP traces as Parquet: the CSV schema's eleven columns, typed, with the CSV's metadata lines
//! kept in the file's key-value metadata under [`META_KEY`].
//!
//! | column | type | | column | type |
//! |---|---|---|---|---|
//! | `time_ns` | f64 | | `tag` | u32 |
//! | `dir` | string (`up`, `down`) | | `attr` | u32 |
//! | `type` | string (MRd, MWr, ...) | | `tc` | u32 |
//! | `address` | u64 | | `byte_count` | u32 |
//! | `length` | u32 | | `lower_addr` | u32 |
//! | `requester` | u32 | | | |
//!
//! A reader accepts any integer type for the numeric columns (other tools write i64) and checks
//! every row as the CSV reader does; errors name the file and the row (1-based).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{
    Column, DataFrame, DataType, KeyValueMetadata, ParquetCompression, ParquetReader,
    ParquetWriter, PolarsError, PolarsResult, SerReader, StringChunked,
};
use sim::pcie::engine::TraceSink;
use sim::pcie::tlp::Tlp;
use sim::pcie::trace::{RowChecker, TraceMeta, HEADER, NUMERIC_COLUMNS};

/// The key-value metadata entry holding the trace's `#` metadata lines.
pub const META_KEY: &str = "archsweep.pcie.trace";

/// Rows per row group (and per batch held in memory while writing).
const BATCH: usize = 1 << 20;

/// Whether `path` names a Parquet file (`.parquet` or `.pq`).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
}

/// The columns of rows not yet written.
#[derive(Default)]
struct Batch {
    time: Vec<f64>,
    dir: Vec<&'static str>,
    kind: Vec<&'static str>,
    address: Vec<u64>,
    small: [Vec<u32>; 7],
}

impl Batch {
    fn push(&mut self, t: &Tlp) {
        self.time.push(t.time_ns);
        self.dir.push(t.dir.name());
        self.kind.push(t.kind.name());
        self.address.push(t.address);
        let small = [
            t.length,
            t.requester as u32,
            t.tag as u32,
            t.attr as u32,
            t.tc as u32,
            t.byte_count,
            t.lower_addr as u32,
        ];
        for (c, v) in self.small.iter_mut().zip(small) {
            c.push(v);
        }
    }

    /// The batch as a frame, leaving it empty.
    fn take(&mut self) -> PolarsResult<DataFrame> {
        let names: Vec<&str> = HEADER.split(',').collect();
        let n = self.time.len();
        let mut cols = vec![
            Column::new(names[0].into(), std::mem::take(&mut self.time)),
            Column::new(names[1].into(), std::mem::take(&mut self.dir)),
            Column::new(names[2].into(), std::mem::take(&mut self.kind)),
            Column::new(names[3].into(), std::mem::take(&mut self.address)),
        ];
        for (i, c) in self.small.iter_mut().enumerate() {
            cols.push(Column::new(names[4 + i].into(), std::mem::take(c)));
        }
        DataFrame::new(n, cols)
    }
}

/// Writes rows as Parquet (a [`TraceSink`]), one row group per million rows; the first error is
/// kept for [`ParquetTraceWriter::finish`].
pub struct ParquetTraceWriter {
    writer: BatchedWriter<BufWriter<File>>,
    batch: Batch,
    rows: u64,
    err: Option<PolarsError>,
}

impl ParquetTraceWriter {
    /// Writes into `file` (already created), recording `meta`.
    pub fn new(file: BufWriter<File>, meta: &TraceMeta) -> Result<Self> {
        let schema = Batch::default().take()?.schema().as_ref().clone();
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
                META_KEY.to_string(),
                meta.lines(),
            )])))
            .batched(&schema)?;
        Ok(ParquetTraceWriter {
            writer,
            batch: Batch::default(),
            rows: 0,
            err: None,
        })
    }

    fn flush(&mut self) {
        if self.err.is_some() || self.batch.time.is_empty() {
            return;
        }
        let r = self
            .batch
            .take()
            .and_then(|df| self.writer.write_batch(&df));
        if let Err(e) = r {
            self.err = Some(e);
        }
    }

    /// Writes what is left and the footer; the rows written.
    pub fn finish(mut self) -> Result<u64> {
        self.flush();
        if let Some(e) = self.err.take() {
            return Err(e.into());
        }
        self.writer.finish()?;
        Ok(self.rows)
    }
}

impl TraceSink for ParquetTraceWriter {
    fn row(&mut self, t: &Tlp) {
        self.batch.push(t);
        self.rows += 1;
        if self.batch.time.len() >= BATCH {
            self.flush();
        }
    }
}

/// An open Parquet trace, read a million rows at a time.
pub struct ParquetTrace {
    name: String,
    path: std::path::PathBuf,
    height: usize,
    /// Its metadata.
    pub meta: TraceMeta,
}

/// Reads a Parquet trace and its metadata.
pub fn read_parquet(path: &Path) -> Result<ParquetTrace> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("opening {name}"))?;
    let mut reader = ParquetReader::new(file);
    let file_meta = reader
        .get_metadata()
        .with_context(|| format!("{name}: not a Parquet file"))?;
    let height = file_meta.num_rows;
    let lines = file_meta
        .key_value_metadata()
        .as_ref()
        .and_then(|kv| kv.iter().find(|e| e.key == META_KEY))
        .and_then(|e| e.value.clone())
        .unwrap_or_default();
    let meta = TraceMeta::parse_lines(&lines)
        .map_err(|(l, e)| anyhow!("{name}: metadata `{META_KEY}`, line {l}: {e}"))?;
    Ok(ParquetTrace {
        name,
        path: path.to_path_buf(),
        height,
        meta,
    })
}

impl ParquetTrace {
    /// Hands each row with its number (1-based) to `each`, checked as the CSV reader checks
    /// rows.
    pub fn rows(&self, mut each: impl FnMut(usize, Tlp)) -> Result<()> {
        let mut check = RowChecker::default();
        for first in (0..self.height.max(1)).step_by(BATCH) {
            let file = File::open(&self.path).with_context(|| format!("opening {}", self.name))?;
            let df = ParquetReader::new(file)
                .with_slice(Some((first, BATCH)))
                .finish()
                .with_context(|| format!("reading {}", self.name))?;
            self.slice(&df, first, &mut check, &mut each)?;
        }
        Ok(())
    }

    /// Rows `first + 1 ..` of the trace, in `df`.
    fn slice(
        &self,
        df: &DataFrame,
        first: usize,
        check: &mut RowChecker,
        each: &mut impl FnMut(usize, Tlp),
    ) -> Result<()> {
        let name = &self.name;
        let names: Vec<&str> = HEADER.split(',').collect();
        let column = |c: &str| {
            df.column(c).map_err(|_| {
                anyhow!(
                    "{name}: no column `{c}`; a trace has the columns {}",
                    names.join(", ")
                )
            })
        };
        let text = |c: &str| -> Result<&StringChunked> {
            let col = column(c)?;
            col.str()
                .map_err(|_| anyhow!("{name}: column `{c}` is {}, not a string", col.dtype()))
        };
        let time = {
            let col = column(names[0])?;
            if !col.dtype().is_primitive_numeric() {
                bail!("{name}: column `time_ns` is {}, not a number", col.dtype());
            }
            col.cast(&DataType::Float64)?
        };
        let mut nums = Vec::new();
        for (c, _) in NUMERIC_COLUMNS {
            let col = column(c)?;
            if !col.dtype().is_integer() {
                bail!("{name}: column `{c}` is {}, not an integer", col.dtype());
            }
            // Negative values of signed columns become null, reported as out of range.
            nums.push(col.cast(&DataType::UInt64)?);
        }
        let mut nums: Vec<_> = nums
            .iter()
            .map(|c| c.u64().map(|c| c.iter()))
            .collect::<PolarsResult<_>>()?;
        let mut time = time.f64()?.iter();
        let mut dir = text(names[1])?.iter();
        let mut kind = text(names[2])?.iter();
        for r in first + 1..=first + df.height() {
            let t = time.next().flatten();
            let (d, k) = (dir.next().flatten(), kind.next().flatten());
            let v: [Option<u64>; 8] = std::array::from_fn(|i| nums[i].next().flatten());
            let shown = |x: Option<String>| x.unwrap_or_else(|| "null".into());
            let row = check.row(t, d.unwrap_or("null"), k.unwrap_or("null"), v, |i| {
                if i == 0 {
                    shown(t.map(|t| t.to_string()))
                } else {
                    shown(v[i - 1].map(|x| x.to_string()))
                }
            });
            match row {
                Ok(t) => each(r, t),
                Err(e) => bail!("{name}: row {r}: {e}"),
            }
        }
        Ok(())
    }
}

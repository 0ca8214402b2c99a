//! The append-only results journal (`journal.jsonl` in the output directory).
//!
//! One JSON record per line followed by a tab and the CRC-32 of the JSON text (8 hex digits).
//! The first line is the header (study, model, config hash, shard); then `point` records (one per
//! evaluated point, written as soon as it finishes) and `gen` records (the population after each
//! generation of an evolutionary strategy). A writer thread appends records as they arrive and
//! calls `fdatasync` at least once per sync interval (group commit): a killed process loses only
//! the points still in flight, a power loss at most the last interval. On reading, a last line
//! without its newline (a torn write) is dropped and later cut off before appending; any other
//! damage is reported with its line number and nothing is written.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::Value;
use crate::space::PointId;

/// Journal format version.
pub const FORMAT: u32 = 1;

/// The first record of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Format version.
    pub format: u32,
    /// Study name.
    pub study: String,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Hash of the resolved config.
    pub config_hash: String,
    /// Study seed.
    pub seed: u64,
    /// Strategy name.
    pub strategy: String,
    /// Parameter names in model order.
    pub params: Vec<String>,
    /// Metric names in model order.
    pub metrics: Vec<String>,
    /// `[i, n]` when this journal holds shard i of n.
    pub shard: Option<[usize; 2]>,
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// Position in the study's deterministic plan (first occurrence).
    pub i: u64,
    /// Point identity: hash of model, version and parameters.
    pub h: PointId,
    /// Generation (evolutionary strategies).
    pub g: Option<u32>,
    /// Parameter values in model order.
    pub p: Vec<Value>,
    /// Metric values in model order; `None` when the evaluation failed.
    pub m: Option<Vec<f64>>,
    /// Error message of a failed evaluation.
    pub e: Option<String>,
    /// Evaluation wall time in seconds.
    pub t: f64,
}

/// The population after one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenRecord {
    /// Generation number (0 = initial population).
    pub g: u32,
    /// Plan indices of the population members.
    pub pop: Vec<u64>,
}

/// Any journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// The header.
    Header(Header),
    /// An evaluated point.
    Point(PointRecord),
    /// A finished generation.
    Gen(GenRecord),
}

/// Journal problems.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A damaged record that is not a torn last line.
    #[error("{path}:{line}: corrupt journal record ({reason}); nothing was written: move the journal aside to start afresh, or repair that line")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another process holds the journal.
    #[error("{0}: another archsweep process is writing to this journal")]
    Locked(PathBuf),
}

/// Formats a record as one journal line (with CRC and newline).
pub fn line(record: &Record) -> String {
    let mut out = Vec::new();
    push_line(&mut out, record);
    String::from_utf8(out).unwrap_or_default()
}

/// A point record by reference, serialised exactly as `Record::Point`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum PointRef<'a> {
    Point(&'a PointRecord),
}

/// Appends a point record as one journal line, without copying it into a [`Record`].
pub fn push_point_line(out: &mut Vec<u8>, point: &PointRecord) {
    push_serialized(out, &PointRef::Point(point));
}

/// Appends a record as one journal line (with CRC and newline) to `out`.
pub fn push_line(out: &mut Vec<u8>, record: &Record) {
    push_serialized(out, record);
}

fn push_serialized<T: Serialize>(out: &mut Vec<u8>, record: &T) {
    let start = out.len();
    // Serialising our records cannot fail: all keys are strings and all floats finite
    // (a non-finite metric marks its point failed before it is recorded).
    if serde_json::to_writer(&mut *out, record).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"{\"kind\":\"invalid\"}");
    }
    let crc = crc32fast::hash(&out[start..]);
    let _ = writeln!(out, "\t{crc:08x}");
}

fn parse_line(text: &str) -> Result<Record, String> {
    let (json, crc) = text.rsplit_once('\t').ok_or("no checksum")?;
    let want = u32::from_str_radix(crc.trim_end_matches('\r'), 16)
        .map_err(|_| "unreadable checksum".to_string())?;
    if crc32fast::hash(json.as_bytes()) != want {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

/// What a journal holds.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// The header (absent only for an empty file).
    pub header: Option<Header>,
    /// Evaluated points in file order.
    pub points: Vec<PointRecord>,
    /// Finished generations in file order.
    pub gens: Vec<GenRecord>,
    /// Byte length of the intact prefix.
    pub valid_len: u64,
    /// Whether a torn last line was dropped.
    pub torn_tail: bool,
}

/// Reads a whole journal.
pub fn read(path: &Path) -> Result<Contents, JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = File::open(path).map_err(io_err)?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut out = Contents::default();
    let mut buf = Vec::new();
    let mut lineno = 0;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        lineno += 1;
        if buf.last() != Some(&b'\n') {
            out.torn_tail = true;
            break;
        }
        let corrupt = |reason: String| JournalError::Corrupt {
            path: path.to_path_buf(),
            line: lineno,
            reason,
        };
        let text = std::str::from_utf8(&buf[..n - 1]).map_err(|_| corrupt("not UTF-8".into()))?;
        match parse_line(text).map_err(corrupt)? {
            Record::Header(h) if lineno == 1 => out.header = Some(h),
            Record::Header(_) => return Err(corrupt("a second header".into())),
            _ if lineno == 1 => return Err(corrupt("the first record is not a header".into())),
            Record::Point(p) => out.points.push(p),
            Record::Gen(g) => out.gens.push(g),
        }
        out.valid_len += n as u64;
    }
    Ok(out)
}

enum Msg {
    Lines(Vec<u8>),
    Points(Vec<std::sync::Arc<PointRecord>>),
}

/// Appends lines from many threads through one writer thread with group commit.
pub struct Writer {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<io::Result<()>>>,
    path: PathBuf,
}

impl Writer {
    /// Opens `path` for appending (creating it with `header` when missing, cutting a torn tail
    /// at `valid_len` otherwise) and takes an exclusive lock on it.
    pub fn open(
        path: &Path,
        header: Option<&Header>,
        valid_len: Option<u64>,
        sync_every: Duration,
    ) -> Result<Writer, JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = OpenOptions::new()
            .create(true)
            .append(false)
            .write(true)
            .read(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked(path.to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        if let Some(len) = valid_len {
            if f.metadata().map_err(io_err)?.len() > len {
                f.set_len(len).map_err(io_err)?;
            }
        }
        f.seek(SeekFrom::End(0)).map_err(io_err)?;
        if let Some(h) = header {
            f.write_all(line(&Record::Header(h.clone())).as_bytes())
                .map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
        }
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer_loop(f, rx, sync_every))
            .map_err(io_err)?;
        Ok(Writer {
            tx: Some(tx),
            handle: Some(handle),
            path: path.to_path_buf(),
        })
    }

    /// A handle for appending from worker threads.
    pub fn sender(&self) -> LineSender {
        LineSender(self.tx.clone())
    }

    /// Appends one record.
    pub fn append(&self, record: &Record) {
        self.sender().send(line(record).into_bytes());
    }

    /// Writes and syncs everything, then closes the file.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.tx.take();
        let r = self.handle.take().map(|h| h.join());
        match r {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(source))) => Err(JournalError::Io {
                path: self.path.clone(),
                source,
            }),
            Some(Err(_)) => Err(JournalError::Io {
                path: self.path.clone(),
                source: io::Error::other("journal writer panicked"),
            }),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A cloneable handle that sends finished lines to the writer.
#[derive(Clone)]
pub struct LineSender(Option<Sender<Msg>>);

impl LineSender {
    /// Queues point records for the writer thread to format (while the sender goes on
    /// working).
    pub fn send_points(&self, points: Vec<std::sync::Arc<PointRecord>>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Msg::Points(points));
        }
    }

    /// Queues formatted lines (see [`push_line`]).
    pub fn send(&self, lines: Vec<u8>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Msg::Lines(lines));
        }
    }
}

fn writer_loop(mut f: File, rx: Receiver<Msg>, sync_every: Duration) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut last_sync = Instant::now();
    let mut dirty = false;
    loop {
        let wait = sync_every
            .saturating_sub(last_sync.elapsed())
            .max(Duration::from_millis(1));
        let first = match rx.recv_timeout(if dirty {
            wait
        } else {
            Duration::from_secs(3600)
        }) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let handle = |m: Msg, buf: &mut Vec<u8>| match m {
            Msg::Lines(l) => buf.extend_from_slice(&l),
            Msg::Points(ps) => ps.iter().for_each(|p| push_point_line(buf, p)),
        };
        if let Some(m) = first {
            handle(m, &mut buf);
        }
        while buf.len() < (8 << 20) {
            match rx.try_recv() {
                Ok(m) => handle(m, &mut buf),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            f.write_all(&buf)?;
            buf.clear();
            dirty = true;
        }
        // Group commit: at most one sync per interval, covering everything written since.
        if dirty && last_sync.elapsed() >= sync_every {
            f.sync_data()?;
            last_sync = Instant::now();
            dirty = false;
        }
    }
    f.write_all(&buf)?;
    f.sync_data()
}

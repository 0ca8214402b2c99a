//! Runs a study: parallel evaluation on all cores, every finished point appended to the journal,
//! resume by skipping what the journal holds, shards, and the tables and report at the end.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::config::Study;
use crate::journal::{
    self, GenRecord, Header, JournalError, LineSender, PointRecord, Record, Writer,
};
use crate::model::{EvalContext, Value};
use crate::space::{IdMap, IdSet, PointHasher, PointId};
use crate::strategy::evolve::{self, Evaluated, Evaluator};
use crate::strategy::sampling::Plan;

/// Receives progress (a terminal progress bar, or nothing).
pub trait Progress: Send + Sync {
    /// The run starts: `total` points planned.
    fn begin(&self, total: u64);
    /// `n` more points are finished (evaluated now or found in the journal).
    fn advance(&self, n: u64);
    /// The run has ended.
    fn end(&self);
}

/// Progress that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// One shard of a sweep: the points whose plan index is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard number.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid shard '{s}': expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// How to run.
pub struct RunOptions {
    /// Output directory (journal, tables, report).
    pub out_dir: PathBuf,
    /// Evaluate only this shard.
    pub shard: Option<Shard>,
    /// Progress display.
    pub progress: Arc<dyn Progress>,
    /// Set to stop after the points in flight (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
    /// Longest time between journal syncs.
    pub sync_interval: Duration,
    /// Write the tables and report at the end.
    pub write_outputs: bool,
}

impl RunOptions {
    /// Defaults: no shard, silent, 1 s sync interval, outputs written.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            out_dir: out_dir.into(),
            shard: None,
            progress: Arc::new(Silent),
            cancel: Arc::new(AtomicBool::new(false)),
            sync_interval: Duration::from_secs(1),
            write_outputs: true,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Points evaluated by this run.
    pub evaluated: usize,
    /// Points found in the journal and not evaluated again.
    pub reused: usize,
    /// Points (in the whole journal) whose evaluation failed.
    pub failed: usize,
    /// Points in the journal at the end.
    pub stored: usize,
    /// Feasible points in the journal at the end.
    pub feasible: usize,
    /// The run stopped early (interrupt): run again to resume.
    pub interrupted: bool,
    /// A torn last journal line was cut off.
    pub torn_tail: bool,
}

/// Run failures.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Journal trouble.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The output directory cannot be created or written.
    #[error("{path}: cannot use as output directory: {source}")]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The directory holds another study, or the replay disagrees with the journal.
    #[error("{0}")]
    Mismatch(String),
    /// Writing the tables failed.
    #[error(transparent)]
    Table(#[from] crate::results::TableError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// An option that does not fit the study.
    #[error("{0}")]
    Usage(String),
}

/// The journal header a study writes.
pub fn header(study: &Study, shard: Option<Shard>) -> Header {
    let info = study.model.info();
    Header {
        format: journal::FORMAT,
        study: study.name.clone(),
        model: info.name.clone(),
        model_version: info.version.clone(),
        config_hash: study.config_hash.clone(),
        seed: study.seed,
        strategy: study.strategy.name().to_string(),
        params: info.params.iter().map(|p| p.name.clone()).collect(),
        metrics: info.metrics.iter().map(|m| m.name.clone()).collect(),
        shard: shard.map(|s| [s.index, s.count]),
    }
}

/// Opens (or creates) the journal of `study` in `dir`, checking that it belongs to the study.
/// Returns its contents and a writer positioned for appending.
pub fn open_journal(
    study: &Study,
    dir: &Path,
    shard: Option<Shard>,
    sync: Duration,
) -> Result<(journal::Contents, Writer), RunError> {
    std::fs::create_dir_all(dir).map_err(|source| RunError::OutputDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("journal.jsonl");
    let want = header(study, shard);
    let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
    if !exists {
        write_config_copy(&dir.join("study.toml"), &study.source)?;
        let w = Writer::open(&path, Some(&want), Some(0), sync)?;
        return Ok((
            journal::Contents {
                header: Some(want),
                ..Default::default()
            },
            w,
        ));
    }
    let contents = journal::read(&path)?;
    let have = contents
        .header
        .clone()
        .ok_or_else(|| JournalError::Corrupt {
            path: path.clone(),
            line: 1,
            reason: "torn header".into(),
        })?;
    if have.config_hash != want.config_hash
        || have.model != want.model
        || have.model_version != want.model_version
    {
        return Err(RunError::Mismatch(format!(
            "{}: holds results of another study configuration (study '{}', model {} v{}, config hash {}) than this one (study '{}', model {} v{}, config hash {}); results are never overwritten: choose another output directory",
            dir.display(), have.study, have.model, have.model_version, have.config_hash, want.study, want.model, want.model_version, want.config_hash
        )));
    }
    if have.shard != want.shard {
        let show = |s: Option<[usize; 2]>| {
            s.map_or("the whole study".to_string(), |[i, n]| {
                format!("shard {i}/{n}")
            })
        };
        return Err(RunError::Mismatch(format!(
            "{}: holds {}, but this run asks for {}; use one output directory per shard",
            dir.display(),
            show(have.shard),
            show(want.shard)
        )));
    }
    let w = Writer::open(&path, None, Some(contents.valid_len), sync)?;
    Ok((contents, w))
}

/// Writes the copy of the sweep file that `report` and `merge` read back, refusing to replace a
/// different file of that name.
pub(crate) fn write_config_copy(path: &Path, source: &str) -> Result<(), RunError> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == source => Ok(()),
        Ok(_) => Err(RunError::Mismatch(format!(
            "{}: exists with other contents and would be replaced by this study's config; choose another output directory",
            path.display()
        ))),
        Err(_) => std::fs::write(path, source).map_err(|source| RunError::OutputDir { path: path.to_path_buf(), source }),
    }
}

/// Runs a study to the end (or until cancelled), then writes the tables and report.
pub fn run(study: &Study, opts: &RunOptions) -> Result<RunSummary, RunError> {
    if opts.shard.is_some() && study.strategy.evolutionary().is_some() {
        return Err(RunError::Usage(format!("--shard splits grid/random/lhs/sobol sweeps; strategy '{}' chooses each generation from the last and runs whole", study.strategy.name())));
    }
    let (contents, writer) = open_journal(study, &opts.out_dir, opts.shard, opts.sync_interval)?;
    let header = contents
        .header
        .clone()
        .unwrap_or_else(|| header(study, opts.shard));
    // Room for every planned point up front (capped), so the maps never rehash mid-run.
    let capacity = contents
        .points
        .len()
        .max(study.planned_points().min(1 << 24));
    let mut st = State {
        study,
        opts,
        by_hash: IdMap::with_capacity_and_hasher(capacity, Default::default()),
        hasher: PointHasher::new(
            &study.model.info().name,
            &study.model.info().version,
            &study.space.names,
        ),
        cost: AtomicU64::new(f64::NAN.to_bits()),
        records: Vec::with_capacity(capacity),
        gens: contents.gens.iter().map(|g| (g.g, g.pop.clone())).collect(),
        sender: writer.sender(),
        writer: &writer,
        summary: RunSummary {
            torn_tail: contents.torn_tail,
            ..Default::default()
        },
    };
    for p in contents.points {
        if !st.by_hash.contains_key(&p.h) {
            st.by_hash.insert(p.h, st.records.len());
            st.records.push(Arc::new(p));
        }
    }
    let total = match (opts.shard, study.planned_points()) {
        (Some(s), n) => (n + s.count - 1 - s.index) / s.count,
        (None, n) => n,
    };
    opts.progress.begin(total as u64);
    let completed = match Plan::new(&study.space, &study.strategy, study.seed) {
        Some(plan) => st.run_plan(&plan)?,
        None => evolve::run(study, &mut st)?,
    };
    opts.progress.end();
    let mut summary = st.summary.clone();
    let records = std::mem::take(&mut st.records);
    let mut gens: Vec<GenRecord> = st
        .gens
        .drain()
        .map(|(g, pop)| GenRecord { g, pop })
        .collect();
    gens.sort_by_key(|g| g.g);
    drop(st);
    writer.close()?;
    // The writer has dropped its references: the records are ours alone again.
    let records: Vec<PointRecord> = records
        .into_iter()
        .map(|r| Arc::try_unwrap(r).unwrap_or_else(|r| (*r).clone()))
        .collect();
    summary.interrupted = !completed;
    summary.stored = records.len();
    summary.failed = records.iter().filter(|r| r.m.is_none()).count();
    let analysis = crate::results::Analysis::new(study, records);
    summary.feasible = analysis.violation.iter().filter(|v| **v <= 0.0).count();
    if completed && opts.write_outputs {
        write_outputs(study, &header, analysis, &gens, &opts.out_dir)?;
    }
    Ok(summary)
}

/// Writes the points tables and the report of a finished study.
pub fn write_outputs(
    study: &Study,
    header: &Header,
    analysis: crate::results::Analysis,
    gens: &[GenRecord],
    dir: &Path,
) -> Result<(), RunError> {
    let mut df = crate::results::table(study, header, &analysis).map_err(|e| {
        crate::results::TableError::Polars {
            path: dir.join("points.parquet"),
            message: e.to_string(),
        }
    })?;
    crate::results::write_tables(dir, &mut df)?;
    crate::report::write(study, header, &analysis, gens, dir)?;
    Ok(())
}

struct State<'a> {
    study: &'a Study,
    opts: &'a RunOptions,
    by_hash: IdMap<usize>,
    hasher: PointHasher,
    /// Recent wall time per point (seconds, f64 bits): small cheap batches run on the calling
    /// thread, where waking the pool would cost more than the work.
    cost: AtomicU64,
    /// Stored points, shared with the journal writer while it formats them.
    records: Vec<Arc<PointRecord>>,
    gens: HashMap<u32, Vec<u64>>,
    sender: LineSender,
    writer: &'a Writer,
    summary: RunSummary,
}

/// A point to evaluate: plan index, identity, values.
type Item = (u64, PointId, Vec<Value>);

impl State<'_> {
    fn cancelled(&self) -> bool {
        self.opts.cancel.load(Ordering::Relaxed)
    }

    /// Evaluates points, in parallel unless the batch is cheap, journaling each as it
    /// finishes. `None` entries were skipped because of cancellation.
    fn evaluate_points(&self, items: Vec<Item>, gen: Option<u32>) -> Vec<Option<Arc<PointRecord>>> {
        let n = items.len();
        if n == 0 {
            return Vec::new();
        }
        let threads = rayon::current_num_threads().max(1);
        let est = f64::from_bits(self.cost.load(Ordering::Relaxed));
        // Unknown cost (NaN) counts as expensive.
        let cheap = est * n as f64 <= 2e-3;
        let parallel = threads > 1 && n > 1 && !cheap;
        let start = Instant::now();
        let out: Vec<Option<Arc<PointRecord>>> = if parallel {
            let chunk = (n / (threads * 8)).clamp(1, 256);
            items
                .into_par_iter()
                .chunks(chunk)
                .flat_map_iter(|c| self.evaluate_chunk(c, gen, true))
                .collect()
        } else {
            // Inline: the writer thread formats the lines on the other core meanwhile.
            self.evaluate_chunk(items, gen, threads == 1)
        };
        let per_point =
            start.elapsed().as_secs_f64() * if parallel { threads as f64 } else { 1.0 } / n as f64;
        self.cost.store(per_point.to_bits(), Ordering::Relaxed);
        out
    }

    /// Evaluates one chunk and journals it: formatted here when `format_here` (parallel
    /// workers), else handed to the writer thread as records.
    fn evaluate_chunk(
        &self,
        chunk: Vec<Item>,
        gen: Option<u32>,
        format_here: bool,
    ) -> Vec<Option<Arc<PointRecord>>> {
        if self.cancelled() {
            return vec![None; chunk.len()];
        }
        let model = &self.study.model;
        let ctx = EvalContext {
            seed: self.study.seed,
        };
        let start = Instant::now();
        let points: Vec<&[Value]> = chunk.iter().map(|(_, _, p)| p.as_slice()).collect();
        let batch = catch_unwind(AssertUnwindSafe(|| model.evaluate_batch(&points, &ctx)));
        let per_point = start.elapsed().as_secs_f64() / chunk.len() as f64;
        let outcomes: Vec<(Result<Vec<f64>, String>, f64)> = match batch {
            Ok(rs) if rs.len() == chunk.len() => rs
                .into_iter()
                .map(|r| (r.map_err(|e| e.to_string()), per_point))
                .collect(),
            // A panic (or a wrong count) in a batch: isolate the culprit point by point.
            _ => points
                .iter()
                .map(|p| {
                    let t = Instant::now();
                    let r = match catch_unwind(AssertUnwindSafe(|| model.evaluate(p, &ctx))) {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(payload) => Err(format!("panic: {}", panic_message(&payload))),
                    };
                    (r, t.elapsed().as_secs_f64())
                })
                .collect(),
        };
        let n_metrics = model.info().metrics.len();
        let len = chunk.len();
        let out: Vec<Option<Arc<PointRecord>>> = chunk
            .into_iter()
            .zip(outcomes)
            .map(|((i, h, p), (r, t))| {
                let (m, e) = match r {
                    Ok(m) if m.len() != n_metrics => (
                        None,
                        Some(format!(
                            "model returned {} metrics, declares {n_metrics}",
                            m.len()
                        )),
                    ),
                    Ok(m) if m.iter().any(|x| !x.is_finite()) => {
                        (None, Some(format!("non-finite metric value in {m:?}")))
                    }
                    Ok(m) => (Some(m), None),
                    Err(e) => (None, Some(e)),
                };
                Some(Arc::new(PointRecord {
                    i,
                    h,
                    g: gen,
                    p,
                    m,
                    e,
                    t,
                }))
            })
            .collect();
        if format_here {
            let mut lines = Vec::with_capacity(len * 256);
            for r in out.iter().flatten() {
                journal::push_point_line(&mut lines, r);
            }
            self.sender.send(lines);
        } else {
            self.sender
                .send_points(out.iter().flatten().cloned().collect());
        }
        self.opts.progress.advance(len as u64);
        out
    }

    fn store(&mut self, rec: Arc<PointRecord>) {
        self.by_hash.insert(rec.h, self.records.len());
        self.records.push(rec);
        self.summary.evaluated += 1;
    }

    /// Evaluates the points of `todo` that are new (not stored, first of their identity) and
    /// stores them; the others count as done at once. `false` when cancelled before all were
    /// done.
    fn evaluate_new(&mut self, mut todo: Vec<Item>, gen: Option<u32>) -> bool {
        let before = todo.len();
        let mut seen = IdSet::with_capacity_and_hasher(todo.len(), Default::default());
        todo.retain(|(_, h, _)| !self.by_hash.contains_key(h) && seen.insert(*h));
        self.opts.progress.advance((before - todo.len()) as u64);
        let n = todo.len();
        let results = self.evaluate_points(todo, gen);
        let done = results.iter().filter(|r| r.is_some()).count();
        for r in results.into_iter().flatten() {
            self.store(r);
        }
        done == n
    }

    fn run_plan(&mut self, plan: &Plan) -> Result<bool, RunError> {
        let shard = self.opts.shard;
        let mut k = shard.map_or(0, |s| s.index);
        let step = shard.map_or(1, |s| s.count);
        const BLOCK: usize = 1 << 16;
        while k < plan.len() {
            if self.cancelled() {
                return Ok(false);
            }
            let mut todo = Vec::new();
            let mut reused = 0;
            while k < plan.len() && todo.len() < BLOCK {
                let p = plan.point(k);
                let h = self.hasher.id(&p);
                if self.by_hash.contains_key(&h) {
                    reused += 1;
                } else {
                    todo.push((k as u64, h, p));
                }
                k += step;
            }
            self.summary.reused += reused;
            self.opts.progress.advance(reused as u64);
            if !self.evaluate_new(todo, None) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Evaluator for State<'_> {
    type Error = RunError;

    fn hasher(&self) -> &PointHasher {
        &self.hasher
    }

    fn evaluate(
        &mut self,
        gen: u32,
        points: Vec<Item>,
    ) -> Result<Option<Vec<Evaluated>>, RunError> {
        if self.cancelled() {
            return Ok(None);
        }
        let reused = points
            .iter()
            .filter(|(_, h, _)| self.by_hash.contains_key(h))
            .count();
        self.summary.reused += reused;
        let ids: Vec<PointId> = points.iter().map(|(_, h, _)| *h).collect();
        if !self.evaluate_new(points, Some(gen)) {
            return Ok(None);
        }
        let out = ids
            .iter()
            .map(|h| {
                let rec = &self.records[self.by_hash[h]];
                match &rec.m {
                    Some(m) => Evaluated {
                        index: rec.i,
                        objectives: self.study.objective_vector(m),
                        violation: self.study.violation(&rec.p, m),
                    },
                    None => Evaluated {
                        index: rec.i,
                        objectives: vec![f64::MAX; self.study.objectives.len()],
                        violation: f64::INFINITY,
                    },
                }
            })
            .collect();
        Ok(Some(out))
    }

    fn generation_done(&mut self, gen: u32, population: &[u64]) -> Result<(), RunError> {
        match self.gens.get(&gen) {
            Some(pop) if pop == population => Ok(()),
            Some(_) => Err(RunError::Mismatch(format!(
                "generation {gen} came out differently from the journal's record of it: the model '{}' is not deterministic for a given point and seed, so the run cannot be resumed; start a new output directory",
                self.study.model.info().name
            ))),
            None => {
                self.writer.append(&Record::Gen(GenRecord { g: gen, pop: population.to_vec() }));
                self.gens.insert(gen, population.to_vec());
                Ok(())
            }
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

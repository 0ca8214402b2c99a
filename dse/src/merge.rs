//! Combining the output directories of a sharded sweep into one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Study};
use crate::journal::{self, Header, PointRecord, Writer};
use crate::model::Registry;
use crate::results::Analysis;
use crate::runner::{write_outputs, RunError};
use crate::space::PointId;

/// What a merge found.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSummary {
    /// Distinct points in the merged study.
    pub points: usize,
    /// Records dropped as duplicates (same point identity).
    pub duplicates: usize,
    /// Shards of the study that no input directory held (`[i, n]` numbering).
    pub missing_shards: Vec<usize>,
}

/// Loads the study whose results are in `dir` (its `study.toml`).
pub fn load_study(dir: &Path, registry: &Registry) -> Result<Study, RunError> {
    let cfg = dir.join("study.toml");
    config::load(&cfg, registry).map_err(|e| RunError::Mismatch(e.to_string()))
}

/// Merges the journals of `inputs` (shards of one study, or partial copies of it) into a new
/// output directory `out`, which must not hold a journal yet.
pub fn merge(
    inputs: &[PathBuf],
    out: &Path,
    registry: &Registry,
) -> Result<MergeSummary, RunError> {
    let first = inputs
        .first()
        .ok_or_else(|| RunError::Usage("merge needs at least one input directory".into()))?;
    let study = load_study(first, registry)?;
    let mut points: BTreeMap<PointId, PointRecord> = BTreeMap::new();
    let mut duplicates = 0;
    let mut shards: Option<(usize, Vec<bool>)> = None;
    let mut whole = false;
    for dir in inputs {
        let path = dir.join("journal.jsonl");
        let j = journal::read(&path)?;
        let h = j
            .header
            .ok_or_else(|| RunError::Mismatch(format!("{}: empty journal", path.display())))?;
        if h.config_hash != study.config_hash {
            return Err(RunError::Mismatch(format!(
                "{}: config hash {} differs from {}'s {}: these are not shards of one study",
                dir.display(),
                h.config_hash,
                first.display(),
                study.config_hash
            )));
        }
        match h.shard {
            Some([i, n]) => {
                let s = shards.get_or_insert_with(|| (n, vec![false; n]));
                if s.0 != n {
                    return Err(RunError::Mismatch(format!(
                        "{}: shard {i}/{n} does not match the other inputs' count of {}",
                        dir.display(),
                        s.0
                    )));
                }
                s.1[i] = true;
            }
            None => whole = true,
        }
        for p in j.points {
            match points.entry(p.h) {
                std::collections::btree_map::Entry::Occupied(_) => duplicates += 1,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(p);
                }
            }
        }
    }
    let jpath = out.join("journal.jsonl");
    if jpath.exists() {
        return Err(RunError::Mismatch(format!("{}: already holds a journal; results are never overwritten: merge into a new directory", out.display())));
    }
    std::fs::create_dir_all(out).map_err(|source| RunError::OutputDir {
        path: out.to_path_buf(),
        source,
    })?;
    crate::runner::write_config_copy(&out.join("study.toml"), &study.source)?;
    let header = Header {
        shard: None,
        ..crate::runner::header(&study, None)
    };
    let w = Writer::open(&jpath, Some(&header), Some(0), Duration::from_secs(1))?;
    let mut recs: Vec<PointRecord> = points.into_values().collect();
    recs.sort_by_key(|r| r.i);
    let mut lines = Vec::new();
    for r in &recs {
        journal::push_point_line(&mut lines, r);
    }
    w.sender().send(lines);
    w.close()?;
    let missing_shards = match (&shards, whole) {
        (Some((_, seen)), false) => seen
            .iter()
            .enumerate()
            .filter(|(_, s)| !**s)
            .map(|(i, _)| i)
            .collect(),
        _ => Vec::new(),
    };
    let n = recs.len();
    write_outputs(&study, &header, Analysis::new(&study, recs), &[], out)?;
    Ok(MergeSummary {
        points: n,
        duplicates,
        missing_shards,
    })
}

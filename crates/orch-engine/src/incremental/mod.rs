//! Incremental sources: a `load` with `incremental:` reads only what is new since its last
//! run. One file per mode:
//!
//! - [`append`]: one file that only grows (new bytes after the last read);
//! - [`files`]: a folder or glob of daily drops (files not read before);
//! - [`column`]: rows above a high-water mark of one column.
//!
//! Every mode keeps what it read as Parquet *parts* under the state folder
//! (`sources/<key>/`), one per run that found new rows, and a [`Watermark`] saying what the
//! parts cover. The step's result is the scan of the old parts plus the new rows (kept in
//! memory), so downstream steps read columnar data instead of re-parsing CSV, and the delta
//! engine (`delta.rs`) sees exactly the new rows. The new part is written beside the run
//! (off its critical path), staged, and committed with the advanced watermark only after the
//! run's outputs are durable. When what was read before changed (a row edited, a file
//! rewritten or removed), the mode reads everything again and says why.

pub mod append;
pub mod column;
pub mod files;

use crate::plan::Plan;
use orch_state::{FileRecord, StepRecord};
use orch_steps::storage::Staged;
use orch_steps::{IncrementalSource, RunError};
use polars::prelude::{DataFrame, ParquetCompression};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use append::read_append;

/// What an incremental source has read so far (stored as JSON in its step record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    /// `append`: bytes of the file the parts cover.
    pub bytes: u64,
    /// `append`: whether those bytes ended with a line break. If not, the next run checks
    /// that the last line was not extended (a writer that was still writing it).
    #[serde(default = "yes")]
    pub ends_with_newline: bool,
    /// `append`: line breaks in those bytes, so that the line numbers of a later tail are
    /// known without reading the file's beginning again (`None` in older watermarks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    /// `append`: the hash (see [`crate::hash`]) of those bytes. `column`: of the files' hashes at the last read.
    pub prefix_hash: String,
    /// The parts, oldest first.
    pub parts: Vec<String>,
    pub rows: u64,
    /// The shared-parts key (file + load options); empty in watermarks from older versions.
    #[serde(default)]
    pub key: String,
    /// `files`: the files read so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SeenFile>,
    /// `column`: the largest value read so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<column::HighWater>,
}

impl Watermark {
    /// One line for `orchestrator status`: how far the source was read.
    /// `mode` is the source's `incremental:` mode.
    pub fn describe(&self, mode: &str) -> String {
        let parts = format!(
            "{} part{}",
            self.parts.len(),
            if self.parts.len() == 1 { "" } else { "s" }
        );
        match mode {
            "column" => format!(
                "column: read up to {}, {parts}",
                self.high_water
                    .as_ref()
                    .map_or("(nothing yet)", |h| &h.shown)
            ),
            "files" => match self.files.last() {
                Some(f) => format!(
                    "files: {} read (last `{}`), {parts}",
                    self.files.len(),
                    f.path
                ),
                None => format!("files: none yet, {parts}"),
            },
            _ => format!("append: {} bytes read, {parts}", self.bytes),
        }
    }
}

/// A file an incremental `files` source has read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeenFile {
    pub path: String,
    pub size: u64,
    pub hash: String,
}

fn yes() -> bool {
    true
}

/// What an incremental source contributes to a run.
pub struct SourceRead {
    pub step: usize,
    /// Committed parts the result starts with (empty on a full read).
    pub old_parts: Vec<PathBuf>,
    /// The rows read this run (`None`: nothing new).
    pub new_frame: Option<DataFrame>,
    /// Where the new rows are kept once the run commits ([`stage_part`] writes them).
    pub new_part: Option<PathBuf>,
    /// This pipeline's own parts from its last run were extended, so `new_frame` holds
    /// exactly the rows added since then (`false`: read from scratch or from another
    /// pipeline's parts, see `note`).
    pub incremental: bool,
    pub watermark: Watermark,
    /// "appended: 120 new rows", "full read: the file's beginning changed".
    pub note: String,
    pub new_rows: u64,
    /// The files read, with their content hash: the step's fingerprint uses them, so nothing
    /// is hashed twice, and the next run reuses them for files not written since.
    pub hashes: Vec<FileRecord>,
    /// Rows the read set aside (`on_bad_rows: skip | quarantine`), as run warnings.
    pub warnings: Vec<String>,
    pub elapsed: std::time::Duration,
}

/// Input files recorded by earlier runs (by path): see [`crate::fingerprint::input_hash`].
pub type Inputs = HashMap<String, FileRecord>;

/// What earlier runs left for an incremental read.
#[derive(Clone, Copy)]
pub struct Earlier<'a> {
    /// This step's record from its last run.
    pub prev: Option<&'a StepRecord>,
    /// The watermarks other pipelines of this state folder keep for the same source (used
    /// by `append`).
    pub shared: &'a [Watermark],
    pub inputs: &'a Inputs,
    pub full_refresh: bool,
}

/// Reads what is new in incremental source `i`, in its mode.
pub fn read_source(
    plan: &Plan,
    i: usize,
    earlier: Earlier<'_>,
    state_dir: &Path,
) -> Result<SourceRead, RunError> {
    let t0 = std::time::Instant::now();
    let step = &plan.steps[i].step;
    let mut read = match step.incremental() {
        Some(IncrementalSource::Append { .. }) => read_append(plan, i, earlier, state_dir),
        Some(IncrementalSource::Files { .. }) => {
            let files = step.reads();
            files::read_files(plan, i, &files, earlier, state_dir)
        }
        Some(IncrementalSource::Column { column, .. }) => {
            let files = step.reads();
            column::read_column(plan, i, &files, &column, earlier, state_dir)
        }
        None => Err(RunError::internal("not an incremental source")),
    }?;
    // The load kept what it set aside while parsing; a load's `validate` hands it over.
    read.warnings = step.validate(&DataFrame::empty())?;
    read.elapsed = t0.elapsed();
    Ok(read)
}

/// The previous watermark of a source, unless this is a full refresh or it was kept for
/// another source (the step's path, mode or options changed: its parts hold other rows).
/// Watermarks from before keys existed (empty key) are left to the mode's own checks.
fn own_watermark(prev: Option<&StepRecord>, full_refresh: bool, key: &str) -> Option<Watermark> {
    if full_refresh {
        return None;
    }
    prev.and_then(|r| r.watermark.clone())
        .and_then(|w| serde_json::from_value::<Watermark>(w).ok())
        .filter(|w| w.key.is_empty() || w.key == key)
}

/// Source `i`'s previous watermark to extend, or why there is none (full refresh, first
/// run, the step's path or options changed, a stored part is missing).
fn previous(prev: Option<&StepRecord>, full_refresh: bool, key: &str) -> Result<Watermark, String> {
    match own_watermark(prev, full_refresh, key) {
        None if full_refresh => Err("--full-refresh".into()),
        None if prev.is_some_and(|r| r.watermark.is_some()) => {
            Err("the step's path or options changed".into())
        }
        None => Err("first run".into()),
        Some(w) => match missing_part(&w) {
            Some(why) => Err(why),
            None => Ok(w),
        },
    }
}

/// The record (content hash) of each file, and one hash over all of them (names and
/// contents). Files not written since an earlier run are not read.
fn hash_files(files: &[String], inputs: &Inputs) -> Result<(Vec<FileRecord>, String), RunError> {
    let hashes = files
        .iter()
        .map(|f| crate::fingerprint::input_hash(Path::new(f), inputs.get(f)))
        .collect::<Result<Vec<_>, RunError>>()?;
    let mut h = crate::hash::Hasher::new();
    for r in &hashes {
        h.update(r.path.as_bytes());
        h.update(&[0]);
        h.update(r.hash.as_bytes());
    }
    Ok((hashes, h.hex()))
}

/// Why a watermark's parts cannot be used, if one is missing.
fn missing_part(w: &Watermark) -> Option<String> {
    w.parts
        .iter()
        .any(|p| !Path::new(p).exists())
        .then(|| "a stored part is missing".to_string())
}

/// The shared-parts key of incremental source `i`: what it reads (its path made absolute:
/// the same file named from another folder is the same source) and the load's options.
pub fn source_key(plan: &Plan, i: usize) -> Option<String> {
    let s = &plan.steps[i];
    let pattern = s.step.incremental()?.pattern().to_string();
    let where_ = std::fs::canonicalize(&pattern)
        .or_else(|_| std::path::absolute(&pattern))
        .unwrap_or_else(|_| PathBuf::from(&pattern));
    let mut h = crate::hash::Hasher::new();
    h.update(where_.to_string_lossy().as_bytes());
    h.update(&[0]);
    h.update(s.step.fingerprint().as_bytes());
    Some(h.hex().chars().take(20).collect())
}

/// Folder of source `i`'s parts.
fn parts_dir(plan: &Plan, i: usize, state_dir: &Path) -> (String, PathBuf) {
    let key = source_key(plan, i).unwrap_or_default();
    let dir = state_dir.join("sources").join(&key);
    (key, dir)
}

/// Collects a load's plan for new rows, naming the step and what was read on failure.
fn collect_new(
    plan: &Plan,
    i: usize,
    lf: polars::prelude::LazyFrame,
    what: &str,
) -> Result<DataFrame, RunError> {
    let t0 = std::time::Instant::now();
    let mut df = lf
        .collect()
        .map_err(|e| RunError::engine(format!("step `{}`: reading {what}", plan.steps[i].id), e))?;
    // Rows read from several files or from Parquet row groups come in several chunks, and
    // every gather downstream (join, group) then looks up each row's chunk: one chunk, as
    // the CSV reader's (late_payment's `invoice_amounts` from 248 chunks: 0.46-0.52 s,
    // from one: 0.35-0.40 s).
    df.rechunk_mut_par();
    tracing::debug!(step = %plan.steps[i].id, ms = t0.elapsed().as_millis() as u64, rows = df.height(), "read new rows");
    Ok(df)
}

/// Writes the new rows of an incremental read as a staged Parquet part (committed with the
/// outputs). LZ4: parts are read back often and written once per run, on the run's clock.
pub fn stage_part(
    new_frame: Option<&DataFrame>,
    new_part: Option<&Path>,
) -> Result<Option<Staged>, RunError> {
    let (Some(df), Some(part)) = (new_frame, new_part) else {
        return Ok(None);
    };
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RunError::io(dir.display(), e))?;
    }
    crate::exec::stage_parquet(
        part,
        &mut df.clone(),
        ParquetCompression::Lz4Raw,
        "writing a source part",
    )
    .map(Some)
}

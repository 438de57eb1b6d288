//! `incremental: files`: a folder or glob of files that gains files (daily drops).
//!
//! The watermark lists the files read so far with their size and content hash. A rerun
//! hashes the files it finds: those read before must be unchanged and still there, and the
//! new ones are parsed (each through the load step's own reader) into one new part. A file
//! read before that changed or disappeared means rows were edited or removed: everything is
//! read again, and the run says which file.
//!
//! Row order: new files' rows come after the rows read before, in name order. A full read
//! takes every file in name order, so the two orders differ only when a new file's name
//! sorts before an old one's; results that depend on row order should `sort`.

use super::{collect_new, missing_part, own_watermark, parts_dir, SeenFile, SourceRead, Watermark};
use crate::fingerprint::file_hash;
use crate::plan::Plan;
use orch_state::StepRecord;
use orch_steps::RunError;
use polars::prelude::{concat, UnionArgs};
use std::path::{Path, PathBuf};

/// Reads the files of source `i` (`files`, the matching files now) not read before.
pub fn read_files(
    plan: &Plan,
    i: usize,
    files: &[String],
    prev: Option<&StepRecord>,
    full_refresh: bool,
    state_dir: &Path,
) -> Result<SourceRead, RunError> {
    let s = &plan.steps[i];
    let now = files
        .iter()
        .map(|f| {
            let p = Path::new(f);
            let size = std::fs::metadata(p)
                .map_err(|e| RunError::io(p.display(), e))?
                .len();
            Ok(SeenFile {
                path: f.clone(),
                size,
                hash: file_hash(p)?,
            })
        })
        .collect::<Result<Vec<_>, RunError>>()?;
    let (key, dir) = parts_dir(plan, i, state_dir);
    let own = own_watermark(prev, full_refresh, &key);
    let reason = match &own {
        None if full_refresh => Some("--full-refresh".to_string()),
        None if prev.is_some_and(|r| r.watermark.is_some()) => {
            Some("the step's path or options changed".to_string())
        }
        None => Some("first run".to_string()),
        Some(w) => missing_part(w).or_else(|| changed_file(&w.files, &now)),
    };
    let (mut parts, mut rows, read_before) = match (&reason, own) {
        (None, Some(w)) => (w.parts, w.rows, w.files),
        _ => (Vec::new(), 0, Vec::new()),
    };
    let old_parts: Vec<PathBuf> = parts.iter().map(PathBuf::from).collect();
    let new: Vec<&SeenFile> = now
        .iter()
        .filter(|f| !read_before.iter().any(|b| b.path == f.path))
        .collect();
    let mut new_frame = None;
    let mut new_part = None;
    let mut new_rows = 0;
    if !new.is_empty() {
        let plans = new
            .iter()
            .map(|f| s.step.read_other(&f.path, None))
            .collect::<Result<Vec<_>, _>>()?;
        let stacked = concat(plans, UnionArgs::default())
            .map_err(|e| RunError::engine(format!("step `{}`: stacking new files", s.id), e))?;
        let what = format!("{} new file(s)", new.len());
        let df = collect_new(plan, i, stacked, &what)?;
        new_rows = df.height() as u64;
        // Files with only a header add no rows: recorded as read, but no part.
        if new_rows > 0 {
            let mut h = blake3::Hasher::new();
            for f in &new {
                h.update(f.path.as_bytes());
                h.update(&[0]);
                h.update(f.hash.as_bytes());
            }
            let short: String = h.finalize().to_hex().chars().take(16).collect();
            let part = dir.join(format!("files-{:06}-{short}.parquet", parts.len()));
            parts.push(part.display().to_string());
            new_part = Some(part);
            new_frame = Some(df);
            rows += new_rows;
        }
    }
    let note = match &reason {
        None if new.is_empty() => "no new files".to_string(),
        None => format!("new files: {} ({new_rows} rows)", new.len()),
        Some(why) => format!("full read ({why}): {} files, {new_rows} rows", now.len()),
    };
    let hashes = now
        .iter()
        .map(|f| (f.path.clone(), f.hash.clone()))
        .collect();
    Ok(SourceRead {
        step: i,
        old_parts,
        new_frame,
        new_part,
        incremental: reason.is_none(),
        watermark: Watermark {
            bytes: now.iter().map(|f| f.size).sum(),
            ends_with_newline: true,
            prefix_hash: String::new(),
            parts,
            rows,
            key,
            files: now,
            high_water: None,
        },
        note,
        new_rows,
        hashes,
        warnings: Vec::new(),
        elapsed: Default::default(),
    })
}

/// Why the files read before cannot be kept, if they cannot: one changed or disappeared.
fn changed_file(before: &[SeenFile], now: &[SeenFile]) -> Option<String> {
    before
        .iter()
        .find_map(|b| match now.iter().find(|f| f.path == b.path) {
            None => Some(format!("`{}` was read before and is gone", b.path)),
            Some(f) if f.hash != b.hash => Some(format!("`{}` changed since it was read", b.path)),
            Some(_) => None,
        })
}

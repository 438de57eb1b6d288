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

use super::{collect_new, hash_files, parts_dir, previous, SeenFile, SourceRead, Watermark};
use crate::plan::Plan;
use orch_steps::RunError;
use polars::prelude::{concat, UnionArgs};
use std::path::{Path, PathBuf};

/// Reads the files of source `i` (`files`, the matching files now) not read before.
pub fn read_files(
    plan: &Plan,
    i: usize,
    files: &[String],
    earlier: super::Earlier<'_>,
    state_dir: &Path,
) -> Result<SourceRead, RunError> {
    let super::Earlier {
        prev,
        inputs,
        full_refresh,
        ..
    } = earlier;
    let s = &plan.steps[i];
    let (hashes, _) = hash_files(files, inputs)?;
    let now: Vec<SeenFile> = hashes
        .iter()
        .map(|r| SeenFile {
            path: r.path.clone(),
            size: r.size,
            hash: r.hash.clone(),
        })
        .collect();
    let (key, dir) = parts_dir(plan, i, state_dir);
    let (own, reason) = match previous(prev, full_refresh, &key) {
        Ok(w) => match changed_file(&w.files, &now) {
            Some(why) => (None, Some(why)),
            None => (Some(w), None),
        },
        Err(why) => (None, Some(why)),
    };
    let (mut parts, mut rows, read_before) = match own {
        Some(w) => (w.parts, w.rows, w.files),
        None => (Vec::new(), 0, Vec::new()),
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
            let mut h = crate::hash::Hasher::new();
            for f in &new {
                h.update(f.path.as_bytes());
                h.update(&[0]);
                h.update(f.hash.as_bytes());
            }
            let short: String = h.hex().chars().take(16).collect();
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
    Ok(SourceRead {
        step: i,
        old_parts,
        new_frame,
        new_part,
        incremental: reason.is_none(),
        watermark: Watermark {
            bytes: now.iter().map(|f| f.size).sum(),
            lines: None,
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

//! Incremental `append` sources.
//!
//! A file that only grows is kept, under the state folder, as Parquet *parts*: one per run
//! that found new bytes. The watermark records how many bytes the parts cover and a hash of
//! that prefix. A rerun hashes the prefix again: unchanged, it parses only the appended
//! bytes (header + tail, through the load step's own reader) into one new part; changed (a
//! row edited or removed, the file rewritten), it reads the whole file again and says why.
//! The step's result is the scan of all parts, so downstream steps read columnar data instead
//! of re-parsing CSV. New parts are staged; they and the advanced watermark are committed only
//! after the run's outputs are durable.

use crate::plan::Plan;
use orch_state::StepRecord;
use orch_steps::storage::{stage, Staged};
use orch_steps::RunError;
use polars::prelude::ParquetWriter;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    /// Bytes of the file the parts cover.
    pub bytes: u64,
    /// Whether those bytes ended with a line break. If not, the next run checks that the last
    /// line was not extended (a writer that was still writing it).
    #[serde(default = "yes")]
    pub ends_with_newline: bool,
    /// blake3 of those bytes.
    pub prefix_hash: String,
    /// The parts, oldest first.
    pub parts: Vec<String>,
    pub rows: u64,
}

/// What an append source contributes to a run.
pub struct AppendRead {
    pub step: usize,
    /// Parts to scan: committed ones, then the new one under its temporary name.
    pub scan: Vec<PathBuf>,
    /// The new part, committed with the outputs.
    pub staged: Option<Staged>,
    pub watermark: Watermark,
    /// "read 120 new rows (append)", "full read: the file's beginning changed".
    pub note: String,
    pub new_rows: u64,
    /// Content hash of the whole file (the step's fingerprint uses it: no second read).
    pub content_hash: String,
}

fn yes() -> bool {
    true
}

fn hash_prefix(path: &Path, n: u64) -> Result<String, RunError> {
    let f = std::fs::File::open(path).map_err(|e| RunError::io(path.display(), e))?;
    let mut h = blake3::Hasher::new();
    h.update_reader(f.take(n))
        .map_err(|e| RunError::io(path.display(), e))?;
    Ok(h.finalize().to_hex().to_string())
}

/// One pass over the file: the hash of its first `mid` bytes (if asked) and of all of it.
/// Replaces three separate reads (prefix check, new watermark, fingerprint).
fn hash_once(path: &Path, mid: Option<u64>) -> Result<(Option<String>, String), RunError> {
    let f = std::fs::File::open(path).map_err(|e| RunError::io(path.display(), e))?;
    // SAFETY: read-only map of an input file; a concurrent writer could only change what we
    // hash, which the next run detects through the prefix hash.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| RunError::io(path.display(), e))?;
    let bytes: &[u8] = &map;
    let mut h = blake3::Hasher::new();
    let prefix = match mid {
        Some(m) if (m as usize) <= bytes.len() => {
            h.update_rayon(&bytes[..m as usize]);
            let p = h.finalize().to_hex().to_string();
            h.update_rayon(&bytes[m as usize..]);
            Some(p)
        }
        _ => {
            h.update_rayon(bytes);
            None
        }
    };
    Ok((prefix, h.finalize().to_hex().to_string()))
}

fn read_range(path: &Path, from: u64) -> Result<Vec<u8>, RunError> {
    let mut f = std::fs::File::open(path).map_err(|e| RunError::io(path.display(), e))?;
    f.seek(SeekFrom::Start(from))
        .map_err(|e| RunError::io(path.display(), e))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| RunError::io(path.display(), e))?;
    Ok(buf)
}

/// Why the previous parts cannot be extended, if they cannot.
fn invalid_reason(
    prev: Option<&Watermark>,
    path: &Path,
    size: u64,
    prefix_hash: Option<&str>,
) -> Result<Option<String>, RunError> {
    let Some(w) = prev else {
        return Ok(Some("first run".into()));
    };
    if size < w.bytes {
        return Ok(Some(format!(
            "the file shrank from {} to {size} bytes",
            w.bytes
        )));
    }
    if w.parts.iter().any(|p| !Path::new(p).exists()) {
        return Ok(Some("a stored part is missing".into()));
    }
    if prefix_hash != Some(w.prefix_hash.as_str()) {
        return Ok(Some("rows already read were changed or removed".into()));
    }
    if !w.ends_with_newline && size > w.bytes {
        let next = read_range(path, w.bytes)?;
        if next.first() != Some(&b'\n') && next.first() != Some(&b'\r') {
            return Ok(Some("the last line read was extended".into()));
        }
    }
    Ok(None)
}

/// Reads what is new in append source `i` and stages it as a Parquet part.
pub fn read_append(
    plan: &Plan,
    i: usize,
    prev: Option<&StepRecord>,
    full_refresh: bool,
    state_dir: &Path,
) -> Result<AppendRead, RunError> {
    let s = &plan.steps[i];
    let file = s
        .step
        .append_path()
        .ok_or_else(|| RunError::internal("not an append source"))?;
    let path = Path::new(&file);
    let size = std::fs::metadata(path)
        .map_err(|_| {
            RunError::user(
                format!("input file `{file}` not found"),
                Some("check `path` and the `input_dir` param".into()),
            )
        })?
        .len();
    let prev_wm: Option<Watermark> = if full_refresh {
        None
    } else {
        prev.and_then(|r| r.watermark.clone())
            .and_then(|w| serde_json::from_value(w).ok())
    };
    let (prefix_hash, content_hash) = hash_once(path, prev_wm.as_ref().map(|w| w.bytes))?;
    let reason = if full_refresh {
        Some("--full-refresh".to_string())
    } else {
        invalid_reason(prev_wm.as_ref(), path, size, prefix_hash.as_deref())?
    };
    let dir = state_dir.join("sources").join(&plan.name).join(&s.id);
    let (start, mut parts, mut rows) = match (&reason, &prev_wm) {
        (None, Some(w)) => (w.bytes, w.parts.clone(), w.rows),
        _ => (0, Vec::new(), 0),
    };
    let mut tail = read_range(path, start)?;
    let mut start = start;
    // The previous read ended on a line without a break; its break arrived with this append.
    if let (None, Some(w)) = (&reason, &prev_wm) {
        if !w.ends_with_newline {
            let skip = tail
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()
                .min(2);
            tail.drain(..skip);
            start += skip as u64;
        }
    }
    let tail = &tail[..];
    let end = start + tail.len() as u64;
    let ends_with_newline = tail.last().is_none_or(|&b| b == b'\n');
    let mut scan: Vec<PathBuf> = parts.iter().map(PathBuf::from).collect();
    let mut staged = None;
    let mut new_rows = 0;
    let has_data = if start == 0 {
        // More than a header line.
        tail.iter().filter(|&&b| b == b'\n').count() + usize::from(!ends_with_newline) > 1
    } else {
        tail.iter().any(|&b| b != b'\n' && b != b'\r')
    };
    if has_data {
        // The load step parses the new bytes itself (same schema, formats, checks): give it
        // the header line followed by the tail, as a file of its own.
        let chunk_file = if start == 0 && end == size {
            path.to_path_buf()
        } else {
            let mut content = if start == 0 {
                Vec::new()
            } else {
                read_header(path)?
            };
            content.extend_from_slice(tail);
            if !ends_with_newline {
                content.push(b'\n');
            }
            let tmp = dir.join(format!(".tail-{start}-{end}.csv"));
            std::fs::create_dir_all(&dir).map_err(|e| RunError::io(dir.display(), e))?;
            std::fs::write(&tmp, content).map_err(|e| RunError::io(tmp.display(), e))?;
            tmp
        };
        let result = s
            .step
            .read_other(&chunk_file.display().to_string())
            .and_then(|lf| {
                lf.collect().map_err(|e| {
                    RunError::engine(format!("step `{}`: reading new rows of `{file}`", s.id), e)
                })
            });
        if chunk_file != path {
            let _ = std::fs::remove_file(&chunk_file);
        }
        let mut df = result?;
        new_rows = df.height() as u64;
        let short: String = blake3::hash(tail).to_hex().chars().take(12).collect();
        let part = dir.join(format!("part-{start:012}-{end:012}-{short}.parquet"));
        let st = stage(&part, |f| {
            ParquetWriter::new(f)
                .finish(&mut df)
                .map(|_| ())
                .map_err(|e| RunError::engine("writing a source part", e))
        })?;
        scan.push(st.temp_path().to_path_buf());
        parts.push(part.display().to_string());
        staged = Some(st);
        rows += new_rows;
    }
    let note = match &reason {
        None => format!("appended: {new_rows} new rows ({} bytes)", end - start),
        Some(why) => format!("full read ({why}): {new_rows} rows"),
    };
    let watermark = Watermark {
        bytes: end,
        ends_with_newline,
        // The parts cover the whole file as hashed above (end == size).
        prefix_hash: if end == size {
            content_hash.clone()
        } else {
            hash_prefix(path, end)?
        },
        parts,
        rows,
    };
    Ok(AppendRead {
        step: i,
        scan,
        staged,
        watermark,
        note,
        new_rows,
        content_hash,
    })
}

fn read_header(path: &Path) -> Result<Vec<u8>, RunError> {
    let mut f = std::fs::File::open(path).map_err(|e| RunError::io(path.display(), e))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = f
            .read(&mut chunk)
            .map_err(|e| RunError::io(path.display(), e))?;
        if n == 0 {
            return Ok(buf);
        }
        if let Some(p) = chunk[..n].iter().position(|&b| b == b'\n') {
            buf.extend_from_slice(&chunk[..=p]);
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

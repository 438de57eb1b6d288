//! `incremental: append`: a file that only grows.
//!
//! The watermark records how many bytes the parts cover and a hash of that prefix. A rerun
//! hashes the prefix again: unchanged, it parses only the appended bytes (header + tail,
//! through the load step's own reader) into one new part; changed (a row edited or removed,
//! the file rewritten), it reads the whole file again and says why.
//!
//! Parts are shared: two pipelines of one state folder reading the same file with the same
//! options (the bundled pair) parse it once. Parts are immutable and named by byte range and
//! content, so sharing them needs no coordination beyond the state folder's lock.

use super::{missing_part, own_watermark, parts_dir, SourceRead, Watermark};
use crate::fingerprint;
use crate::plan::Plan;
use orch_steps::{IncrementalSource, RunError};
use std::io::Read;
use std::path::{Path, PathBuf};

fn hash_prefix(path: &Path, n: u64) -> Result<String, RunError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| RunError::io(path.display(), e))?
        .take(n);
    let mut h = crate::hash::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let got = f
            .read(&mut buf)
            .map_err(|e| RunError::io(path.display(), e))?;
        if got == 0 {
            return Ok(h.hex());
        }
        h.update(&buf[..got]);
    }
}

/// One pass over the file's bytes: the hash of each prefix asked for (by length) and of
/// all of it. Replaces separate reads (prefix checks, new watermark, fingerprint).
fn hash_once(bytes: &[u8], mids: &[u64]) -> (Vec<Option<String>>, String) {
    let mut order: Vec<usize> = (0..mids.len()).collect();
    order.sort_by_key(|&i| mids[i]);
    let mut prefixes = vec![None; mids.len()];
    let mut h = crate::hash::Hasher::new();
    let mut done = 0usize;
    for i in order {
        let m = mids[i] as usize;
        if m > bytes.len() {
            continue;
        }
        // A finalised hasher can go on: each prefix costs only the bytes since the last.
        h.update(&bytes[done..m]);
        done = m;
        prefixes[i] = Some(h.hex());
    }
    h.update(&bytes[done..]);
    (prefixes, h.hex())
}

/// The file's bytes, mapped rather than read, once per read: they are hashed, checked and
/// counted in place, and only the appended tail of a rerun is ever copied. A concurrent
/// writer could only change what we hash, which the next run detects through the prefix
/// hash.
fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>, RunError> {
    let f = std::fs::File::open(path).map_err(|e| RunError::io(path.display(), e))?;
    let len = f
        .metadata()
        .map_err(|e| RunError::io(path.display(), e))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: read-only map of an input file (see above).
    unsafe { memmap2::Mmap::map(&f) }
        .map(Some)
        .map_err(|e| RunError::io(path.display(), e))
}

/// Why the previous parts cannot be extended, if they cannot.
fn invalid_reason(
    prev: Option<&Watermark>,
    bytes: &[u8],
    size: u64,
    prefix_hash: Option<&str>,
) -> Option<String> {
    let Some(w) = prev else {
        return Some("first run".into());
    };
    if size < w.bytes {
        return Some(format!("the file shrank from {} to {size} bytes", w.bytes));
    }
    if let Some(why) = missing_part(w) {
        return Some(why);
    }
    if !crate::hash::is_current(&w.prefix_hash) {
        return Some("the state was written by an older version of orchestrator".into());
    }
    if prefix_hash != Some(w.prefix_hash.as_str()) {
        return Some("rows already read were changed or removed".into());
    }
    if !w.ends_with_newline && size > w.bytes {
        let next = bytes.get(w.bytes as usize);
        if next != Some(&b'\n') && next != Some(&b'\r') {
            return Some("the last line read was extended".into());
        }
    }
    None
}

/// Reads what is new in append source `i`. `shared` are the watermarks other pipelines of
/// this state folder keep for the same file and options: their parts are reused when this
/// pipeline has none of its own that fit.
pub fn read_append(
    plan: &Plan,
    i: usize,
    earlier: super::Earlier<'_>,
    state_dir: &Path,
) -> Result<SourceRead, RunError> {
    let super::Earlier {
        prev,
        shared,
        inputs,
        full_refresh,
    } = earlier;
    let s = &plan.steps[i];
    let Some(IncrementalSource::Append { path: file }) = s.step.incremental() else {
        return Err(RunError::internal("not an append source"));
    };
    let path = Path::new(&file);
    let size = std::fs::metadata(path)
        .map_err(|_| {
            RunError::user(
                format!("input file `{file}` not found"),
                Some("check `path` and the `input_dir` param".into()),
            )
        })?
        .len();
    let (key, dir) = parts_dir(plan, i, state_dir);
    let own = own_watermark(prev, full_refresh, &key);
    let before = fingerprint::status(path);
    // Not written since a run recorded it, and this pipeline's parts cover all of it:
    // nothing new, and nothing to hash (an unchanged rerun stays cheap at any size).
    if let (Some(w), Some(rec)) = (&own, inputs.get(&file)) {
        if w.bytes == size
            && w.prefix_hash == rec.hash
            && missing_part(w).is_none()
            && fingerprint::unchanged_since(before, rec)
        {
            return Ok(SourceRead {
                step: i,
                old_parts: w.parts.iter().map(PathBuf::from).collect(),
                new_frame: None,
                new_part: None,
                incremental: true,
                watermark: w.clone(),
                note: "appended: 0 new rows (not written since the last run)".into(),
                new_rows: 0,
                hashes: vec![rec.clone()],
                warnings: Vec::new(),
                elapsed: Default::default(),
            });
        }
    }
    // Candidates: this pipeline's own watermark first, then the other pipelines' for the
    // same file and options (longest first), all checked against one hash pass.
    let mut candidates: Vec<Watermark> = own.clone().into_iter().collect();
    if !full_refresh {
        let mut others: Vec<Watermark> = shared
            .iter()
            .filter(|w| !key.is_empty() && w.key == key && w.bytes <= size)
            .cloned()
            .collect();
        others.sort_by_key(|w| std::cmp::Reverse(w.bytes));
        candidates.extend(others.into_iter().take(3));
    }
    let mids: Vec<u64> = candidates.iter().map(|w| w.bytes).collect();
    let map = map_file(path)?;
    let all: &[u8] = map.as_deref().unwrap_or_default();
    let (prefixes, content_hash) = hash_once(all, &mids);
    let mut reason = if full_refresh {
        Some("--full-refresh".to_string())
    } else {
        invalid_reason(
            own.as_ref(),
            all,
            size,
            prefixes.first().cloned().flatten().as_deref(),
        )
    };
    let mut prev_wm = own;
    // Whether the parts extended are this pipeline's own: only then are the new rows exactly
    // what its stored state lacks (another pipeline may have read more, or an edited file).
    let mut extends_own = reason.is_none();
    if reason.is_some() && !full_refresh {
        let skip = usize::from(prev_wm.is_some());
        for (w, p) in candidates.iter().zip(&prefixes).skip(skip) {
            if invalid_reason(Some(w), all, size, p.as_deref()).is_none() {
                tracing::debug!(step = %s.id, bytes = w.bytes, "reusing parts read by another pipeline");
                prev_wm = Some(w.clone());
                reason = None;
                extends_own = false;
                break;
            }
        }
    }
    let (start, mut parts, mut rows) = match (&reason, &prev_wm) {
        (None, Some(w)) => (w.bytes, w.parts.clone(), w.rows),
        _ => (0, Vec::new(), 0),
    };
    let mut start = start.min(all.len() as u64);
    let breaks = |b: &[u8]| memchr::memchr_iter(b'\n', b).count() as u64;
    // Line breaks before the tail: what the parts cover, as the watermark counted them.
    let mut lines_before_tail = 0;
    if let (None, Some(w)) = (&reason, &prev_wm) {
        lines_before_tail = match w.lines {
            Some(n) => n,
            None => breaks(&all[..start as usize]),
        };
        // The previous read ended on a line without a break; its break arrived with this
        // append.
        if !w.ends_with_newline {
            let rest = &all[start as usize..];
            let skip = rest
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count()
                .min(2);
            lines_before_tail += breaks(&rest[..skip]);
            start += skip as u64;
        }
    }
    let tail = &all[start as usize..];
    let tail_breaks = breaks(tail);
    let end = start + tail.len() as u64;
    let ends_with_newline = tail.last().is_none_or(|&b| b == b'\n');
    // The parts cover the whole file as hashed above when end == size; the file grew
    // since otherwise, and the prefix read is hashed on its own.
    let prefix_hash = if end == size {
        content_hash.clone()
    } else {
        hash_prefix(path, end)?
    };
    let old_parts: Vec<PathBuf> = parts.iter().map(PathBuf::from).collect();
    let mut new_frame = None;
    let mut new_part = None;
    let mut new_rows = 0;
    let has_data = if start == 0 {
        // More than a header line.
        tail_breaks + u64::from(!ends_with_newline) > 1
    } else {
        tail.iter().any(|&b| b != b'\n' && b != b'\r')
    };
    if has_data {
        // The load step parses the new bytes itself (same schema, formats, checks): give it
        // the header line followed by the tail, as a file of its own. The piece's line 2 is
        // the file's line `lines_before_tail + 1`: bad rows are reported there.
        let mut origin = None;
        let chunk_file = if start == 0 && end == size {
            path.to_path_buf()
        } else {
            if start > 0 {
                origin = Some((file.as_str(), lines_before_tail.saturating_sub(1)));
            }
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
            .read_other(&chunk_file.display().to_string(), origin)
            .and_then(|lf| super::collect_new(plan, i, lf, &format!("new rows of `{file}`")));
        if chunk_file != path {
            let _ = std::fs::remove_file(&chunk_file);
        }
        let df = result?;
        new_rows = df.height() as u64;
        // The hash of the prefix up to `end` names the part's content (its bytes are that
        // prefix's last `end - start`): no second pass over the tail.
        let short: String = prefix_hash.chars().take(12).collect();
        let part = dir.join(format!("part-{start:012}-{end:012}-{short}.parquet"));
        parts.push(part.display().to_string());
        new_part = Some(part);
        new_frame = Some(df);
        rows += new_rows;
    }
    let note = match &reason {
        None => format!("appended: {new_rows} new rows ({} bytes)", end - start),
        Some(why) => format!("full read ({why}): {new_rows} rows"),
    };
    let watermark = Watermark {
        bytes: end,
        lines: Some(lines_before_tail + tail_breaks),
        ends_with_newline,
        prefix_hash,
        parts,
        rows,
        key,
        files: Vec::new(),
        high_water: None,
    };
    Ok(SourceRead {
        step: i,
        old_parts,
        new_frame,
        new_part,
        incremental: reason.is_none() && extends_own,
        watermark,
        note,
        new_rows,
        hashes: vec![fingerprint::input_record(path, before, content_hash)],
        warnings: Vec::new(),
        elapsed: Default::default(),
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

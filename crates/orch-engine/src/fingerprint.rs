//! Step fingerprints: what a step's result depends on.
//!
//! fingerprint(step) = hash(engine version, step type, the step's canonical options (params
//! already substituted, expressions as canonical SQL), its inputs' fingerprints, and the
//! *content* hash of every file it reads). Content, not timestamps: an edited file is never
//! mistaken for the old one, and a touched but unchanged file is still a cache hit.

use crate::plan::Plan;
use orch_steps::RunError;
use std::collections::HashMap;
use std::path::Path;

const ENGINE_VERSION: &str = concat!("orchestrator/", env!("CARGO_PKG_VERSION"), "/fp2");

pub use crate::hash::file_hash;

/// What a file's status says about its content: size, mtime, ctime, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    size: u64,
    mtime_ns: u64,
    ctime_ns: u64,
    ino: u64,
}

#[cfg(unix)]
pub fn status(path: &Path) -> Option<Status> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let ns = |s: i64, n: i64| {
        u64::try_from(s)
            .ok()?
            .checked_mul(1_000_000_000)?
            .checked_add(u64::try_from(n).ok()?)
    };
    Some(Status {
        size: m.len(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec())?,
        ctime_ns: ns(m.ctime(), m.ctime_nsec())?,
        ino: m.ino(),
    })
}

#[cfg(not(unix))]
pub fn status(_path: &Path) -> Option<Status> {
    None
}

/// How long a file must have been still before its status can stand for its content: file
/// times tick coarsely, and a write in the same tick as the hash must not be missed. Times
/// with sub-second digits come from a file system with fine ticks (ext4, xfs, btrfs, tmpfs:
/// one kernel tick, at most 10 ms; exFAT 10 ms; NTFS 100 ns): 100 ms is ten ticks. Whole
/// seconds (FAT, HFS+, some network file systems) may tick every 2 s.
fn settle_ns(s: &Status) -> u64 {
    const SECOND: u64 = 1_000_000_000;
    if !s.mtime_ns.is_multiple_of(SECOND) && !s.ctime_ns.is_multiple_of(SECOND) {
        100_000_000
    } else {
        2 * SECOND
    }
}

/// The record of an input file whose content hash is `hash`, with its status taken
/// *before* the hash was computed (a write during hashing changes the ctime, so the next
/// run hashes again). The status is kept only if the file had been still long enough (see
/// [`settle_ns`]); otherwise the next run hashes it again.
pub fn input_record(path: &Path, before: Option<Status>, hash: String) -> orch_state::FileRecord {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let settled = before.filter(|b| now.saturating_sub(b.ctime_ns) > settle_ns(b));
    orch_state::FileRecord {
        path: path.display().to_string(),
        size: before.map_or(0, |b| b.size),
        hash,
        mtime_ns: settled.map(|b| b.mtime_ns),
        ctime_ns: settled.map(|b| b.ctime_ns),
        ino: settled.map(|b| b.ino),
    }
}

/// Whether `rec` (an input record from an earlier run) still describes a file whose status
/// is `now`: same size, mtime, ctime and inode. Then its hash is the file's hash, without
/// reading it.
pub fn unchanged_since(now: Option<Status>, rec: &orch_state::FileRecord) -> bool {
    let (Some(now), Some(ctime)) = (now, rec.ctime_ns) else {
        return false;
    };
    now.size == rec.size
        && Some(now.mtime_ns) == rec.mtime_ns
        && now.ctime_ns == ctime
        && Some(now.ino) == rec.ino
}

/// The content hash of an input file, reusing `prev` (its record from an earlier run) when
/// the file's status shows it was not written since.
pub fn input_hash(
    path: &Path,
    prev: Option<&orch_state::FileRecord>,
) -> Result<orch_state::FileRecord, RunError> {
    // One status, taken before any read: it both decides and is recorded.
    let now = status(path);
    if let Some(p) = prev.filter(|p| unchanged_since(now, p)) {
        return Ok(p.clone());
    }
    let hash = file_hash(path)?;
    Ok(input_record(path, now, hash))
}

/// Modification time of a file, in ns since the epoch.
pub fn mtime_ns(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as u64)
}

/// Whether a file is still what `rec` recorded: same size, and the same modification time
/// or (if it was touched) the same content hash.
pub fn still_as_written(path: &Path, rec: &orch_state::FileRecord) -> Result<(), String> {
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    if size != rec.size {
        return Err(format!("has {size} bytes, {} were written", rec.size));
    }
    if rec.mtime_ns.is_some() && mtime_ns(path) == rec.mtime_ns {
        return Ok(());
    }
    match file_hash(path) {
        Ok(h) if h == rec.hash => Ok(()),
        _ => Err("was changed after it was written".into()),
    }
}

/// A hasher fed with what every fingerprint of step `s` covers: the engine version, the
/// kind of fingerprint, the step's type and canonical options, and its inputs' fingerprints
/// (from `fps`, indexed like `plan.steps`).
fn step_hasher(kind: &[u8], s: &crate::plan::PlannedStep, fps: &[String]) -> crate::hash::Hasher {
    let mut h = crate::hash::Hasher::new();
    h.update(ENGINE_VERSION.as_bytes());
    h.update(kind);
    h.update(s.type_name.as_bytes());
    h.update(&[0]);
    h.update(s.step.fingerprint().as_bytes());
    for &j in &s.inputs {
        h.update(&[1]);
        h.update(fps[j].as_bytes());
    }
    h
}

/// Fingerprints of every step, indexed like `plan.steps`, and the records of the input files
/// each step reads. A source file that does not exist hashes as "missing" (the run itself
/// reports it). `known` holds the records of files already hashed this run (incremental
/// sources); `previous` the records of earlier runs, reused for files not written since.
pub fn fingerprints(
    plan: &Plan,
    known: &HashMap<String, orch_state::FileRecord>,
    previous: &HashMap<String, orch_state::FileRecord>,
) -> Result<(Vec<String>, Vec<Vec<orch_state::FileRecord>>), RunError> {
    let mut fps = vec![String::new(); plan.steps.len()];
    let mut inputs = vec![Vec::new(); plan.steps.len()];
    for &i in &plan.order {
        let s = &plan.steps[i];
        let mut h = step_hasher(b"", s, &fps);
        for file in s.step.reads() {
            let p = Path::new(&file);
            h.update(&[2]);
            if let Some(rec) = known.get(&file) {
                h.update(rec.hash.as_bytes());
                inputs[i].push(rec.clone());
            } else if p.exists() {
                let rec = input_hash(p, previous.get(&file))?;
                h.update(rec.hash.as_bytes());
                inputs[i].push(rec);
            } else {
                h.update(b"missing");
            }
        }
        fps[i] = h.hex();
    }
    Ok((fps, inputs))
}

/// Fingerprints without the content of incremental (append) sources, indexed like
/// `plan.steps`. Two runs with equal delta fingerprints for a step differ only by rows
/// appended to its incremental sources (other sources' content still counts).
pub fn delta_fingerprints(plan: &Plan, fps: &[String]) -> Vec<String> {
    let mut out = vec![String::new(); plan.steps.len()];
    for &i in &plan.order {
        let s = &plan.steps[i];
        if s.step.incremental().is_none() && s.inputs.is_empty() {
            out[i] = fps[i].clone();
            continue;
        }
        out[i] = step_hasher(b"delta", s, &out).hex();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(mtime_ns: u64, ctime_ns: u64) -> Status {
        Status {
            size: 1,
            mtime_ns,
            ctime_ns,
            ino: 1,
        }
    }

    #[test]
    fn coarse_file_times_wait_two_seconds_fine_ones_a_tenth() {
        let s = 1_000_000_000;
        assert_eq!(settle_ns(&status(5 * s + 1_234, 5 * s + 1_234)), s / 10);
        // Whole seconds in either time: the file system may tick every 2 s.
        assert_eq!(settle_ns(&status(5 * s, 5 * s + 7)), 2 * s);
        assert_eq!(settle_ns(&status(5 * s + 7, 6 * s)), 2 * s);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let rec = |b: Status| input_record(Path::new("x"), Some(b), "h".into());
        // Written 0.5 s ago: settled on a fine file system, not on a coarse one.
        let fine = now - s / 2;
        assert!(rec(status(fine | 1, fine | 1)).ctime_ns.is_some());
        let coarse = (now - s / 2) / s * s;
        assert!(rec(status(coarse, coarse)).ctime_ns.is_none());
        // Written just now: never settled.
        assert!(rec(status(now | 1, now | 1)).ctime_ns.is_none());
    }
}

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

const ENGINE_VERSION: &str = concat!("orchestrator/", env!("CARGO_PKG_VERSION"), "/fp1");

/// Content hash of a file (blake3, memory-mapped and multi-threaded for large files).
pub fn file_hash(path: &Path) -> Result<String, RunError> {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path)
        .map_err(|e| RunError::io(path.display(), e))?;
    Ok(h.finalize().to_hex().to_string())
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
fn step_hasher(kind: &[u8], s: &crate::plan::PlannedStep, fps: &[String]) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
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

/// Fingerprints of every step, indexed like `plan.steps`. A source file that does not exist
/// hashes as "missing" (the run itself reports it). `known` holds content hashes already
/// computed this run (append sources), by path.
pub fn fingerprints(plan: &Plan, known: &HashMap<String, String>) -> Result<Vec<String>, RunError> {
    let mut fps = vec![String::new(); plan.steps.len()];
    for &i in &plan.order {
        let s = &plan.steps[i];
        let mut h = step_hasher(b"", s, &fps);
        for file in s.step.reads() {
            let p = Path::new(&file);
            h.update(&[2]);
            if let Some(hash) = known.get(&file) {
                h.update(hash.as_bytes());
            } else if p.exists() {
                h.update(file_hash(p)?.as_bytes());
            } else {
                h.update(b"missing");
            }
        }
        fps[i] = h.finalize().to_hex().to_string();
    }
    Ok(fps)
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
        out[i] = step_hasher(b"delta", s, &out)
            .finalize()
            .to_hex()
            .to_string();
    }
    out
}

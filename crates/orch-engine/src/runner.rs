//! A whole run with state: lock the state folder, read the previous records, fingerprint the
//! steps, execute (reusing what still matches), then record the run. Records are committed
//! only after the outputs they describe have been renamed into place and synced, so a run
//! killed at any moment leaves the previous good state in force.

use crate::exec::{execute, CacheCtx, RunFailure, RunOptions, RunReport, StepStatus};
use crate::fingerprint;
use crate::incremental::{read_append, AppendRead};
use crate::plan::Plan;
use orch_state::{FileRecord, RunRecord, StateError, StateLock, StepRecord, StepRun, Store};
use orch_steps::storage::Staged;
use orch_steps::RunError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a pipeline's state lives: `--state-dir`, else `${output_dir}/.orchestrator`.
pub fn state_dir(plan: &Plan, explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => Path::new(plan.params.get("output_dir").unwrap_or("output")).join(".orchestrator"),
    }
}

pub struct RunConfig {
    pub state_dir: PathBuf,
    pub full_refresh: bool,
    pub options: RunOptions,
}

fn empty_report(plan: &Plan) -> RunReport {
    RunReport {
        pipeline: plan.name.clone(),
        steps: Vec::new(),
        elapsed: Default::default(),
        outputs: Vec::new(),
        records: Vec::new(),
    }
}

fn state_failure(plan: &Plan, e: StateError) -> RunFailure {
    RunFailure {
        step: "state".into(),
        error: RunError::user(e.to_string(), e.hint(&plan.source.name)),
        report: empty_report(plan),
    }
}

/// Runs a compiled plan against its state folder.
pub async fn run_with_state(plan: Arc<Plan>, cfg: RunConfig) -> Result<RunReport, RunFailure> {
    let _lock = StateLock::acquire(&cfg.state_dir).map_err(|e| state_failure(&plan, e))?;
    let store = Store::open(&cfg.state_dir).map_err(|e| state_failure(&plan, e))?;
    let started = chrono::Utc::now();
    let previous: HashMap<String, _> = if cfg.full_refresh {
        HashMap::new()
    } else {
        store
            .steps(&plan.name)
            .map_err(|e| state_failure(&plan, e))?
            .into_iter()
            .collect()
    };
    // Incremental sources: read only what was appended since the last run.
    let appends = {
        let p = Arc::clone(&plan);
        let prev = previous.clone();
        let (full, dir) = (cfg.full_refresh, cfg.state_dir.clone());
        type Read = (AppendRead, Vec<FileRecord>);
        tokio::task::spawn_blocking(move || -> Result<Vec<Read>, (String, RunError)> {
            let mut out = Vec::new();
            for (i, s) in p.steps.iter().enumerate() {
                if s.step.append_path().is_some() {
                    // Stored parts that were damaged since they were written: read it all again.
                    let damaged = prev.get(&s.id).and_then(damaged_part);
                    let prev_rec = prev.get(&s.id).filter(|_| damaged.is_none());
                    let mut r = read_append(&p, i, prev_rec, full, &dir)
                        .map_err(|e| (s.id.clone(), e))?;
                    if let Some(why) = damaged {
                        tracing::warn!(step = %s.id, "a stored part is damaged ({why}): reading the whole file again");
                        r.note = format!(
                            "full read (a stored part is damaged: {why}): {} rows",
                            r.new_rows
                        );
                    }
                    tracing::info!(step = %s.id, "{}", r.note);
                    let stored = part_records(&r, prev_rec).map_err(|e| (s.id.clone(), e))?;
                    out.push((r, stored));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| ("append".to_string(), RunError::internal(e)))
        .and_then(|r| r)
        .map_err(|(step, error)| RunFailure {
            step,
            error,
            report: empty_report(&plan),
        })?
    };
    let fingerprints = {
        let p = Arc::clone(&plan);
        // Append sources were just hashed in full: reuse those hashes.
        let known: HashMap<String, String> = appends
            .iter()
            .filter_map(|(a, _)| {
                let path = plan.steps[a.step].step.append_path()?;
                Some((path, a.content_hash.clone()))
            })
            .collect();
        // Hashing input files is I/O-bound work: keep it off the scheduler threads.
        tokio::task::spawn_blocking(move || fingerprint::fingerprints(&p, &known))
            .await
            .map_err(RunError::internal)
            .and_then(|r| r)
            .map_err(|error| RunFailure {
                step: "fingerprint".into(),
                error,
                report: empty_report(&plan),
            })?
    };
    let mut options = cfg.options;
    for (a, _) in &appends {
        // No rows yet (an empty extract): the load reads the file itself, giving an empty
        // table with the declared columns.
        if !a.scan.is_empty() {
            options.preloaded.insert(a.step, a.scan.clone());
        }
    }
    options.cache = Some(CacheCtx {
        fingerprints,
        previous,
        full_refresh: cfg.full_refresh,
        cache_dir: cfg.state_dir.join("cache"),
    });
    let fps = options
        .cache
        .as_ref()
        .map(|c| c.fingerprints.clone())
        .unwrap_or_default();
    let mut result = execute(Arc::clone(&plan), options).await;
    // Files steps staged outside the units (quarantine files of incremental reads): committed
    // with the outputs, or dropped (deleted) with a failed run.
    let leftover: Vec<Staged> = plan
        .steps
        .iter()
        .flat_map(|s| s.step.take_staged())
        .collect();
    // Commit new source parts after the outputs, then record the advanced watermarks.
    if let Ok(report) = &mut result {
        for st in leftover {
            match st.commit() {
                Ok(p) => report.outputs.push(p),
                Err(error) => {
                    return Err(RunFailure {
                        step: "commit".into(),
                        error,
                        report: report.clone(),
                    })
                }
            }
        }
        for (a, stored) in appends {
            let s = &plan.steps[a.step];
            if let Some(st) = a.staged {
                if let Err(error) = st.commit() {
                    return Err(RunFailure {
                        step: s.id.clone(),
                        error,
                        report: report.clone(),
                    });
                }
            }
            report.steps[a.step].note = Some(a.note.clone());
            report.records.push((
                s.id.clone(),
                orch_state::StepRecord {
                    fingerprint: fps.get(a.step).cloned().unwrap_or_default(),
                    rows: Some(a.watermark.rows),
                    watermark: serde_json::to_value(&a.watermark).ok(),
                    stored,
                    ..Default::default()
                },
            ));
        }
    }
    let run_id = store.next_run_id(&plan.name).unwrap_or(0);
    let (report, status, error) = match &result {
        Ok(r) => (r, "ok", None),
        Err(f) => (
            &f.report,
            "failed",
            Some(format!("step `{}`: {}", f.step, f.error)),
        ),
    };
    let record = RunRecord {
        id: run_id,
        pipeline: plan.name.clone(),
        params: plan
            .params
            .iter()
            .map(|(k, _, v)| (k.to_string(), v.to_string()))
            .collect(),
        started: started.to_rfc3339(),
        ended: chrono::Utc::now().to_rfc3339(),
        status: status.into(),
        error,
        steps: report
            .steps
            .iter()
            .map(|s| StepRun {
                id: s.id.clone(),
                status: s.status.word().to_string(),
                rows: s.rows.map(|r| r as u64),
                secs: s.elapsed.as_secs_f64(),
                detail: match &s.status {
                    StepStatus::Fused { into } => Some(format!("fused into {into}")),
                    _ => None,
                },
            })
            .collect(),
    };
    let records = if result.is_ok() {
        report.records.clone()
    } else {
        Vec::new()
    };
    if let Err(e) = store.commit_run(&record, &records) {
        // The outputs are in place but their records are not: the next run recomputes.
        return Err(state_failure(&plan, e));
    }
    result
}

/// Why the stored parts of an append source cannot be trusted, if they cannot: a part whose
/// size or content differs from what was recorded when it was written (a truncated or
/// overwritten file). A missing part is left to [`read_append`], which says so itself.
fn damaged_part(rec: &StepRecord) -> Option<String> {
    let wm: crate::incremental::Watermark = serde_json::from_value(rec.watermark.clone()?).ok()?;
    for part in &wm.parts {
        let Some(f) = rec.stored.iter().find(|f| &f.path == part) else {
            continue;
        };
        let path = Path::new(part);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if meta.len() != f.size {
            return Some(format!(
                "`{part}` has {} bytes, {} were written",
                meta.len(),
                f.size
            ));
        }
        if !fingerprint::file_hash(path).is_ok_and(|h| h == f.hash) {
            return Some(format!("`{part}` was changed after it was written"));
        }
    }
    None
}

/// Size and content hash of every part an append source now scans, for the next run to
/// check: carried over for parts already checked, computed for the others (the new part
/// still under its temporary name).
fn part_records(a: &AppendRead, prev: Option<&StepRecord>) -> Result<Vec<FileRecord>, RunError> {
    let mut out = Vec::new();
    for part in &a.watermark.parts {
        let on_disk = match &a.staged {
            Some(st) if st.target() == Path::new(part) => st.temp_path().to_path_buf(),
            _ => match prev.and_then(|r| r.stored.iter().find(|f| &f.path == part)) {
                Some(f) => {
                    out.push(f.clone());
                    continue;
                }
                None => PathBuf::from(part),
            },
        };
        let size = std::fs::metadata(&on_disk)
            .map_err(|e| RunError::io(on_disk.display(), e))?
            .len();
        out.push(FileRecord {
            path: part.clone(),
            size,
            hash: fingerprint::file_hash(&on_disk)?,
        });
    }
    Ok(out)
}

/// Removes cached results that no step record points at. Returns (files removed, bytes).
pub fn prune_cache(state_dir: &Path) -> Result<(usize, u64), StateError> {
    let _lock = StateLock::acquire(state_dir)?;
    let store = Store::open(state_dir)?;
    let keep: std::collections::HashSet<String> = store
        .all_steps()?
        .into_iter()
        .filter_map(|r| r.cache_file)
        .collect();
    let dir = state_dir.join("cache");
    let (mut n, mut bytes) = (0, 0);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if !keep.contains(&p.display().to_string()) {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&p).is_ok() {
                    n += 1;
                }
            }
        }
    }
    Ok((n, bytes))
}

//! A whole run with state: lock the state folder, read the previous records, fingerprint the
//! steps, execute (reusing what still matches), then record the run. Records are committed
//! only after the outputs they describe have been renamed into place and synced, so a run
//! killed at any moment leaves the previous good state in force.

use crate::exec::Preloaded;
use crate::exec::{execute, CacheCtx, RunFailure, RunOptions, RunReport, StepStatus};
use crate::fingerprint;
use crate::incremental::{stage_part, SourceRead};
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
    // The whole run, as its user waits for it: source reads before the plan, the plan, and
    // the commit after it (the executor's own clock sees only the middle).
    let clock = std::time::Instant::now();
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
    let all_steps = if cfg.full_refresh {
        Vec::new()
    } else {
        store.all_steps().map_err(|e| state_failure(&plan, e))?
    };
    // Input files as earlier runs of any pipeline of this state folder hashed them: a file
    // not written since is not hashed again.
    let inputs: Arc<crate::incremental::Inputs> = Arc::new(
        all_steps
            .iter()
            .flat_map(|(_, r)| r.inputs.iter())
            .map(|f| (f.path.clone(), f.clone()))
            .collect(),
    );
    // Data checks any pipeline of this state folder ran on every row of some data: the same
    // check (same step id and fingerprint) need not run again on the same data.
    let validated: HashMap<(String, String), StepRecord> = all_steps
        .iter()
        .filter(|(_, r)| r.validated.is_some())
        .map(|(id, r)| ((id.clone(), r.fingerprint.clone()), r.clone()))
        .collect();
    // Parts other pipelines of this state folder keep (shared by file and load options).
    let shared: Arc<Vec<StepRecord>> = Arc::new(
        all_steps
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.watermark.is_some())
            .collect(),
    );
    // Incremental sources, side by side: read only what was appended since the last run.
    let mut reads = tokio::task::JoinSet::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if s.step.incremental().is_none() {
            continue;
        }
        let p = Arc::clone(&plan);
        let prev = previous.get(&s.id).cloned();
        let (shared, inputs) = (Arc::clone(&shared), Arc::clone(&inputs));
        let (full, dir) = (cfg.full_refresh, cfg.state_dir.clone());
        reads.spawn_blocking(move || {
            (
                i,
                read_incremental(&p, i, prev, &shared, &inputs, full, &dir),
            )
        });
    }
    let mut appends: Vec<SourceRead> = Vec::new();
    // The first failure in pipeline order, not in finishing order: the same broken input
    // gives the same message on every run.
    let mut failed: Option<(usize, (String, RunError))> = None;
    while let Some(joined) = reads.join_next().await {
        let (i, e) = match joined {
            Ok((_, Ok(r))) => {
                appends.push(r);
                continue;
            }
            Ok((i, Err(e))) => (i, e),
            Err(e) => (usize::MAX, ("append".to_string(), RunError::internal(e))),
        };
        if failed.as_ref().is_none_or(|(j, _)| i < *j) {
            failed = Some((i, e));
        }
    }
    if let Some((_, (step, error))) = failed {
        return Err(RunFailure {
            step,
            error,
            report: empty_report(&plan),
        });
    }
    appends.sort_by_key(|a| a.step);
    // New parts are written beside the run (they are needed only by the next run) and
    // committed with the outputs; the run itself reads the new rows from memory.
    type Parts = HashMap<usize, (Option<Staged>, Vec<FileRecord>)>;
    let written: Arc<std::sync::Mutex<Parts>> = Arc::default();
    let part_writes = {
        let jobs: Vec<(usize, PartJob)> = appends
            .iter()
            .map(|a| {
                (
                    a.step,
                    PartJob::of(a, previous.get(&plan.steps[a.step].id), &shared),
                )
            })
            .collect();
        let task = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(i, job)| job.run().map(|r| (i, r)))
                .collect::<Result<Parts, _>>()
        });
        let written = Arc::clone(&written);
        // The run publishes its outputs only once the parts are durable too.
        Box::pin(async move {
            let mut parts: Parts = task.await.map_err(RunError::internal)??;
            for st in parts.values_mut().filter_map(|(st, _)| st.as_mut()) {
                st.durable()?;
            }
            *written
                .lock()
                .map_err(|_| RunError::internal("part list poisoned"))? = parts;
            Ok(())
        })
    };
    let (fingerprints, input_records) = {
        let p = Arc::clone(&plan);
        // Incremental sources were just hashed: reuse those hashes.
        let known: HashMap<String, FileRecord> = appends
            .iter()
            .flat_map(|a| a.hashes.iter().map(|r| (r.path.clone(), r.clone())))
            .collect();
        let inputs = Arc::clone(&inputs);
        // Hashing input files is I/O-bound work: keep it off the scheduler threads.
        tokio::task::spawn_blocking(move || fingerprint::fingerprints(&p, &known, &inputs))
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
    for a in &appends {
        // No rows yet (an empty extract): the load reads the file itself, giving an empty
        // table with the declared columns.
        if !a.old_parts.is_empty() || a.new_frame.is_some() {
            options.preloaded.insert(
                a.step,
                Preloaded {
                    parts: a.old_parts.clone(),
                    new: a.new_frame.clone(),
                    incremental: a.incremental,
                },
            );
        }
    }
    let delta_fingerprints = fingerprint::delta_fingerprints(&plan, &fingerprints);
    options.cache = Some(CacheCtx {
        delta_fingerprints: delta_fingerprints.clone(),
        fingerprints,
        previous,
        validated,
        full_refresh: cfg.full_refresh,
        cache_dir: cfg.state_dir.join("cache"),
    });
    let fps = options
        .cache
        .as_ref()
        .map(|c| c.fingerprints.clone())
        .unwrap_or_default();
    options.before_commit = Some(part_writes);
    let mut result = execute(Arc::clone(&plan), options).await;
    let mut parts = std::mem::take(&mut *written.lock().unwrap_or_else(|e| e.into_inner()));
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
        for a in appends {
            let s = &plan.steps[a.step];
            let (staged, stored) = parts.remove(&a.step).unwrap_or_default();
            if let Some(st) = staged {
                if let Err(error) = st.commit() {
                    return Err(RunFailure {
                        step: s.id.clone(),
                        error,
                        report: report.clone(),
                    });
                }
            }
            let r = &mut report.steps[a.step];
            r.note = Some(a.note.clone());
            for w in &a.warnings {
                tracing::warn!(step = %s.id, "{w}");
            }
            r.warnings.extend(a.warnings.iter().cloned());
            // Read here, before the plan ran: the source ran if it parsed anything; reading
            // only stored parts (its own or another pipeline's) is `cached`. (A source with
            // no rows yet was read by the plan itself, which reported it.)
            if a.new_frame.is_some() {
                r.status = StepStatus::Ran;
                r.elapsed = a.elapsed;
                r.rows = Some(a.watermark.rows as usize);
            } else if !a.old_parts.is_empty() {
                r.status = StepStatus::Cached;
                r.rows = Some(a.watermark.rows as usize);
            }
            report.records.push((
                s.id.clone(),
                orch_state::StepRecord {
                    fingerprint: fps.get(a.step).cloned().unwrap_or_default(),
                    rows: Some(a.watermark.rows),
                    delta_fp: delta_fingerprints.get(a.step).cloned(),
                    watermark: serde_json::to_value(&a.watermark).ok(),
                    stored,
                    ..Default::default()
                },
            ));
        }
        // The input files each step read, for the next run's hashing.
        for (id, rec) in &mut report.records {
            if let Some(i) = plan.index(id) {
                rec.inputs.clone_from(&input_records[i]);
            }
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
    // States and cached results this run replaced (a daily run writes new ones): deleted
    // now, so that the state folder does not grow by a day's worth every day.
    if result.is_ok() {
        match prune_files(&store, &cfg.state_dir) {
            Ok((n, bytes)) if n > 0 => {
                tracing::debug!(files = n, bytes, "removed stored files no record uses")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("could not remove stored files no record uses: {e}"),
        }
    }
    match &mut result {
        Ok(r) => r.elapsed = clock.elapsed(),
        Err(f) => f.report.elapsed = clock.elapsed(),
    }
    result
}

/// Reads incremental source `i` (see [`crate::incremental`]), first checking that its stored
/// parts (and the other pipelines' parts it may reuse) are intact.
fn read_incremental(
    p: &Plan,
    i: usize,
    prev: Option<StepRecord>,
    shared: &[StepRecord],
    inputs: &crate::incremental::Inputs,
    full: bool,
    dir: &Path,
) -> Result<SourceRead, (String, RunError)> {
    let s = &p.steps[i];
    // Stored parts that were damaged since they were written: read it all again.
    let damaged = prev.as_ref().and_then(damaged_part);
    let prev_rec = prev.as_ref().filter(|_| damaged.is_none());
    let key = crate::incremental::source_key(p, i).unwrap_or_default();
    let mut shared_wms = Vec::new();
    if prev_rec.is_none() {
        for r in shared {
            let Some(w) = r
                .watermark
                .clone()
                .and_then(|w| serde_json::from_value::<crate::incremental::Watermark>(w).ok())
            else {
                continue;
            };
            if !key.is_empty() && w.key == key && damaged_part(r).is_none() {
                shared_wms.push(w);
            }
        }
    }
    let earlier = crate::incremental::Earlier {
        prev: prev_rec,
        shared: &shared_wms,
        inputs,
        full_refresh: full,
    };
    let mut r =
        crate::incremental::read_source(p, i, earlier, dir).map_err(|e| (s.id.clone(), e))?;
    if let Some(why) = damaged {
        tracing::warn!(step = %s.id, "a stored part is damaged ({why}): reading the whole file again");
        r.note = format!(
            "full read (a stored part is damaged: {why}): {} rows",
            r.new_rows
        );
    }
    tracing::info!(step = %s.id, "{}", r.note);
    Ok(r)
}

/// Writing an append source's new part, and the size and hash of every part it now scans.
struct PartJob {
    new_frame: Option<polars::prelude::DataFrame>,
    new_part: Option<PathBuf>,
    parts: Vec<String>,
    /// What earlier runs recorded about parts already written.
    known: Vec<FileRecord>,
}

impl PartJob {
    fn of(a: &SourceRead, prev: Option<&StepRecord>, shared: &[StepRecord]) -> PartJob {
        let known = prev
            .into_iter()
            .chain(shared)
            .flat_map(|r| r.stored.iter())
            .filter(|f| a.watermark.parts.contains(&f.path))
            .cloned()
            .collect();
        PartJob {
            new_frame: a.new_frame.clone(),
            new_part: a.new_part.clone(),
            parts: a.watermark.parts.clone(),
            known,
        }
    }

    fn run(self) -> Result<(Option<Staged>, Vec<FileRecord>), RunError> {
        let staged = stage_part(self.new_frame.as_ref(), self.new_part.as_deref())?;
        let mut out = Vec::new();
        for part in &self.parts {
            let on_disk = match &staged {
                Some(st) if st.target() == Path::new(part) => st.temp_path().to_path_buf(),
                _ => match self.known.iter().find(|f| &f.path == part) {
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
                mtime_ns: fingerprint::mtime_ns(&on_disk),
                ..Default::default()
            });
        }
        Ok((staged, out))
    }
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
        if !path.exists() {
            continue;
        }
        if let Err(why) = fingerprint::still_as_written(path, f) {
            return Some(format!("`{part}` {why}"));
        }
    }
    None
}

/// Removes cached results and source parts that no step record points at. Returns (files
/// removed, bytes).
pub fn prune_cache(state_dir: &Path) -> Result<(usize, u64), StateError> {
    let _lock = StateLock::acquire(state_dir)?;
    let store = Store::open(state_dir)?;
    prune_files(&store, state_dir)
}

/// [`prune_cache`] with the lock held and the store open. Paths are compared canonical: a
/// record written with another spelling of the state folder still protects its files.
fn prune_files(store: &Store, state_dir: &Path) -> Result<(usize, u64), StateError> {
    let mut keep = std::collections::HashSet::new();
    for (_, r) in store.all_steps()? {
        let mut paths: Vec<String> = r.cache_file.into_iter().collect();
        paths.extend(r.stored.into_iter().map(|f| f.path));
        if let Some(w) = r
            .watermark
            .and_then(|w| serde_json::from_value::<crate::incremental::Watermark>(w).ok())
        {
            paths.extend(w.parts);
        }
        keep.extend(paths.iter().filter_map(|p| std::fs::canonicalize(p).ok()));
    }
    let (mut n, mut bytes) = (0, 0);
    let mut dirs = vec![state_dir.join("cache")];
    if let Ok(entries) = std::fs::read_dir(state_dir.join("sources")) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let kept = std::fs::canonicalize(&p).is_ok_and(|c| keep.contains(&c));
            if p.is_file() && !kept {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                if std::fs::remove_file(&p).is_ok() {
                    n += 1;
                }
            }
        }
        // Empty folders of sources no pipeline reads any more.
        if dir.starts_with(state_dir.join("sources")) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    Ok((n, bytes))
}

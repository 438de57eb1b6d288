//! A whole run with state: lock the state folder, read the previous records, fingerprint the
//! steps, execute (reusing what still matches), then record the run. Records are committed
//! only after the outputs they describe have been renamed into place and synced, so a run
//! killed at any moment leaves the previous good state in force.

use crate::exec::{execute, CacheCtx, RunFailure, RunOptions, RunReport, StepStatus};
use crate::fingerprint;
use crate::plan::Plan;
use orch_state::{RunRecord, StateError, StateLock, StepRun, Store};
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

fn state_failure(plan: &Plan, e: StateError) -> RunFailure {
    RunFailure {
        step: "state".into(),
        error: RunError::user(e.to_string(), None),
        report: RunReport {
            pipeline: plan.name.clone(),
            steps: Vec::new(),
            elapsed: Default::default(),
            outputs: Vec::new(),
            records: Vec::new(),
        },
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
    let fingerprints = {
        let p = Arc::clone(&plan);
        // Hashing input files is I/O-bound work: keep it off the scheduler threads.
        tokio::task::spawn_blocking(move || fingerprint::fingerprints(&p))
            .await
            .map_err(|e| RunError::internal(e))
            .and_then(|r| r)
            .map_err(|error| RunFailure {
                step: "fingerprint".into(),
                error,
                report: RunReport {
                    pipeline: plan.name.clone(),
                    steps: Vec::new(),
                    elapsed: Default::default(),
                    outputs: Vec::new(),
                    records: Vec::new(),
                },
            })?
    };
    let mut options = cfg.options;
    options.cache = Some(CacheCtx {
        fingerprints,
        previous,
        full_refresh: cfg.full_refresh,
        cache_dir: cfg.state_dir.join("cache"),
    });
    let result = execute(Arc::clone(&plan), options).await;
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
                status: status_word(&s.status),
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

pub fn status_word(s: &StepStatus) -> String {
    match s {
        StepStatus::Ran => "ran",
        StepStatus::Cached => "cached",
        StepStatus::Fused { .. } => "fused",
        StepStatus::Unused => "unused",
        StepStatus::Skipped => "skipped",
        StepStatus::Failed => "failed",
    }
    .to_string()
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

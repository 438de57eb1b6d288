//! Runs a compiled plan on polars.
//!
//! The plan is cut into *units*: each materialised step (read by several steps, or by a
//! sink) and each sink. A unit's lazy plan fuses every non-materialised step upstream of
//! it, so polars optimises across steps; units whose inputs are ready run concurrently on
//! tokio's blocking pool, at most `max_parallel` at a time. Sinks stage their files under
//! temporary names; only when every unit has succeeded are the files renamed into place,
//! so a failed run leaves every previous output as it was.

use crate::delta::{self, DState};
use crate::plan::Plan;
use orch_state::{FileRecord, StepRecord};
use orch_steps::storage::{stage, Staged};
use orch_steps::{Role, RunError};
use polars::prelude::{
    col, lit, DataFrame, IntoLazy, JoinArgs, JoinType, LazyFrame, ParquetCompression,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    /// Computed and materialised (or written, for sinks).
    Ran,
    /// Computed inside another step's plan.
    Fused {
        into: String,
    },
    /// Not run: its fingerprint matched the last successful run and its result (an output
    /// file or a cached result) is still there.
    Cached,
    /// Not needed by any output.
    Unused,
    /// Not run because an earlier unit failed.
    Skipped,
    Failed,
}

impl StepStatus {
    /// One word for run records and tables.
    pub fn word(&self) -> &'static str {
        match self {
            StepStatus::Ran => "ran",
            StepStatus::Cached => "cached",
            StepStatus::Fused { .. } => "fused",
            StepStatus::Unused => "unused",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub id: String,
    pub type_name: &'static str,
    #[serde(flatten)]
    pub status: StepStatus,
    pub rows: Option<usize>,
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
    pub outputs: Vec<String>,
    /// Data-check warnings (severity `warn`).
    pub warnings: Vec<String>,
    /// How an incremental source was read ("appended: 120 new rows", "full read (why)").
    pub note: Option<String>,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub pipeline: String,
    pub steps: Vec<StepReport>,
    #[serde(serialize_with = "ser_secs")]
    pub elapsed: Duration,
    pub outputs: Vec<PathBuf>,
    /// State records of the steps that ran or were reused, to commit once outputs are durable.
    #[serde(skip)]
    pub records: Vec<(String, StepRecord)>,
}

/// What the previous runs left: lets a run reuse outputs and cached results.
#[derive(Debug, Clone, Default)]
pub struct CacheCtx {
    /// Fingerprints of this run's steps, indexed like `plan.steps`.
    pub fingerprints: Vec<String>,
    /// The last successful records, by step id.
    pub previous: HashMap<String, StepRecord>,
    /// Ignore previous records: recompute and rewrite everything.
    pub full_refresh: bool,
    /// Where `cache: true` results are kept as Parquet.
    pub cache_dir: PathBuf,
    /// Fingerprints without incremental sources' content (see [`crate::delta`]).
    pub delta_fingerprints: Vec<String>,
    /// Data checks that checked every row of some data in an earlier run of any pipeline
    /// of the state folder, by (step id, fingerprint): that run's record (what they warned
    /// about, how many rows they saw).
    pub validated: HashMap<(String, String), StepRecord>,
}

/// A run that stopped: the failing step, the error and what happened to every step.
#[derive(Debug)]
pub struct RunFailure {
    pub step: String,
    pub error: RunError,
    pub report: RunReport,
}

/// What the runner tells an observer (progress bar, logs) as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Planned {
        units: usize,
    },
    Started {
        id: String,
    },
    Finished {
        id: String,
        rows: usize,
        elapsed: Duration,
    },
}

pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

pub struct RunOptions {
    pub max_parallel: usize,
    pub observer: Option<Observer>,
    /// Reuse of previous results; `None` recomputes everything and records nothing.
    pub cache: Option<CacheCtx>,
    /// Incremental sources, already read by the runner: stored parts plus new rows.
    pub preloaded: HashMap<usize, Preloaded>,
    /// Work that must succeed before any output is published (the runner's source parts,
    /// written beside the units).
    pub before_commit: Option<Gate>,
}

/// See [`RunOptions::before_commit`].
pub type Gate = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), RunError>> + Send>>;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            observer: None,
            cache: None,
            preloaded: HashMap::new(),
            before_commit: None,
        }
    }
}

/// An incremental source's rows: committed Parquet parts, then the rows new in this run.
#[derive(Clone, Default)]
pub struct Preloaded {
    pub parts: Vec<PathBuf>,
    pub new: Option<DataFrame>,
    /// `parts` are what the last run read (so `new` are the appended rows alone).
    pub incremental: bool,
}

/// One schedulable piece of work.
struct Unit {
    step: usize,
    /// Units (by step index) whose results this unit reads.
    deps: Vec<usize>,
}

/// A result available to later units: computed in this run, or reused from the cache.
#[derive(Clone)]
enum Ready {
    Frame(DataFrame),
    Parquet(PathBuf),
    Source(Preloaded),
    /// A result left lazy (the whole result of an incremental step, or a stored state
    /// finished into the step's result).
    Plan(Box<LazyFrame>),
}

impl Ready {
    fn lazy(&self) -> Result<LazyFrame, RunError> {
        match self {
            Ready::Frame(df) => Ok(df.clone().lazy()),
            Ready::Plan(lf) => Ok((**lf).clone()),
            Ready::Parquet(p) => scan_stored(std::slice::from_ref(p)),
            Ready::Source(p) => {
                let mut lfs = Vec::new();
                // Parts read in full (another pipeline's, nothing new; no filter is pushed
                // down to them) come back as one chunk per row group, and every gather
                // downstream (join, group) then looks up each row's chunk: one chunk
                // (product_mix's joins over the line items, 0.52-0.63 s -> 0.48-0.51 s).
                if !p.parts.is_empty() && !p.incremental && p.new.is_none() {
                    return Ok(
                        scan_stored(&p.parts)?.select([polars::prelude::all().as_expr().rechunk()])
                    );
                }
                if !p.parts.is_empty() {
                    lfs.push(scan_stored(&p.parts)?);
                }
                if let Some(df) = &p.new {
                    lfs.push(df.clone().lazy());
                }
                concat_lazy(lfs)
            }
        }
    }

    fn frame(&self) -> Result<DataFrame, RunError> {
        match self {
            Ready::Frame(df) => Ok(df.clone()),
            Ready::Source(Preloaded {
                parts,
                new: Some(df),
                ..
            }) if parts.is_empty() => Ok(df.clone()),
            Ready::Parquet(_) | Ready::Source(_) | Ready::Plan(_) => self
                .lazy()?
                .collect()
                .map_err(|e| RunError::engine("reading a cached result", e)),
        }
    }
}

/// Reads files kept under the state folder, stacked: Parquet (source parts, `cache: true`
/// results), or Arrow IPC (`.arrow`: aggregation states).
pub(crate) fn scan_stored(paths: &[PathBuf]) -> Result<LazyFrame, RunError> {
    let lfs = paths
        .iter()
        .map(|p| {
            let path = polars::prelude::PlRefPath::new(p.to_string_lossy().as_ref());
            if p.extension().is_some_and(|e| e == STATE_EXTENSION) {
                LazyFrame::scan_ipc(path, Default::default(), Default::default())
            } else {
                LazyFrame::scan_parquet(path, Default::default())
            }
            .map_err(|e| {
                RunError::engine(format!("reading the stored result `{}`", p.display()), e)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    concat_lazy(lfs)
}

/// Aggregation states are Arrow IPC files: every merge reads the state back (twice: the
/// groups the new rows touch, and the others), and an IPC file is mapped where Parquet is
/// decoded. product_mix's append rerun at scale 100: 0.77-0.83 s against 0.85-0.95 s with
/// LZ4 Parquet (see `bench/results.md`).
const STATE_EXTENSION: &str = "arrow";

/// Stacks plans with the same columns, keeping their order.
pub(crate) fn concat_lazy(lfs: Vec<LazyFrame>) -> Result<LazyFrame, RunError> {
    match lfs.len() {
        1 => Ok(lfs.into_iter().next().unwrap_or_default()),
        _ => polars::prelude::concat(
            lfs,
            polars::prelude::UnionArgs {
                maintain_order: true,
                ..Default::default()
            },
        )
        .map_err(|e| RunError::engine("stacking stored parts", e)),
    }
}

/// What can be reused from the previous run, decided before anything runs.
struct Reuse {
    /// Sinks whose outputs are still exactly what this run would write.
    sinks: Vec<bool>,
    /// `cache: true` steps whose stored result matches.
    cached: HashMap<usize, PathBuf>,
    /// Data checks that passed on exactly this data last time.
    checked: Vec<bool>,
    /// Data checks that checked exactly this data in full in an earlier run (of this
    /// pipeline or another one), with that run's record: they are not run again, and their
    /// warnings are repeated.
    known: HashMap<usize, StepRecord>,
}

fn reuse(plan: &Plan, cache: Option<&CacheCtx>, stateful: &[bool]) -> Reuse {
    let n = plan.steps.len();
    let mut r = Reuse {
        sinks: vec![false; n],
        cached: HashMap::new(),
        checked: vec![false; n],
        known: HashMap::new(),
    };
    let Some(c) = cache.filter(|c| !c.full_refresh) else {
        return r;
    };
    for (i, s) in plan.steps.iter().enumerate() {
        if s.step.validation_only() {
            if let Some(rec) = c.validated.get(&(s.id.clone(), c.fingerprints[i].clone())) {
                r.checked[i] = true;
                r.known.insert(i, rec.clone());
            }
        }
        let Some(prev) = c.previous.get(&s.id) else {
            continue;
        };
        if prev.fingerprint != c.fingerprints[i] {
            continue;
        }
        if s.step.must_materialize() {
            r.checked[i] = true;
        }
        if s.role() == Role::Sink {
            // Reuse only if every file is still there with the content we wrote.
            r.sinks[i] = !prev.outputs.is_empty()
                && prev.outputs.iter().all(|f| {
                    let p = std::path::Path::new(&f.path);
                    crate::fingerprint::still_as_written(p, f).is_ok()
                });
            if r.sinks[i] {
                // Kept as they are: what a killed run staged for them is cleared here, since
                // they are not staged (which clears it) again.
                for f in &prev.outputs {
                    orch_steps::storage::remove_stale_temps(std::path::Path::new(&f.path));
                }
            }
        } else if s.cache || stateful[i] {
            if let Some(file) = &prev.cache_file {
                let p = PathBuf::from(file);
                if p.exists() {
                    // Only as written: a truncated or overwritten result is recomputed.
                    match stored_intact(prev, &p) {
                        Ok(()) => {
                            r.cached.insert(i, p);
                        }
                        Err(why) => {
                            tracing::warn!(step = %s.id, "the cached result `{file}` {why}: computing the step again")
                        }
                    }
                }
            }
        }
    }
    r
}

/// Whether a file kept under the state folder still has the size and content recorded when
/// it was written.
fn stored_intact(prev: &StepRecord, p: &std::path::Path) -> Result<(), String> {
    let shown = p.display().to_string();
    let Some(f) = prev.stored.iter().find(|f| f.path == shown) else {
        return Err("has no recorded size and hash".into());
    };
    crate::fingerprint::still_as_written(p, f)
}

/// Size and content hash of a staged file (still under its temporary name), recorded
/// under its target.
fn staged_record(st: &Staged) -> Result<FileRecord, RunError> {
    let tmp = st.temp_path();
    let size = std::fs::metadata(tmp)
        .map_err(|e| RunError::io(tmp.display(), e))?
        .len();
    Ok(FileRecord {
        path: st.target().display().to_string(),
        size,
        hash: crate::fingerprint::file_hash(tmp)?,
        mtime_ns: crate::fingerprint::mtime_ns(tmp),
        ..Default::default()
    })
}

/// Runs the plan to completion, committing outputs only if every unit succeeded.
pub async fn execute(plan: Arc<Plan>, mut opts: RunOptions) -> Result<RunReport, RunFailure> {
    let started = Instant::now();
    // Aggregations fed by incremental sources keep mergeable state: materialised, stored.
    let stateful = delta::stateful(&plan);
    let mut materialized = plan.materialized();
    for (m, st) in materialized.iter_mut().zip(&stateful) {
        *m |= *st;
    }
    let mut reuse = reuse(&plan, opts.cache.as_ref(), &stateful);
    // A data check known to pass on this data is only its input: fused into its readers,
    // so polars plans across it. One that is materialised anyway (read by several steps)
    // checks again as it goes.
    reuse.known.retain(|&i, _| !(stateful[i] || plan.shared(i)));
    for &i in reuse.known.keys() {
        materialized[i] = false;
    }
    let mut ready: HashMap<usize, Ready> = HashMap::new();
    for (&i, p) in &reuse.cached {
        let r = if stateful[i] {
            // The stored file is the step's state: finish it into the result.
            let scan = scan_stored(std::slice::from_ref(p))
                .and_then(|lf| plan.steps[i].step.finish_state(lf));
            match scan {
                Ok(lf) => Ready::Plan(Box::new(lf)),
                Err(_) => continue,
            }
        } else {
            Ready::Parquet(p.clone())
        };
        ready.insert(i, r);
    }
    for (i, p) in &opts.preloaded {
        ready.insert(*i, Ready::Source(p.clone()));
    }
    let states: Vec<DState> = match &opts.cache {
        Some(c) => {
            let merge_ok = |i: usize| {
                c.previous.get(&plan.steps[i].id).is_some_and(|prev| {
                    prev.cache_file.as_ref().is_some_and(|f| {
                        let p = std::path::Path::new(f);
                        stored_intact(prev, p).is_ok()
                    })
                })
            };
            delta::states(&plan, c, &opts.preloaded, &merge_ok)
        }
        None => vec![DState::Changed { why: None }; plan.steps.len()],
    };
    let mut deltas: HashMap<usize, DataFrame> = HashMap::new();
    let units = needed_units(&plan, &materialized, &reuse, &ready);
    let notify = |e: Event| {
        if let Some(o) = &opts.observer {
            o(&e);
        }
    };
    notify(Event::Planned { units: units.len() });

    let mut reports: Vec<StepReport> = plan
        .steps
        .iter()
        .map(|s| StepReport {
            id: s.id.clone(),
            type_name: s.type_name,
            status: StepStatus::Unused,
            rows: None,
            elapsed: Duration::ZERO,
            outputs: Vec::new(),
            warnings: Vec::new(),
            note: None,
        })
        .collect();
    mark_fused(&plan, &materialized, &mut reports);
    for (i, st) in states.iter().enumerate() {
        let s = &plan.steps[i];
        reports[i].note = match st {
            DState::Delta if s.step.must_materialize() => {
                Some("incremental: checked the appended rows".into())
            }
            DState::Delta if s.step.incremental().is_none() => {
                Some("incremental: computed for the appended rows only".into())
            }
            DState::Merged if states[s.inputs[0]] == DState::Updated => Some(
                "incremental: recomputed the groups of the updated rows in its stored state".into(),
            ),
            DState::Merged => {
                Some("incremental: merged the appended rows into its stored state".into())
            }
            DState::Updated => Some(format!(
                "incremental: only rows whose `{}` `{}` merged changed",
                s.step
                    .join_keys()
                    .map(|(l, _)| l.join("`, `"))
                    .unwrap_or_default(),
                plan.steps[s.inputs[1]].id
            )),
            DState::Changed { why: Some(why) } => Some(format!("recomputed in full: {why}")),
            _ => None,
        };
    }
    let in_units: Vec<usize> = units.iter().map(|u| u.step).collect();
    for (i, r) in reports.iter_mut().enumerate() {
        let reused = reuse.sinks[i] || reuse.cached.contains_key(&i);
        let fused_into_unit = matches!(&r.status, StepStatus::Fused { into } if plan.index(into).is_some_and(|u| in_units.contains(&u)));
        let s = &plan.steps[i];
        let truly_unused =
            s.consumers.is_empty() && s.role() != Role::Sink && !s.step.must_materialize();
        let runs_now = in_units.contains(&i) || fused_into_unit;
        // Not run now but needed by an output: its result is part of a reused output.
        if reused || (opts.cache.is_some() && !runs_now && !truly_unused) {
            r.status = StepStatus::Cached;
        }
    }

    for (&i, rec) in &reuse.known {
        let r = &mut reports[i];
        r.status = StepStatus::Cached;
        r.note = Some("checked exactly this data in an earlier run: not checked again".into());
        let warnings = rec.validated.clone().unwrap_or_default();
        for w in &warnings {
            tracing::warn!(step = %r.id, "{w}");
        }
        r.warnings = warnings;
    }

    let mut staged: Vec<Staged> = Vec::new();
    let mut storing: Vec<(usize, Storing)> = Vec::new();
    let mut produced: HashMap<usize, UnitOutput> = HashMap::new();
    let mut pending: Vec<&Unit> = units.iter().collect();
    let mut running: JoinSet<(usize, Result<UnitOutput, RunError>, Duration)> = JoinSet::new();
    let mut failure: Option<(usize, RunError)> = None;

    loop {
        // Start every unit whose inputs are ready, up to the parallelism bound.
        if failure.is_none() {
            let mut i = 0;
            while i < pending.len() && running.len() < opts.max_parallel.max(1) {
                if pending[i].deps.iter().all(|d| ready.contains_key(d)) {
                    let unit = pending.remove(i);
                    let cache_path = match &opts.cache {
                        Some(c) if plan.steps[unit.step].cache || stateful[unit.step] => {
                            let ext = if stateful[unit.step] {
                                STATE_EXTENSION
                            } else {
                                "parquet"
                            };
                            Some(
                                c.cache_dir
                                    .join(format!("{}.{ext}", c.fingerprints[unit.step])),
                            )
                        }
                        _ => None,
                    };
                    let ctx = Prep {
                        plan: &plan,
                        ready: &ready,
                        states: &states,
                        stateful: &stateful,
                        preloaded: &opts.preloaded,
                        deltas: &deltas,
                        cache: opts.cache.as_ref(),
                    };
                    let work = match prepare(&ctx, unit.step) {
                        Ok(w) => w,
                        Err(e) => {
                            failure = Some((unit.step, e));
                            break;
                        }
                    };
                    notify(Event::Started {
                        id: plan.steps[unit.step].id.clone(),
                    });
                    tracing::info!(step = %plan.steps[unit.step].id, "step started");
                    let plan = Arc::clone(&plan);
                    let step = unit.step;
                    running.spawn_blocking(move || {
                        let t = Instant::now();
                        let r = work.run(&plan, step, cache_path);
                        (step, r, t.elapsed())
                    });
                } else {
                    i += 1;
                }
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (step, result, elapsed) = match joined {
            Ok(v) => v,
            Err(e) => {
                failure.get_or_insert((
                    usize::MAX,
                    RunError::internal(format!("a step task panicked: {e}")),
                ));
                continue;
            }
        };
        let id = plan.steps[step].id.clone();
        match result {
            Ok(mut out) => {
                let rows = out.rows;
                tracing::info!(step = %id, rows, ms = elapsed.as_millis() as u64, "step finished");
                notify(Event::Finished {
                    id: id.clone(),
                    rows,
                    elapsed,
                });
                let r = &mut reports[step];
                r.status = StepStatus::Ran;
                r.rows = Some(rows);
                r.elapsed = elapsed;
                r.outputs = out
                    .staged
                    .iter()
                    .map(|s| s.target().display().to_string())
                    .collect();
                r.warnings = std::mem::take(&mut out.warnings);
                staged.append(&mut out.staged);
                if let Some(h) = out.storing.take() {
                    storing.push((step, h));
                }
                if let Some(df) = out.frame.take() {
                    ready.insert(step, Ready::Frame(df));
                }
                if let Some(lf) = out.plan.take() {
                    ready.insert(step, Ready::Plan(Box::new(lf)));
                }
                if let Some(df) = out.delta.take() {
                    deltas.insert(step, df);
                }
                produced.insert(step, out);
            }
            Err(e) => {
                tracing::error!(step = %id, error = %e, "step failed");
                reports[step].status = StepStatus::Failed;
                reports[step].elapsed = elapsed;
                if failure.is_none() {
                    failure = Some((step, e));
                }
            }
        }
    }

    // Results and states written in the background: durable (or failed, and then removed)
    // before anything is committed.
    for (step, h) in storing {
        match tokio::task::spawn_blocking(move || h.join()).await {
            Ok(Ok(Ok((st, rec)))) => {
                reports[step]
                    .outputs
                    .push(st.target().display().to_string());
                if let Some(o) = produced.get_mut(&step) {
                    o.stored.push(rec);
                }
                staged.push(st);
            }
            Ok(Ok(Err(e))) => {
                failure.get_or_insert((step, e));
            }
            _ => {
                failure.get_or_insert((step, RunError::internal("storing a result panicked")));
            }
        }
    }

    let mut report = RunReport {
        pipeline: plan.name.clone(),
        steps: Vec::new(),
        elapsed: started.elapsed(),
        outputs: Vec::new(),
        records: Vec::new(),
    };
    let mut failure = failure.map(|(i, e)| (plan.steps.get(i).map(|s| s.id.clone()), e));
    if failure.is_none() {
        // Every file durable before any is renamed: a failed fsync publishes nothing.
        if let Some(e) = staged.iter_mut().find_map(|s| s.durable().err()) {
            failure = Some((Some("commit".to_string()), e));
        }
    }
    if failure.is_none() {
        if let Some(gate) = opts.before_commit.take() {
            if let Err(e) = gate.await {
                failure = Some((Some("source parts".to_string()), e));
            }
        }
    }
    if let Some((step, error)) = failure {
        // Dropping the staged files deletes them: previous outputs stay as they were.
        drop(staged);
        for u in pending {
            reports[u.step].status = StepStatus::Skipped;
        }
        report.steps = reports;
        report.elapsed = started.elapsed();
        return Err(RunFailure {
            step: step.unwrap_or_else(|| "?".to_string()),
            error,
            report,
        });
    }
    // Every unit succeeded: publish the outputs (and cached results).
    for s in staged {
        match s.commit() {
            Ok(p) => {
                if !p.starts_with(
                    opts.cache
                        .as_ref()
                        .map_or_else(PathBuf::new, |c| c.cache_dir.clone()),
                ) || opts.cache.is_none()
                {
                    report.outputs.push(p);
                }
            }
            Err(error) => {
                report.steps = reports;
                return Err(RunFailure {
                    step: "commit".into(),
                    error,
                    report,
                });
            }
        }
    }
    if let Some(c) = &opts.cache {
        report.records = records(&plan, c, &reports, &produced, &reuse.known);
    }
    report.steps = reports;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// State records after a successful run: new ones for what ran, the previous ones for what
/// was reused.
fn records(
    plan: &Plan,
    c: &CacheCtx,
    reports: &[StepReport],
    produced: &HashMap<usize, UnitOutput>,
    known: &HashMap<usize, StepRecord>,
) -> Vec<(String, StepRecord)> {
    let mut out = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let rec = match (&reports[i].status, produced.get(&i)) {
            (StepStatus::Ran, Some(o)) => StepRecord {
                delta_fp: c.delta_fingerprints.get(i).cloned(),
                fingerprint: c.fingerprints[i].clone(),
                rows: Some(o.rows as u64),
                outputs: o.files.clone(),
                cache_file: o.cache_file.clone(),
                watermark: None,
                stored: o.stored.clone(),
                validated: (o.checked_all && s.step.validation_only())
                    .then(|| reports[i].warnings.clone()),
                ..Default::default()
            },
            // Known to pass on this data (see `Reuse::known`): recorded like a fused step,
            // still known, with its row count (the next incremental `row_count` adds to it).
            (StepStatus::Cached, _) if known.contains_key(&i) => StepRecord {
                fingerprint: c.fingerprints[i].clone(),
                delta_fp: c.delta_fingerprints.get(i).cloned(),
                rows: known.get(&i).and_then(|r| r.rows),
                validated: known.get(&i).and_then(|r| r.validated.clone()),
                ..Default::default()
            },
            // Computed inside another unit: recorded too, so that the next run knows what
            // it was computed from (incremental runs compare delta fingerprints).
            (StepStatus::Fused { .. }, _) => StepRecord {
                fingerprint: c.fingerprints[i].clone(),
                delta_fp: c.delta_fingerprints.get(i).cloned(),
                ..Default::default()
            },
            (StepStatus::Cached, _) => match c.previous.get(&s.id) {
                Some(prev) if prev.fingerprint == c.fingerprints[i] => prev.clone(),
                _ => continue,
            },
            _ => continue,
        };
        out.push((s.id.clone(), rec));
    }
    out
}

/// The units this run must execute: sinks whose outputs cannot be reused, and the
/// materialised steps they need that are not available from the cache.
fn needed_units(
    plan: &Plan,
    materialized: &[bool],
    reuse: &Reuse,
    ready: &HashMap<usize, Ready>,
) -> Vec<Unit> {
    let all = units(plan, materialized);
    let mut needed = vec![false; plan.steps.len()];
    // Walk from the sinks that must run, backwards through the units they read.
    // Data checks run whenever their data changed, even if nothing reads them.
    let mut stack: Vec<usize> = all
        .iter()
        .filter(|u| {
            let s = &plan.steps[u.step];
            (s.role() == Role::Sink && !reuse.sinks[u.step])
                || (s.step.must_materialize() && !reuse.checked[u.step])
        })
        .map(|u| u.step)
        .collect();
    while let Some(i) = stack.pop() {
        if needed[i] || ready.contains_key(&i) {
            continue;
        }
        needed[i] = true;
        if let Some(u) = all.iter().find(|u| u.step == i) {
            stack.extend(u.deps.iter().copied());
        }
    }
    all.into_iter().filter(|u| needed[u.step]).collect()
}

/// What a unit produced.
struct UnitOutput {
    rows: usize,
    frame: Option<DataFrame>,
    staged: Vec<Staged>,
    /// Size and content hash of each file a sink wrote (for the state record).
    files: Vec<FileRecord>,
    cache_file: Option<String>,
    /// Size and content hash of the cached result (for the state record).
    stored: Vec<FileRecord>,
    /// The cached result or state, being written and made durable off the critical path
    /// (its readers go on with the frame in memory); joined before anything is committed.
    storing: Option<Storing>,
    warnings: Vec<String>,
    /// The whole result left lazy (an incremental data check checked only new rows).
    plan: Option<LazyFrame>,
    /// The new rows of an incremental step, materialised.
    delta: Option<DataFrame>,
    /// `validate` saw the whole result (not only appended rows).
    checked_all: bool,
}

/// A unit's work, built on the scheduler thread (cheap) and run on a blocking thread.
enum Work {
    /// An aggregation whose merge would not be exact (float sums, `first`): the groups the
    /// new rows touch (`touched`: their keys) are recomputed from `whole` (the input), and
    /// the other groups of `old` (the stored state) kept.
    ExactMerge {
        touched: Box<LazyFrame>,
        whole: Box<LazyFrame>,
        old: Box<LazyFrame>,
    },
    /// An aggregation whose merge is exact: the new rows (computed once, since the merge
    /// reads them twice: their groups, and their partial result) merged into `old`.
    Merge {
        rows: Box<LazyFrame>,
        old: Box<LazyFrame>,
    },
    Materialize(Box<LazyFrame>),
    Sink(DataFrame),
    /// An aggregation with stored state: computes (or merges) the state, stores it, and
    /// finishes it into the result.
    State(Box<LazyFrame>),
    /// A data check in an incremental run: checks the appended rows (or, for checks that
    /// need every row, the whole result); the whole result stays lazy.
    CheckAppended {
        delta: Box<LazyFrame>,
        old: Box<LazyFrame>,
        whole: Box<LazyFrame>,
        rows_before: u64,
    },
}

impl Work {
    fn run(
        self,
        plan: &Plan,
        step: usize,
        cache_path: Option<PathBuf>,
    ) -> Result<UnitOutput, RunError> {
        let s = &plan.steps[step];
        // `RUST_LOG=orch_engine=debug` shows the plan polars runs for each unit, after its
        // optimiser (what is pushed down, which joins, in what order).
        if tracing::enabled!(tracing::Level::DEBUG) {
            if let Work::Materialize(lf) | Work::State(lf) = &self {
                if let Ok(text) = lf.describe_optimized_plan() {
                    tracing::debug!(step = %s.id, "optimised plan:\n{text}");
                }
            }
        }
        match self {
            Work::ExactMerge {
                touched,
                whole,
                old,
            } => {
                let keys = touched.collect().map_err(|e| collect_error(s, e))?;
                tracing::debug!(step = %s.id, groups = keys.height(), "groups the new rows touch (recomputed from their rows)");
                let state = exact_merge(s, &plan.steps[s.inputs[0]].schema, keys, *whole, *old)?;
                Work::State(Box::new(state)).run(plan, step, cache_path)
            }
            Work::Merge { rows, old } => {
                let rows = rows.collect().map_err(|e| collect_error(s, e))?;
                let input = &plan.steps[s.inputs[0]].schema;
                let new = s.step.state_plan(rows.lazy(), input)?;
                let state = s.step.merge_states(*old, new)?;
                Work::State(Box::new(state)).run(plan, step, cache_path)
            }
            Work::Materialize(lf) => {
                let mut df = (*lf).collect().map_err(|e| collect_error(s, e))?;
                // A load of several files or of Parquet comes back in several chunks: one
                // chunk for its readers (see `incremental::collect_new`).
                df.rechunk_mut_par();
                // Files the step staged as it ran (a load's quarantine file).
                let staged = s.step.take_staged();
                let warnings = s.step.validate(&df)?;
                for w in &warnings {
                    tracing::warn!(step = %s.id, "{w}");
                }
                let mut cache_file = None;
                let mut storing = None;
                if let Some(path) = cache_path {
                    let what = format!("caching step `{}`", s.id);
                    cache_file = Some(path.display().to_string());
                    storing = Some(store_in_background(df.clone(), move |df| {
                        stage_parquet(&path, df, ParquetCompression::default(), &what)
                    }));
                }
                Ok(UnitOutput {
                    rows: df.height(),
                    frame: Some(df),
                    staged,
                    files: Vec::new(),
                    cache_file,
                    stored: Vec::new(),
                    storing,
                    warnings,
                    plan: None,
                    delta: None,
                    checked_all: true,
                })
            }
            Work::State(lf) => {
                let state = (*lf).collect().map_err(|e| collect_error(s, e))?;
                let path = cache_path.ok_or_else(|| {
                    RunError::internal(format!("stateful step `{}` without a state file", s.id))
                })?;
                let what = format!("storing the state of `{}`", s.id);
                let cache_file = Some(path.display().to_string());
                let storing = store_in_background(state.clone(), move |state| {
                    stage(&path, |f| {
                        use polars::prelude::SerWriter;
                        polars::prelude::IpcWriter::new(f)
                            .finish(state)
                            .map_err(|e| RunError::engine(&what, e))
                    })
                });
                let df = s
                    .step
                    .finish_state(state.lazy())?
                    .collect()
                    .map_err(|e| RunError::engine(format!("step `{}`", s.id), e))?;
                Ok(UnitOutput {
                    rows: df.height(),
                    frame: Some(df),
                    staged: Vec::new(),
                    files: Vec::new(),
                    cache_file,
                    stored: Vec::new(),
                    storing: Some(storing),
                    warnings: Vec::new(),
                    plan: None,
                    delta: None,
                    checked_all: false,
                })
            }
            Work::CheckAppended {
                delta,
                old,
                whole,
                rows_before,
            } => {
                let df = (*delta).collect().map_err(|e| collect_error(s, e))?;
                let warnings = match s.step.validate_appended(&df, rows_before, *old) {
                    Some(r) => r?,
                    None => {
                        let all = (*whole)
                            .clone()
                            .collect()
                            .map_err(|e| collect_error(s, e))?;
                        s.step.validate(&all)?
                    }
                };
                for w in &warnings {
                    tracing::warn!(step = %s.id, "{w}");
                }
                Ok(UnitOutput {
                    rows: rows_before as usize + df.height(),
                    frame: None,
                    staged: s.step.take_staged(),
                    files: Vec::new(),
                    cache_file: None,
                    stored: Vec::new(),
                    storing: None,
                    warnings,
                    plan: Some(*whole),
                    delta: Some(df),
                    checked_all: false,
                })
            }
            Work::Sink(mut df) => {
                let staged = s.step.write(&mut df)?;
                let files = staged.iter().map(staged_record).collect::<Result<_, _>>()?;
                Ok(UnitOutput {
                    rows: df.height(),
                    frame: None,
                    staged,
                    files,
                    cache_file: None,
                    stored: Vec::new(),
                    storing: None,
                    warnings: Vec::new(),
                    plan: None,
                    delta: None,
                    checked_all: false,
                })
            }
        }
    }
}

/// The stored state `old` with the groups whose keys are `keys` recomputed from `whole`.
/// The keys filter with `is_in`, which polars pushes down to the scans (only the touched
/// groups' rows are joined and aggregated). NULL keys match.
fn exact_merge(
    s: &crate::plan::PlannedStep,
    input: &orch_spec::Schema,
    keys: DataFrame,
    whole: LazyFrame,
    old: LazyFrame,
) -> Result<LazyFrame, RunError> {
    let names: Vec<String> = keys
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    if names.is_empty() {
        // One group (no `group_by`): the whole input.
        return s.step.state_plan(whole, input);
    }
    let k: Vec<_> = names.iter().map(|c| col(c.as_str())).collect();
    let with_nulls = |how| {
        let mut a = JoinArgs::new(how);
        a.nulls_equal = true;
        a
    };
    // The first key's values filter first (pushed down to the scans); with more keys, a semi
    // join then keeps the exact combinations.
    let first = keys
        .column(&names[0])
        .map_err(|e| RunError::engine("touched group keys", e))?
        .as_materialized_series()
        .unique()
        .map_err(|e| RunError::engine("touched group keys", e))?;
    let rows = whole.filter(col(names[0].as_str()).is_in(lit(first).implode(true), true));
    let rows = if names.len() == 1 {
        rows
    } else {
        rows.join(
            keys.clone().lazy(),
            k.clone(),
            k.clone(),
            with_nulls(JoinType::Semi),
        )
    };
    let recomputed = s.step.state_plan(rows, input)?;
    concat_lazy(vec![
        old.join(keys.lazy(), k.clone(), k, with_nulls(JoinType::Anti)),
        recomputed,
    ])
}

/// A cached result or state being written by [`store_in_background`].
type Storing = std::thread::JoinHandle<Result<(Staged, FileRecord), RunError>>;

/// Writes `df` with `write` (to a staged file) on a thread of its own and records the file's
/// size and hash: the step's readers need only the frame, and writing and syncing a large
/// state (about 0.15 s for product_mix's 3 M names) then overlaps with their work.
fn store_in_background(
    mut df: DataFrame,
    write: impl FnOnce(&mut DataFrame) -> Result<Staged, RunError> + Send + 'static,
) -> Storing {
    std::thread::spawn(move || {
        let st = write(&mut df)?;
        let rec = staged_record(&st)?;
        Ok((st, rec))
    })
}

/// Writes `df` as Parquet to a staged temporary file beside `path` (committed with the run).
pub(crate) fn stage_parquet(
    path: &std::path::Path,
    df: &mut DataFrame,
    compression: ParquetCompression,
    what: &str,
) -> Result<Staged, RunError> {
    stage(path, |f| {
        orch_steps::parquet_out::write_parquet_with(df, f, compression)
            .map_err(|e| RunError::engine(what, e))
    })
}

/// A collect that failed: bad data found while reading a source is the load's user error
/// (file, line, column, value), not an engine failure.
fn collect_error(s: &crate::plan::PlannedStep, e: polars::prelude::PolarsError) -> RunError {
    match orch_steps::steps::load::user_error(&e) {
        Some((_load, user)) => user,
        None => RunError::engine(format!("step `{}`", s.id), e),
    }
}

/// What `prepare` reads: the plan, what is ready, and the incremental states.
struct Prep<'a> {
    plan: &'a Plan,
    ready: &'a HashMap<usize, Ready>,
    states: &'a [DState],
    stateful: &'a [bool],
    preloaded: &'a HashMap<usize, Preloaded>,
    deltas: &'a HashMap<usize, DataFrame>,
    cache: Option<&'a CacheCtx>,
}

fn prepare(ctx: &Prep<'_>, step: usize) -> Result<Work, RunError> {
    let (plan, frames) = (ctx.plan, ctx.ready);
    let s = &plan.steps[step];
    if s.role() == Role::Sink {
        let input = s.inputs[0];
        let df = frames
            .get(&input)
            .ok_or_else(|| {
                RunError::internal(format!("sink `{}` scheduled before its input", s.id))
            })?
            .frame()?;
        return Ok(Work::Sink(df));
    }
    let whole = |j: usize| lazy_for(plan, j, frames);
    let builder = delta::Builder {
        plan,
        states: ctx.states,
        preloaded: ctx.preloaded,
        deltas: ctx.deltas,
        whole: &whole,
    };
    let schemas: Vec<_> = s.inputs.iter().map(|&i| &plan.steps[i].schema).collect();
    let whole_plan = || {
        let inputs = s
            .inputs
            .iter()
            .map(|&i| lazy_for(plan, i, frames))
            .collect::<Result<Vec<_>, _>>()?;
        s.step.to_polars(inputs, &schemas)
    };
    match &ctx.states[step] {
        DState::Delta if s.step.must_materialize() => {
            let rows_before = ctx
                .cache
                .and_then(|c| c.previous.get(&s.id))
                .and_then(|r| r.rows)
                .unwrap_or(0);
            let delta = builder.delta(step)?;
            let old = builder.old(step)?;
            // The data check's stash must hold the whole inputs (relationships): build the
            // whole plan last.
            let whole = whole_plan()?;
            return Ok(Work::CheckAppended {
                delta: Box::new(delta),
                old: Box::new(old),
                whole: Box::new(whole),
                rows_before,
            });
        }
        DState::Merged => {
            let prev = ctx
                .cache
                .and_then(|c| c.previous.get(&s.id))
                .and_then(|r| r.cache_file.clone())
                .ok_or_else(|| RunError::internal("merge without stored state"))?;
            let old = scan_stored(&[PathBuf::from(prev)])?;
            let input = s.inputs[0];
            if ctx.states[input] == DState::Updated {
                // Some input rows changed (not only gained): a merge of partial results
                // would count them twice, so the groups they fall in are recomputed.
                let touched = builder.touched_by_update(input, &s.step.group_keys())?;
                return Ok(Work::ExactMerge {
                    touched: Box::new(touched),
                    whole: Box::new(lazy_for(plan, input, frames)?),
                    old: Box::new(old),
                });
            }
            let rows = builder.delta(input)?;
            if s.step.merge_is_exact(schemas[0]) {
                return Ok(Work::Merge {
                    rows: Box::new(rows),
                    old: Box::new(old),
                });
            }
            // The groups the new rows touch are recomputed from the whole input, filtered to
            // them: the same rows in the same order as a full recompute reads them (an old
            // row matched by a new one on the other side of a join sits among the old rows,
            // not after them), and put in place of their stored rows.
            let keys = s.step.group_keys();
            let k: Vec<_> = keys.iter().map(|c| col(c.as_str())).collect();
            let touched = rows.select(k).unique(None, Default::default());
            return Ok(Work::ExactMerge {
                touched: Box::new(touched),
                whole: Box::new(lazy_for(plan, s.inputs[0], frames)?),
                old: Box::new(old),
            });
        }
        _ if ctx.stateful[step] && ctx.cache.is_some() => {
            let input = lazy_for(plan, s.inputs[0], frames)?;
            return Ok(Work::State(Box::new(s.step.state_plan(input, schemas[0])?)));
        }
        _ => {}
    }
    Ok(Work::Materialize(Box::new(whole_plan()?)))
}

/// The lazy plan of step `i`: a materialised frame, or its step applied to its inputs' plans.
fn lazy_for(plan: &Plan, i: usize, frames: &HashMap<usize, Ready>) -> Result<LazyFrame, RunError> {
    // A materialised or stored result is read as it is.
    if let Some(r) = frames.get(&i) {
        return r.lazy();
    }
    let s = &plan.steps[i];
    let inputs = s
        .inputs
        .iter()
        .map(|&j| lazy_for(plan, j, frames))
        .collect::<Result<Vec<_>, _>>()?;
    let schemas: Vec<_> = s.inputs.iter().map(|&j| &plan.steps[j].schema).collect();
    s.step.to_polars(inputs, &schemas).map_err(|e| match e {
        RunError::Engine { context, source } => RunError::Engine {
            context: format!("step `{}`: {context}", s.id),
            source,
        },
        other => other,
    })
}

/// Units in execution order, with the materialised steps each one reads.
fn units(plan: &Plan, materialized: &[bool]) -> Vec<Unit> {
    let mut out = Vec::new();
    for &i in &plan.order {
        let s = &plan.steps[i];
        if s.role() == Role::Sink {
            out.push(Unit {
                step: i,
                deps: s.inputs.clone(),
            });
        } else if materialized[i] {
            let mut deps = Vec::new();
            for &j in &s.inputs {
                frontier(plan, j, materialized, &mut deps);
            }
            out.push(Unit { step: i, deps });
        }
    }
    out
}

/// The materialised steps a fused plan starting at `i` reads.
fn frontier(plan: &Plan, i: usize, materialized: &[bool], out: &mut Vec<usize>) {
    if materialized[i] {
        if !out.contains(&i) {
            out.push(i);
        }
        return;
    }
    for &j in &plan.steps[i].inputs {
        frontier(plan, j, materialized, out);
    }
}

/// Marks non-materialised steps as fused into the unit that computes them.
fn mark_fused(plan: &Plan, materialized: &[bool], reports: &mut [StepReport]) {
    for (i, s) in plan.steps.iter().enumerate() {
        if materialized[i] || s.role() == Role::Sink {
            continue;
        }
        // Follow the single consumer chain down to a materialised step.
        let mut cur = i;
        let into = loop {
            match plan.steps[cur].consumers.first() {
                Some(&c) if materialized[c] => break Some(c),
                Some(&c) if plan.steps[c].role() == Role::Sink => break None,
                Some(&c) => cur = c,
                None => break None,
            }
        };
        if let Some(c) = into {
            reports[i].status = StepStatus::Fused {
                into: plan.steps[c].id.clone(),
            };
        }
    }
}

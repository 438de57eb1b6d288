//! Runs a compiled plan on polars.
//!
//! The plan is cut into *units*: each materialised step (read by several steps, or by a
//! sink) and each sink. A unit's lazy plan fuses every non-materialised step upstream of
//! it, so polars optimises across steps; units whose inputs are ready run concurrently on
//! tokio's blocking pool, at most `max_parallel` at a time. Sinks stage their files under
//! temporary names; only when every unit has succeeded are the files renamed into place,
//! so a failed run leaves every previous output as it was.

use crate::plan::Plan;
use orch_steps::storage::Staged;
use orch_steps::{Role, RunError};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame};
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
    /// Not needed by any output.
    Unused,
    /// Not run because an earlier unit failed.
    Skipped,
    Failed,
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

#[derive(Clone)]
pub struct RunOptions {
    pub max_parallel: usize,
    pub observer: Option<Observer>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            observer: None,
        }
    }
}

/// One schedulable piece of work.
struct Unit {
    step: usize,
    /// Units (by step index) whose frames this unit reads.
    deps: Vec<usize>,
}

/// Runs the plan to completion, committing outputs only if every unit succeeded.
pub async fn execute(plan: Arc<Plan>, opts: RunOptions) -> Result<RunReport, RunFailure> {
    let started = Instant::now();
    let materialized = plan.materialized();
    let units = units(&plan, &materialized);
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
        })
        .collect();
    mark_fused(&plan, &materialized, &mut reports);

    let mut frames: HashMap<usize, DataFrame> = HashMap::new();
    let mut staged: Vec<Staged> = Vec::new();
    let mut pending: Vec<&Unit> = units.iter().collect();
    let mut running: JoinSet<(usize, Result<UnitOutput, RunError>, Duration)> = JoinSet::new();
    let mut failure: Option<(usize, RunError)> = None;

    loop {
        // Start every unit whose inputs are ready, up to the parallelism bound.
        if failure.is_none() {
            let mut i = 0;
            while i < pending.len() && running.len() < opts.max_parallel.max(1) {
                if pending[i].deps.iter().all(|d| frames.contains_key(d)) {
                    let unit = pending.remove(i);
                    let work = match prepare(&plan, unit.step, &materialized, &frames) {
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
                        let r = work.run(&plan, step);
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
            Ok(out) => {
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
                staged.extend(out.staged);
                if let Some(df) = out.frame {
                    frames.insert(step, df);
                }
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

    let mut report = RunReport {
        pipeline: plan.name.clone(),
        steps: Vec::new(),
        elapsed: started.elapsed(),
        outputs: Vec::new(),
    };
    if let Some((step, error)) = failure {
        // Dropping the staged files deletes them: previous outputs stay as they were.
        drop(staged);
        for u in pending {
            reports[u.step].status = StepStatus::Skipped;
        }
        report.steps = reports;
        report.elapsed = started.elapsed();
        let step_id = plan
            .steps
            .get(step)
            .map_or_else(|| "?".to_string(), |s| s.id.clone());
        return Err(RunFailure {
            step: step_id,
            error,
            report,
        });
    }
    // Every unit succeeded: publish the outputs.
    for s in staged {
        match s.commit() {
            Ok(p) => report.outputs.push(p),
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
    report.steps = reports;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// What a unit produced.
struct UnitOutput {
    rows: usize,
    frame: Option<DataFrame>,
    staged: Vec<Staged>,
}

/// A unit's work, built on the scheduler thread (cheap) and run on a blocking thread.
enum Work {
    Materialize(Box<LazyFrame>),
    Sink(DataFrame),
}

impl Work {
    fn run(self, plan: &Plan, step: usize) -> Result<UnitOutput, RunError> {
        let s = &plan.steps[step];
        match self {
            Work::Materialize(lf) => {
                let df = lf
                    .collect()
                    .map_err(|e| RunError::engine(format!("step `{}`", s.id), e))?;
                Ok(UnitOutput {
                    rows: df.height(),
                    frame: Some(df),
                    staged: Vec::new(),
                })
            }
            Work::Sink(mut df) => {
                let staged = s.step.write(&mut df)?;
                Ok(UnitOutput {
                    rows: df.height(),
                    frame: None,
                    staged,
                })
            }
        }
    }
}

fn prepare(
    plan: &Plan,
    step: usize,
    materialized: &[bool],
    frames: &HashMap<usize, DataFrame>,
) -> Result<Work, RunError> {
    let s = &plan.steps[step];
    if s.role() == Role::Sink {
        let input = s.inputs[0];
        let df = frames.get(&input).cloned().ok_or_else(|| {
            RunError::internal(format!("sink `{}` scheduled before its input", s.id))
        })?;
        return Ok(Work::Sink(df));
    }
    let inputs = s
        .inputs
        .iter()
        .map(|&i| lazy_for(plan, i, materialized, frames))
        .collect::<Result<Vec<_>, _>>()?;
    let schemas: Vec<_> = s.inputs.iter().map(|&i| &plan.steps[i].schema).collect();
    Ok(Work::Materialize(Box::new(
        s.step.to_polars(inputs, &schemas)?,
    )))
}

/// The lazy plan of step `i`: a materialised frame, or its step applied to its inputs' plans.
pub fn lazy_for(
    plan: &Plan,
    i: usize,
    materialized: &[bool],
    frames: &HashMap<usize, DataFrame>,
) -> Result<LazyFrame, RunError> {
    if materialized[i] {
        if let Some(df) = frames.get(&i) {
            return Ok(df.clone().lazy());
        }
    }
    let s = &plan.steps[i];
    let inputs = s
        .inputs
        .iter()
        .map(|&j| lazy_for(plan, j, materialized, frames))
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

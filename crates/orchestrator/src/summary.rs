//! What the user sees: the end-of-run table, the progress bar and the step reference.

use indicatif::{ProgressBar, ProgressStyle};
use orch_engine::{Event, RunReport, StepStatus};
use std::sync::{Arc, Mutex};

/// A per-step table: status, rows and time.
pub fn table(report: &RunReport, failed: Option<&str>) -> String {
    let mut out = String::new();
    let verdict = match failed {
        None => "ok".to_string(),
        Some(step) => format!("FAILED at step `{step}`"),
    };
    out.push_str(&format!(
        "pipeline `{}`: {verdict} in {:.3}s\n",
        report.pipeline,
        report.elapsed.as_secs_f64()
    ));
    let w = report
        .steps
        .iter()
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "  {:<w$}  {:<9}  {:<22}  {:>10}  {:>8}\n",
        "step", "type", "status", "rows", "time"
    ));
    for s in &report.steps {
        let status = match &s.status {
            StepStatus::Fused { into } => format!("fused into {into}"),
            StepStatus::Failed => "FAILED".to_string(),
            other => other.word().to_string(),
        };
        let rows = s.rows.map_or_else(|| "-".to_string(), |r| r.to_string());
        let time = if s.status == StepStatus::Ran || s.status == StepStatus::Failed {
            format!("{:.3}s", s.elapsed.as_secs_f64())
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            "  {:<w$}  {:<9}  {:<22}  {:>10}  {:>8}\n",
            s.id, s.type_name, status, rows, time
        ));
    }
    for s in &report.steps {
        if let Some(n) = &s.note {
            out.push_str(&format!("  note: step `{}`: {n}\n", s.id));
        }
        for w in &s.warnings {
            out.push_str(&format!("  warning: step `{}`: {w}\n", s.id));
        }
    }
    for o in &report.outputs {
        out.push_str(&format!("  wrote {}\n", o.display()));
    }
    out
}

/// A progress bar over the run's units, shown only on a terminal.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    running: Arc<Mutex<Vec<String>>>,
}

impl Progress {
    pub fn new(pipeline: &str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(pipeline.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress {
            bar,
            running: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn on_event(&self, e: &Event) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match e {
            Event::Planned { units } => self.bar.set_length(*units as u64),
            Event::Started { id } => running.push(id.clone()),
            Event::Finished { id, .. } => {
                running.retain(|r| r != id);
                self.bar.inc(1);
            }
        }
        self.bar.set_message(running.join(", "));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `orchestrator steps`: every registered step type with its summary and example.
pub fn step_reference() -> String {
    let mut out = String::new();
    for t in orch_steps::REGISTRY {
        out.push_str(&format!(
            "{} ({})\n  {}\n",
            t.name,
            t.arity.describe(),
            t.summary
        ));
        for line in t.example.lines() {
            out.push_str(&format!("    {line}\n"));
        }
        out.push('\n');
    }
    out
}

/// `orchestrator status`: the last run and each step's state.
pub fn status(plan: &orch_engine::Plan, store: &orch_state::Store) -> Result<String, String> {
    let mut out = String::new();
    let runs = store.runs(&plan.name).map_err(|e| e.to_string())?;
    match runs.last() {
        None => out.push_str(&format!(
            "pipeline `{}`: never run with state folder {}\n",
            plan.name,
            store.dir().display()
        )),
        Some(r) => {
            out.push_str(&format!(
                "pipeline `{}`: last run #{} {} (started {}, ended {})\n",
                plan.name, r.id, r.status, r.started, r.ended
            ));
            if let Some(e) = &r.error {
                out.push_str(&format!("  error: {e}\n"));
            }
            let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("  params: {}\n", params.join(", ")));
        }
    }
    let records = store.steps(&plan.name).map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "  {:<24}  {:<18}  {:>10}  {}\n",
        "step", "fingerprint", "rows", "watermark / files"
    ));
    for s in &plan.steps {
        match records.iter().find(|(id, _)| id == &s.id) {
            None => out.push_str(&format!(
                "  {:<24}  {:<18}  {:>10}  \n",
                s.id, "(none)", "-"
            )),
            Some((_, r)) => {
                let detail = match (&r.watermark, r.outputs.is_empty(), &r.cache_file) {
                    (Some(w), _, _) => {
                        serde_json::from_value::<orch_engine::incremental::Watermark>(w.clone())
                            .map_or_else(
                                |_| w.to_string(),
                                |w| {
                                    let mode = s.step.incremental();
                                    w.describe(mode.as_ref().map_or("append", |m| m.mode()))
                                },
                            )
                    }
                    (None, false, _) => r
                        .outputs
                        .iter()
                        .map(|f| f.path.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    (None, true, Some(c)) => format!("cached at {c}"),
                    _ => String::new(),
                };
                let fp: String = r.fingerprint.chars().take(16).collect();
                let rows = r.rows.map_or_else(|| "-".to_string(), |n| n.to_string());
                out.push_str(&format!(
                    "  {:<24}  {:<18}  {:>10}  {detail}\n",
                    s.id, fp, rows
                ));
            }
        }
    }
    Ok(out)
}

/// `orchestrator history`: one line per run, oldest first.
pub fn history(plan: &orch_engine::Plan, store: &orch_state::Store) -> Result<String, String> {
    let runs = store.runs(&plan.name).map_err(|e| e.to_string())?;
    let mut out = format!(
        "{:>5}  {:<7}  {:<32}  {:>6} {:>6} {:>6}  params\n",
        "run", "status", "started", "ran", "cached", "failed"
    );
    for r in &runs {
        let count = |w: &str| r.steps.iter().filter(|s| s.status == w).count();
        let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{:>5}  {:<7}  {:<32}  {:>6} {:>6} {:>6}  {}\n",
            r.id,
            r.status,
            r.started,
            count("ran"),
            count("cached"),
            count("failed"),
            params.join(" ")
        ));
    }
    if runs.is_empty() {
        out.push_str("(no runs yet)\n");
    }
    Ok(out)
}

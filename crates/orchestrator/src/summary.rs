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
        "pipeline `{}`: {verdict} in {:.2}s\n",
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
            StepStatus::Ran => "ran".to_string(),
            StepStatus::Fused { into } => format!("fused into {into}"),
            StepStatus::Unused => "unused".to_string(),
            StepStatus::Skipped => "skipped".to_string(),
            StepStatus::Failed => "FAILED".to_string(),
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

//! The engine: compiles pipeline files into checked plans and runs them.
//!
//! Follow a run: [`compile::compile_file`] (YAML -> checked [`plan::Plan`]) ->
//! [`exec::execute`] (units on tokio, each a fused polars plan) -> the step's
//! `to_polars`/`write` in `orch-steps`.

pub mod compile;
pub mod delta;
pub mod exec;
pub mod fingerprint;
pub mod graph;
pub mod hash;
pub mod incremental;
pub mod plan;
pub mod runner;

pub use compile::{compile, compile_file, CompileError, CompileOptions};
pub use exec::{
    execute, CacheCtx, Event, RunFailure, RunOptions, RunReport, StepReport, StepStatus,
};
pub use plan::Plan;
pub use runner::{run_with_state, state_dir, RunConfig};

/// Sends polars' own warnings (printed raw to stderr by default, e.g. `UserWarning: CSV
/// malformed ...` before our message about the same file) to the log at debug level: the
/// user gets the engine's message, which names the file and line.
pub fn route_polars_warnings() {
    fn to_log(message: &str, kind: polars::error::PolarsWarning) {
        tracing::debug!(target: "polars", "{kind:?}: {message}");
    }
    polars::error::set_warning_function(to_log);
}

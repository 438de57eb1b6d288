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
pub mod incremental;
pub mod plan;
pub mod runner;

pub use compile::{compile, compile_file, CompileError, CompileOptions};
pub use exec::{
    execute, CacheCtx, Event, RunFailure, RunOptions, RunReport, StepReport, StepStatus,
};
pub use plan::Plan;
pub use runner::{run_with_state, state_dir, RunConfig};

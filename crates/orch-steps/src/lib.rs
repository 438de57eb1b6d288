//! The step library. Each step type lives in `steps/<name>.rs` and is registered in
//! [`registry::REGISTRY`]; the [`step::Step`] trait is the contract between steps and engine.

pub mod common;
pub mod error;
pub mod parquet_out;
pub mod registry;
pub mod step;
pub mod steps;
pub mod storage;

pub use error::RunError;
pub use registry::{lookup, REGISTRY};
pub use step::{Arity, DeltaRule, IncrementalSource, Role, Step, StepType};

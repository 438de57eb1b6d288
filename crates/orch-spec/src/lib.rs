//! The pipeline language: loading YAML with source locations, the pipeline model, params,
//! engine-neutral types and diagnostics. Nothing here knows about polars.

pub mod decode;
pub mod diag;
pub mod model;
pub mod params;
pub mod suggest;
pub mod types;
pub mod yaml;

pub use decode::{Ctx, Fields};
pub use diag::{Diagnostic, Diagnostics, Severity, Source, Span};
pub use model::{PipelineDecl, StepDecl};
pub use params::{ParamType, Params};
pub use types::{DataType, Schema};
pub use yaml::Node;

//! The contract every step type implements.
//!
//! A step describes a relational operation (engine-neutral options, checked against
//! engine-neutral schemas). `to_polars` is its first executor; another engine adds its own
//! lowering method beside it without touching the options or the checks.

use crate::error::RunError;
use crate::storage::Staged;
use orch_spec::{Ctx, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::{DataFrame, LazyFrame};
use std::fmt::Debug;

/// How many inputs a step type takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    None,
    Exactly(usize),
    AtLeast(usize),
}

impl Arity {
    pub fn accepts(&self, n: usize) -> bool {
        match *self {
            Arity::None => n == 0,
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Arity::None => "no inputs".into(),
            Arity::Exactly(1) => "exactly one input".into(),
            Arity::Exactly(k) => format!("exactly {k} inputs"),
            Arity::AtLeast(1) => "at least one input".into(),
            Arity::AtLeast(k) => format!("at least {k} inputs"),
        }
    }
}

/// A registry entry: a step type's name, docs and option decoder.
pub struct StepType {
    pub name: &'static str,
    pub summary: &'static str,
    pub arity: Arity,
    /// A small YAML example, shown by `orchestrator steps` and in the README reference.
    pub example: &'static str,
    /// Reads the step's own keys; the shared keys (`id`, `type`, `inputs`) are already taken.
    pub decode: fn(&StepDecl, &mut Fields<'_>, &mut Ctx<'_>) -> Option<Box<dyn Step>>,
}

/// What the engine needs to know about a step's role in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads external data (no inputs).
    Source,
    /// Computes a table from its inputs.
    Transform,
    /// Writes its single input somewhere; its result is the input unchanged.
    Sink,
}

/// How a step's result follows when its inputs only *gained* rows since the last run (an
/// incremental source read its appended rows). The engine then computes only what the new
/// rows add, instead of recomputing from every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaRule {
    /// Recomputed from its whole inputs.
    Recompute,
    /// Row by row over the first input (filter, derive, select, check): new rows in, new rows
    /// out; any other input must be unchanged.
    RowWise,
    /// Stacks its inputs (union): the new rows of each.
    Stack,
    /// A join. `left`/`right`: that side may gain rows while the other is unchanged;
    /// both (inner joins): new left rows against the whole right side, plus the old left rows
    /// against the new right rows.
    Join { left: bool, right: bool },
    /// An aggregation whose result is kept as state and merged with the new rows' partial
    /// result ([`Step::state_plan`], [`Step::merge_states`], [`Step::finish_state`]).
    Merge,
}

/// How an incremental source grows between runs (engine-neutral: the engine decides how to
/// find what is new; the step only parses it, through [`Step::read_other`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncrementalSource {
    /// `append`: one file that only grows; new rows are the bytes after the last read.
    Append { path: String },
    /// `files`: a folder or glob of files (daily drops); new rows are the files not read
    /// before. The files it matches now are the step's [`Step::reads`].
    Files { pattern: String },
    /// `column`: rows whose `column` is above the largest value read before (a high-water
    /// mark), in the files of [`Step::reads`].
    Column { pattern: String, column: String },
}

impl IncrementalSource {
    /// The path as written (after parameters): a file, a folder or a glob.
    pub fn pattern(&self) -> &str {
        match self {
            IncrementalSource::Append { path } => path,
            IncrementalSource::Files { pattern, .. }
            | IncrementalSource::Column { pattern, .. } => pattern,
        }
    }

    /// The mode's name, as written in the pipeline.
    pub fn mode(&self) -> &'static str {
        match self {
            IncrementalSource::Append { .. } => "append",
            IncrementalSource::Files { .. } => "files",
            IncrementalSource::Column { .. } => "column",
        }
    }
}

/// One decoded step.
pub trait Step: Send + Sync + Debug {
    fn role(&self) -> Role {
        Role::Transform
    }

    /// The output schema given the input schemas (in `inputs` order). Problems are pushed as
    /// located diagnostics; `None` means the schema could not be determined.
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema>;

    /// A canonical, stable description of the step's options (after param substitution),
    /// part of its fingerprint.
    fn fingerprint(&self) -> String;

    /// External files this step reads (their content is part of the fingerprint).
    fn reads(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds the polars plan for this step. `inputs` are the input plans and `schemas`
    /// their checked schemas, both in `inputs` order.
    fn to_polars(&self, inputs: Vec<LazyFrame>, schemas: &[&Schema])
        -> Result<LazyFrame, RunError>;

    /// For an incremental `load`: how it grows. The engine then reads only what is new since
    /// the last run (see [`IncrementalSource`]).
    fn incremental(&self) -> Option<IncrementalSource> {
        None
    }

    /// Reads another file with exactly this step's options (schema, formats, delimiter):
    /// used to parse an appended tail saved as a small file of its own, or one file of a
    /// folder of daily drops.
    ///
    /// `origin`: when `path` holds a piece of a larger file (a header line, then an appended
    /// tail), that file and the number of lines to add to the piece's line numbers, so that
    /// messages about bad rows point into the file the user knows.
    fn read_other(&self, _path: &str, _origin: Option<(&str, u64)>) -> Result<LazyFrame, RunError> {
        Err(RunError::internal(
            "read_other called on a step that is not a load",
        ))
    }

    /// Steps that must see their whole result before the run goes on (data checks): the
    /// engine materialises them and calls [`Step::validate`] on the result.
    fn must_materialize(&self) -> bool {
        false
    }

    /// A step materialised only to be validated, whose result is its first input unchanged
    /// and whose `validate` has no side effects (data checks). Once it is known to pass on
    /// some data, the engine may skip it on that data.
    fn validation_only(&self) -> bool {
        false
    }

    /// Told once, when the pipeline is compiled: the files of the `load` steps that this
    /// step's (first) input comes from through single-input steps. A failing `row_count`
    /// check names those that hold no data rows.
    fn set_upstream_files(&self, _files: Vec<String>) {}

    /// Whether the order of the rows of input `i` can change this step's result or the
    /// order of its rows (not for a `sort`, which reorders them, nor for the right side of
    /// a semi or anti join, read for its keys only).
    fn input_order_matters(&self, _input: usize) -> bool {
        true
    }

    /// For joins: whether the output's row order is the left input's (inner, left, semi and
    /// anti joins), the right input's order only ordering several matches of one left row.
    fn follows_left_order(&self) -> bool {
        false
    }

    /// Told at compile time whether any reader of this step's result cares about its row
    /// order (see [`Step::input_order_matters`]): an aggregate then puts its groups in key
    /// order, otherwise it leaves them as polars hands them out.
    fn set_row_order_matters(&self, _matters: bool) {}

    /// See [`DeltaRule`].
    fn delta_rule(&self) -> DeltaRule {
        DeltaRule::Recompute
    }

    /// For joins: the key columns of the left and the right input.
    fn join_keys(&self) -> Option<(Vec<String>, Vec<String>)> {
        None
    }

    /// For [`DeltaRule::Merge`]: the mergeable partial result (state) of some input rows:
    /// the group keys and state columns.
    fn state_plan(&self, _input: LazyFrame, _schema: &Schema) -> Result<LazyFrame, RunError> {
        Err(RunError::internal(
            "state_plan on a step that does not merge",
        ))
    }

    /// For [`DeltaRule::Merge`]: whether merging states gives exactly what a full recompute
    /// gives. Float sums do not: polars sums a group with compensated (Kahan) summation, and
    /// adding two compensated sums drops the first one's compensation (a last-bit
    /// difference). For such steps the groups the new rows touch are recomputed from all
    /// their rows instead, and `merge_states` is not called.
    fn merge_is_exact(&self, _input: &Schema) -> bool {
        true
    }

    /// For [`DeltaRule::Merge`]: the group key columns (none: the whole input is one group).
    fn group_keys(&self) -> Vec<String> {
        Vec::new()
    }

    /// For [`DeltaRule::Merge`]: merges the stored state with the new rows' state.
    fn merge_states(&self, _old: LazyFrame, _new: LazyFrame) -> Result<LazyFrame, RunError> {
        Err(RunError::internal(
            "merge_states on a step that does not merge",
        ))
    }

    /// For [`DeltaRule::Merge`]: the step's result from its state.
    fn finish_state(&self, _state: LazyFrame) -> Result<LazyFrame, RunError> {
        Err(RunError::internal(
            "finish_state on a step that does not merge",
        ))
    }

    /// Data checks in an incremental run: checks the appended rows (`rows_before` rows
    /// passed last time; `old` is their plan, for checks that compare new rows with old
    /// ones). `None`: this step needs the whole result materialised.
    fn validate_appended(
        &self,
        _delta: &DataFrame,
        _rows_before: u64,
        _old: LazyFrame,
    ) -> Option<Result<Vec<String>, RunError>> {
        None
    }

    /// Checks a materialised result. `Err` stops the run before any output is committed;
    /// `Ok` carries warnings to report.
    fn validate(&self, _df: &DataFrame) -> Result<Vec<String>, RunError> {
        Ok(Vec::new())
    }

    /// Files the step staged while it ran, besides a sink's outputs (a `load`'s quarantine
    /// file). The engine commits them with the outputs once every step of the run has
    /// succeeded, and drops (deletes) them if the run fails.
    fn take_staged(&self) -> Vec<Staged> {
        Vec::new()
    }

    /// For sinks: writes the materialised input to temporary files beside the targets.
    /// The engine commits (renames) them only once every step of the run has succeeded.
    fn write(&self, _df: &mut DataFrame) -> Result<Vec<Staged>, RunError> {
        Err(RunError::internal(
            "write called on a step that is not a sink",
        ))
    }
}

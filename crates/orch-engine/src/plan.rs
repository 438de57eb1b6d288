//! A compiled pipeline: checked steps with their schemas, in dependency order.

use orch_spec::{Params, Schema, Source, Span};
use orch_steps::{Role, Step};
use petgraph::graph::DiGraph;

/// One step, decoded and checked.
#[derive(Debug)]
pub struct PlannedStep {
    pub id: String,
    pub type_name: &'static str,
    /// Indices into [`Plan::steps`], in the order written.
    pub inputs: Vec<usize>,
    /// Steps that read this one.
    pub consumers: Vec<usize>,
    pub step: Box<dyn Step>,
    pub schema: Schema,
    pub span: Span,
    /// `cache: true`: keep the result as Parquet in the state folder and reuse it while the
    /// fingerprint matches.
    pub cache: bool,
}

impl PlannedStep {
    pub fn role(&self) -> Role {
        self.step.role()
    }
}

#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub source: Source,
    pub params: Params,
    pub steps: Vec<PlannedStep>,
    /// Step indices in a valid execution order.
    pub order: Vec<usize>,
    pub graph: DiGraph<usize, ()>,
}

impl Plan {
    pub fn step(&self, id: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Steps whose result is computed once and shared: sinks' inputs and steps read by
    /// several consumers. Everything else is fused into its consumer's lazy plan, so the
    /// optimiser sees across steps.
    pub fn materialized(&self) -> Vec<bool> {
        (0..self.steps.len())
            .map(|i| self.shared(i) || self.steps[i].step.must_materialize())
            .collect()
    }

    /// Whether step `i`'s result is computed once for several readers: a sink's input, a
    /// step read by several steps, or a `cache: true` step.
    pub fn shared(&self, i: usize) -> bool {
        let s = &self.steps[i];
        s.role() != Role::Sink
            && (s.consumers.len() > 1
                || s.cache
                || s.consumers
                    .iter()
                    .any(|&c| self.steps[c].role() == Role::Sink))
    }
}

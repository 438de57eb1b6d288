//! `filter`: keeps the rows where a boolean SQL expression is true (NULL counts as false).
//!
//! ```yaml
//! - id: counted
//!   type: filter
//!   input: invoices
//!   where: date_issued <= DATE '${as_of}'
//! ```

use crate::common::{fingerprint_of, ExprSrc};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::LazyFrame;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "filter",
    summary: "Keep the rows where a boolean SQL expression is true.",
    arity: Arity::Exactly(1),
    example: "- id: counted\n  type: filter\n  input: invoices\n  where: date_issued <= DATE '${as_of}'\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Filter {
    #[serde(rename = "where")]
    pub predicate: ExprSrc,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let node = f.require("where", ctx)?;
    let predicate = ExprSrc::decode(node, "where", ctx)?;
    Some(Box::new(Filter { predicate }))
}

impl Step for Filter {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let t = self.predicate.check(inputs[0], diags)?;
        if t != DataType::Bool && t != DataType::Null {
            diags.push(
                Diagnostic::error(format!("`where` must be a true/false expression, got {t}"))
                    .at(self.predicate.span)
                    .hint("compare the value, e.g. `quantity > 0`"),
            );
            return None;
        }
        Some(inputs[0].clone())
    }

    fn delta_rule(&self) -> DeltaRule {
        DeltaRule::RowWise
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        mut inputs: Vec<LazyFrame>,
        schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let lf = inputs
            .pop()
            .ok_or_else(|| RunError::internal("filter without input"))?;
        let e = self
            .predicate
            .expr
            .to_polars(schemas[0])
            .map_err(|e| RunError::internal(e.message))?;
        Ok(lf.filter(e))
    }
}

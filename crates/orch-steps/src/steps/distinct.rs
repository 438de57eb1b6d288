//! `distinct`: removes duplicate rows, or rows duplicated on a subset of columns (keeping
//! the first occurrence in input order).
//!
//! ```yaml
//! - id: unique_invoices
//!   type: distinct
//!   input: invoices
//!   columns: [invoice_id]     # optional; default: all columns
//! ```

use crate::common::{fingerprint_of, ColRef};
use crate::error::RunError;
use crate::step::{Arity, Step, StepType};
use orch_spec::{Ctx, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::{col, LazyFrame, UniqueKeepStrategy};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "distinct",
    summary:
        "Remove duplicate rows (optionally judged on a subset of columns; the first row is kept).",
    arity: Arity::Exactly(1),
    example:
        "- id: unique_invoices\n  type: distinct\n  input: invoices\n  columns: [invoice_id]\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Distinct {
    pub columns: Option<Vec<ColRef>>,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let columns = match f.take("columns") {
        Some(n) => Some(ColRef::list(n, "columns", ctx)?),
        None => None,
    };
    Some(Box::new(Distinct { columns }))
}

impl Step for Distinct {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let ok = self
            .columns
            .iter()
            .flatten()
            .all(|c| c.resolve(inputs[0], "the input", diags).is_some());
        ok.then(|| inputs[0].clone())
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        mut inputs: Vec<LazyFrame>,
        _schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let lf = inputs
            .pop()
            .ok_or_else(|| RunError::internal("distinct without input"))?;
        Ok(match &self.columns {
            // Whole-row duplicates are interchangeable: no need to pay for a stable pass.
            None => lf.unique_generic(None, UniqueKeepStrategy::Any),
            Some(cols) => {
                let subset = cols.iter().map(|c| col(c.name.as_str())).collect();
                lf.unique_stable_generic(Some(subset), UniqueKeepStrategy::First)
            }
        })
    }
}

//! `sort`: orders rows by one or more columns. The sort is stable, so equal keys keep
//! their input order and runs are reproducible.
//!
//! ```yaml
//! - id: ordered
//!   type: sort
//!   input: report
//!   by: [account_id]
//!   descending: false        # or one flag per column: [false, true]
//!   nulls_last: true
//! ```

use crate::common::{fingerprint_of, ColRef};
use crate::error::RunError;
use crate::step::{Arity, Step, StepType};
use orch_spec::{Ctx, Diagnostic, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::{LazyFrame, SortMultipleOptions};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "sort",
    summary: "Order rows by columns (stable), ascending or descending, nulls first or last.",
    arity: Arity::Exactly(1),
    example: "- id: ordered\n  type: sort\n  input: report\n  by: account_id\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Sort {
    pub by: Vec<ColRef>,
    pub descending: Vec<bool>,
    pub nulls_last: bool,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let by = ColRef::list(f.require("by", ctx)?, "by", ctx)?;
    let descending = match f.take("descending") {
        None => vec![false; by.len()],
        Some(n) => match n.as_seq() {
            Some(items) => {
                let flags: Vec<bool> = items
                    .iter()
                    .filter_map(|i| ctx.bool(i, "descending"))
                    .collect();
                if flags.len() != by.len() {
                    ctx.error(
                        Diagnostic::error(format!(
                            "`descending` has {} flags for {} columns",
                            flags.len(),
                            by.len()
                        ))
                        .at(n.span)
                        .hint("give one flag per `by` column, or a single true/false"),
                    );
                    return None;
                }
                flags
            }
            None => vec![ctx.bool(n, "descending")?; by.len()],
        },
    };
    let nulls_last = f
        .take("nulls_last")
        .and_then(|n| ctx.bool(n, "nulls_last"))
        .unwrap_or(false);
    Some(Box::new(Sort {
        by,
        descending,
        nulls_last,
    }))
}

impl Step for Sort {
    /// Sorting sets the order (rows that tie come out in no set order either way).
    fn input_order_matters(&self, _input: usize) -> bool {
        false
    }

    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let ok = self
            .by
            .iter()
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
            .ok_or_else(|| RunError::internal("sort without input"))?;
        let names: Vec<&str> = self.by.iter().map(|c| c.name.as_str()).collect();
        let opts = SortMultipleOptions::default()
            .with_order_descending_multi(self.descending.clone())
            .with_nulls_last(self.nulls_last)
            .with_maintain_order(true);
        Ok(lf.sort(names, opts))
    }
}

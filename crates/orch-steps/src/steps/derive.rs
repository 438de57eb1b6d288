//! `derive`: adds or replaces columns computed from SQL expressions.
//!
//! ```yaml
//! - id: cleaned
//!   type: derive
//!   input: accounts
//!   columns:
//!     company_address: regexp_replace(company_address, '[\r\n]+', ' ')
//!     days_since_issue: date_diff_days(DATE '${as_of}', date_issued)
//! ```
//! Columns are computed in order, so a later column may use an earlier one. A replaced
//! column keeps its position; new columns are appended.

use crate::common::{fingerprint_of, ExprSrc};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_spec::{Ctx, Diagnostic, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::LazyFrame;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "derive",
    summary: "Add or replace columns computed from SQL expressions, in order.",
    arity: Arity::Exactly(1),
    example: "- id: with_days\n  type: derive\n  input: invoices\n  columns:\n    days_since_issue: date_diff_days(DATE '${as_of}', date_issued)\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Derive {
    pub columns: Vec<(String, ExprSrc)>,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let node = f.require("columns", ctx)?;
    let entries = ctx.entries(node, "columns")?;
    if entries.is_empty() {
        ctx.error(
            Diagnostic::error("`columns` is empty")
                .at(node.span)
                .hint("add `name: expression` lines"),
        );
        return None;
    }
    let mut columns = Vec::new();
    let mut ok = true;
    for (name, _span, v) in entries {
        match ExprSrc::decode(v, &format!("column `{name}`"), ctx) {
            Some(e) => columns.push((name, e)),
            None => ok = false,
        }
    }
    ok.then(|| Box::new(Derive { columns }) as Box<dyn Step>)
}

impl Step for Derive {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let mut out = inputs[0].clone();
        let mut ok = true;
        for (name, e) in &self.columns {
            match e.check(&out, diags) {
                Some(t) => out.upsert(name, t),
                None => ok = false,
            }
        }
        ok.then_some(out)
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
        let mut lf = inputs
            .pop()
            .ok_or_else(|| RunError::internal("derive without input"))?;
        let mut schema = schemas[0].clone();
        for (name, e) in &self.columns {
            let t = e
                .expr
                .check(&schema)
                .map_err(|_| RunError::internal("derive check failed after compile"))?;
            let pe = e
                .expr
                .to_polars(&schema)
                .map_err(|e| RunError::internal(e.message))?;
            lf = lf.with_column(pe.alias(name.as_str()));
            schema.upsert(name, t);
        }
        Ok(lf)
    }
}

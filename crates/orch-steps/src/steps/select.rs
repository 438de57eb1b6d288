//! `select`: picks, orders, drops and renames columns.
//!
//! ```yaml
//! - id: report
//!   type: select
//!   input: joined
//!   columns: [account_id, company_name, total]   # keep these, in this order
//!   drop: [internal_note]                          # or drop these
//!   rename: {total: total_amount}                  # then rename
//! ```
//! `columns` and `drop` may be combined (drop applies after the pick); `rename` applies last.

use crate::common::{fingerprint_of, missing_column, ColRef};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_spec::{Ctx, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::{col, LazyFrame};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "select",
    summary: "Pick and order columns, drop columns, rename columns.",
    arity: Arity::Exactly(1),
    example: "- id: report\n  type: select\n  input: joined\n  columns: [account_id, company_name]\n  rename: {company_name: name}\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Select {
    pub columns: Option<Vec<ColRef>>,
    pub drop: Vec<ColRef>,
    pub rename: Vec<Rename>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rename {
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub span: Span,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let columns = match f.take("columns") {
        Some(n) => Some(ColRef::list(n, "columns", ctx)?),
        None => None,
    };
    let drop = match f.take("drop") {
        Some(n) => ColRef::list(n, "drop", ctx)?,
        None => Vec::new(),
    };
    let mut rename = Vec::new();
    if let Some(n) = f.take("rename") {
        for (old, span, v) in ctx.entries(n, "rename")? {
            let new = ctx.string(v, &format!("rename of `{old}`"))?;
            rename.push(Rename {
                from: old,
                to: new,
                span,
            });
        }
    }
    if columns.is_none() && drop.is_empty() && rename.is_empty() {
        ctx.error(
            Diagnostic::error("a select step needs `columns`, `drop` or `rename`")
                .at(f.span())
                .hint("for example `columns: [a, b]`"),
        );
        return None;
    }
    Some(Box::new(Select {
        columns,
        drop,
        rename,
    }))
}

impl Select {
    /// Output column names paired with their source names.
    fn plan(
        &self,
        input: &Schema,
        diags: &mut Diagnostics,
    ) -> Option<(Schema, Vec<(String, String)>)> {
        let errors = diags.error_count();
        let mut picked: Vec<(String, orch_spec::DataType)> = match &self.columns {
            Some(cols) => {
                let mut v = Vec::new();
                for c in cols {
                    if let Some(t) = c.resolve(input, "the input", diags) {
                        if v.iter().any(|(n, _)| n == &c.name) {
                            diags.push(
                                Diagnostic::error(format!("column `{}` is listed twice", c.name))
                                    .at(c.span),
                            );
                        }
                        v.push((c.name.clone(), t.clone()));
                    }
                }
                v
            }
            None => input.fields().to_vec(),
        };
        let current: Schema = picked.iter().cloned().collect();
        for d in &self.drop {
            if current.contains(&d.name) {
                picked.retain(|(n, _)| n != &d.name);
            } else {
                diags.push(missing_column(
                    &d.name,
                    d.span,
                    &current,
                    "the columns to drop from",
                ));
            }
        }
        let mut out: Vec<(String, String, orch_spec::DataType)> =
            picked.into_iter().map(|(n, t)| (n.clone(), n, t)).collect();
        for Rename {
            from: old,
            to: new,
            span,
        } in &self.rename
        {
            match out.iter_mut().find(|(_, src, _)| src == old) {
                Some(slot) => slot.0 = new.clone(),
                None => {
                    let s: Schema = out.iter().map(|(n, _, t)| (n.clone(), t.clone())).collect();
                    diags.push(missing_column(old, *span, &s, "the columns to rename"));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (n, _, _) in &out {
            if !seen.insert(n.clone()) {
                diags.push(
                    Diagnostic::error(format!("two output columns are named `{n}`"))
                        .hint("rename one of them"),
                );
            }
        }
        if diags.error_count() > errors {
            return None;
        }
        let schema = out.iter().map(|(n, _, t)| (n.clone(), t.clone())).collect();
        let pairs = out.into_iter().map(|(n, s, _)| (n, s)).collect();
        Some((schema, pairs))
    }
}

impl Step for Select {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        self.plan(inputs[0], diags).map(|(s, _)| s)
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
            .ok_or_else(|| RunError::internal("select without input"))?;
        let (_, pairs) = self
            .plan(schemas[0], &mut Diagnostics::new())
            .ok_or_else(|| RunError::internal("select plan failed after compile"))?;
        let exprs: Vec<_> = pairs
            .iter()
            .map(|(out, src)| col(src.as_str()).alias(out.as_str()))
            .collect();
        Ok(lf.select(exprs))
    }
}

//! `union`: stacks inputs that have the same columns (matched by name, in the first
//! input's order; int64 and float64 widen to float64). Keeps duplicates (UNION ALL); add a
//! `distinct` step to remove them.
//!
//! ```yaml
//! - id: all_invoices
//!   type: union
//!   inputs: [invoices_2023, invoices_2024]
//! ```

use crate::common::fingerprint_of;
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_expr::to_polars_dtype;
use orch_spec::{Ctx, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::{col, concat, LazyFrame, UnionArgs};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "union",
    summary: "Stack inputs with the same columns (UNION ALL).",
    arity: Arity::AtLeast(2),
    example: "- id: all_invoices\n  type: union\n  inputs: [invoices_2023, invoices_2024]\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Union {
    #[serde(skip)]
    span: Span,
}

fn decode(decl: &StepDecl, _f: &mut Fields<'_>, _ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    Some(Box::new(Union { span: decl.ty_span }))
}

impl Step for Union {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let mut out = inputs[0].clone();
        let mut ok = true;
        for (i, s) in inputs.iter().enumerate().skip(1) {
            let mut first: Vec<&str> = out.names().collect();
            let mut other: Vec<&str> = s.names().collect();
            first.sort_unstable();
            other.sort_unstable();
            if first != other {
                let missing: Vec<&str> = first
                    .iter()
                    .filter(|n| !other.contains(n))
                    .copied()
                    .collect();
                let extra: Vec<&str> = other
                    .iter()
                    .filter(|n| !first.contains(n))
                    .copied()
                    .collect();
                diags.push(
                    Diagnostic::error(format!(
                        "input {} of the union has different columns: missing [{}], extra [{}]",
                        i + 1,
                        missing.join(", "),
                        extra.join(", ")
                    ))
                    .at(self.span)
                    .hint("make the inputs' columns match with `select` steps first"),
                );
                ok = false;
                continue;
            }
            for (name, t) in s.fields() {
                let cur = out.get(name).cloned().unwrap_or(t.clone());
                match cur.unify(t) {
                    Some(u) => out.upsert(name, u),
                    None => {
                        diags.push(
                            Diagnostic::error(format!(
                                "column `{name}` is {cur} in one input and {t} in input {}",
                                i + 1
                            ))
                            .at(self.span)
                            .hint("cast it to one type with a `derive` step"),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(out)
    }

    fn delta_rule(&self) -> DeltaRule {
        DeltaRule::Stack
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        inputs: Vec<LazyFrame>,
        schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let out = self
            .schema(schemas, &mut Diagnostics::new())
            .ok_or_else(|| RunError::internal("union schema failed after compile"))?;
        // Align every input to the output's column order and types before stacking.
        let exprs: Vec<_> = out
            .fields()
            .iter()
            .map(|(n, t)| col(n.as_str()).cast(to_polars_dtype(t)))
            .collect();
        let aligned: Vec<LazyFrame> = inputs
            .into_iter()
            .map(|lf| lf.select(exprs.clone()))
            .collect();
        let args = UnionArgs {
            parallel: true,
            rechunk: false,
            maintain_order: true,
            ..Default::default()
        };
        concat(aligned, args).map_err(|e| RunError::engine("stacking the union's inputs", e))
    }
}

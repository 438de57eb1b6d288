//! `sql`: a SQL query over the step's inputs, each visible as a table named by its step id.
//! For what the other steps cannot say. The query is SQL text, so it stays engine-neutral;
//! polars' SQL front end executes it today.
//!
//! ```yaml
//! - id: top_accounts
//!   type: sql
//!   inputs: [per_account]
//!   query: SELECT account_id, total FROM per_account WHERE total > 100 ORDER BY total DESC
//! ```

use crate::common::fingerprint_of;
use crate::error::RunError;
use crate::step::{Arity, Step, StepType};
use orch_expr::{from_polars_dtype, to_polars_dtype};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame};
use polars::sql::SQLContext;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "sql",
    summary: "A SQL query over the inputs, each a table named by its step id.",
    arity: Arity::AtLeast(1),
    example: "- id: big_accounts\n  type: sql\n  inputs: [per_account]\n  query: SELECT account_id, total FROM per_account WHERE total > 100\n",
    decode,
};

#[derive(Debug, Clone, Serialize)]
pub struct Sql {
    pub query: String,
    pub tables: Vec<String>,
    #[serde(skip)]
    span: Span,
}

fn decode(decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let node = f.require("query", ctx)?;
    let query = ctx.string(node, "query")?;
    let tables = decl.inputs.iter().map(|(n, _)| n.clone()).collect();
    Some(Box::new(Sql {
        query,
        tables,
        span: node.span,
    }))
}

impl Sql {
    fn run(&self, inputs: Vec<LazyFrame>) -> polars::prelude::PolarsResult<LazyFrame> {
        let mut ctx = SQLContext::new();
        for (name, lf) in self.tables.iter().zip(inputs) {
            ctx.register(name, lf);
        }
        ctx.execute(&self.query)
    }
}

impl Step for Sql {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        // Plan the query over empty tables of the right shape: this checks table and column
        // names and yields the output schema without reading any data.
        let empties: Vec<LazyFrame> = inputs
            .iter()
            .map(|s| {
                let schema: polars::prelude::Schema = s
                    .fields()
                    .iter()
                    .map(|(n, t)| {
                        polars::prelude::Field::new(n.as_str().into(), to_polars_dtype(t))
                    })
                    .collect();
                DataFrame::empty_with_schema(&schema).lazy()
            })
            .collect();
        let result = self.run(empties).and_then(|mut lf| lf.collect_schema());
        match result {
            Ok(s) => Some(
                s.iter()
                    .map(|(n, t)| {
                        (
                            n.to_string(),
                            from_polars_dtype(t).unwrap_or(DataType::String),
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!("the SQL query does not compile: {e}"))
                        .at(self.span)
                        .hint(format!("tables available: {}", self.tables.join(", "))),
                );
                None
            }
        }
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        inputs: Vec<LazyFrame>,
        _schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        self.run(inputs)
            .map_err(|e| RunError::engine("running the SQL query", e))
    }
}

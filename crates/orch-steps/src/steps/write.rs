//! `write`: writes its input to Parquet or CSV, atomically (temporary file, fsync, rename).
//! In CSV, dates are ISO `yyyy-mm-dd` and list columns are joined into one text field with
//! `list_separator` (default `,`).
//!
//! ```yaml
//! - id: write_csv
//!   type: write
//!   input: report
//!   path: ${output_dir}/report.csv
//! ```

use crate::common::fingerprint_of;
use crate::error::RunError;
use crate::step::{Arity, Role, Step, StepType};
use crate::storage::{stage, Location, Staged};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::*;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "write",
    summary: "Write the input to Parquet or CSV, atomically (temporary name, then rename).",
    arity: Arity::Exactly(1),
    example:
        "- id: write_report\n  type: write\n  input: report\n  path: ${output_dir}/report.parquet\n",
    decode,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, Serialize)]
pub struct Write {
    pub path: String,
    pub format: Format,
    pub delimiter: char,
    pub header: bool,
    pub list_separator: String,
    #[serde(skip)]
    span: Span,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let node = f.require("path", ctx)?;
    let path = ctx.string(node, "path")?;
    let loc = match Location::parse(&path) {
        Ok(l) => l,
        Err(why) => {
            ctx.error(Diagnostic::error(format!("`path`: {why}")).at(node.span));
            return None;
        }
    };
    let format = match f.take("format") {
        Some(n) => match ctx.choice(n, "format", &["csv", "parquet"])?.as_str() {
            "csv" => Format::Csv,
            _ => Format::Parquet,
        },
        None => match loc.extension().as_deref() {
            Some("csv") => Format::Csv,
            Some("parquet") | Some("pq") => Format::Parquet,
            _ => {
                ctx.error(
                    Diagnostic::error("cannot tell the output format from the path")
                        .at(node.span)
                        .hint("end the path with .csv or .parquet, or add `format: csv|parquet`"),
                );
                return None;
            }
        },
    };
    let delimiter = match f.take("delimiter") {
        Some(n) => {
            let s = ctx.string(n, "delimiter")?;
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(ch), None) if ch.is_ascii() => ch,
                _ => {
                    ctx.error(
                        Diagnostic::error("`delimiter` must be one ASCII character").at(n.span),
                    );
                    return None;
                }
            }
        }
        None => ',',
    };
    let header = f
        .take("header")
        .and_then(|n| ctx.bool(n, "header"))
        .unwrap_or(true);
    let list_separator = f
        .take("list_separator")
        .and_then(|n| ctx.string(n, "list_separator"))
        .unwrap_or_else(|| ",".to_string());
    Some(Box::new(Write {
        path,
        format,
        delimiter,
        header,
        list_separator,
        span: node.span,
    }))
}

impl Write {
    pub fn location(&self) -> Result<Location, RunError> {
        Location::parse(&self.path).map_err(|e| RunError::user(e, None))
    }
}

impl Step for Write {
    fn role(&self) -> Role {
        Role::Sink
    }

    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        if self.format == Format::Csv {
            for (name, t) in inputs[0].fields() {
                if let DataType::List(inner) = t {
                    if matches!(**inner, DataType::List(_)) {
                        diags.push(
                            Diagnostic::error(format!(
                                "column `{name}` is a nested list, which CSV cannot hold"
                            ))
                            .at(self.span)
                            .hint("write Parquet, or flatten the column first"),
                        );
                    }
                }
            }
        }
        Some(inputs[0].clone())
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        mut inputs: Vec<LazyFrame>,
        _schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        inputs
            .pop()
            .ok_or_else(|| RunError::internal("write without input"))
    }

    fn write(&self, df: &mut DataFrame) -> Result<Vec<Staged>, RunError> {
        let loc = self.location()?;
        let target = loc.local_path().to_path_buf();
        let shown = loc.display();
        let staged = match self.format {
            Format::Parquet => stage(&target, |file| {
                crate::parquet_out::write_parquet(df, file)
                    .map_err(|e| RunError::engine(format!("writing `{shown}`"), e))
            })?,
            Format::Csv => {
                let mut flat = csv_ready(df, &self.list_separator)
                    .map_err(|e| RunError::engine(format!("preparing `{shown}`"), e))?;
                stage(&target, |file| {
                    CsvWriter::new(file)
                        .include_header(self.header)
                        .with_separator(self.delimiter as u8)
                        .finish(&mut flat)
                        .map_err(|e| RunError::engine(format!("writing `{shown}`"), e))
                })?
            }
        };
        Ok(vec![staged])
    }
}

/// Joins list columns into text so that CSV can hold them.
fn csv_ready(df: &DataFrame, sep: &str) -> PolarsResult<DataFrame> {
    let has_list = df
        .columns()
        .iter()
        .any(|c| matches!(c.dtype(), polars::prelude::DataType::List(_)));
    if !has_list {
        return Ok(df.clone());
    }
    let exprs: Vec<Expr> = df
        .columns()
        .iter()
        .map(|c| {
            let e = col(c.name().as_str());
            match c.dtype() {
                polars::prelude::DataType::List(_) => e
                    .cast(polars::prelude::DataType::List(Box::new(
                        polars::prelude::DataType::String,
                    )))
                    .list()
                    .join(lit(sep), true),
                _ => e,
            }
        })
        .collect();
    df.clone().lazy().select(exprs).collect()
}

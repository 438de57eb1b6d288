//! `load`: reads a CSV or Parquet file, with an optional declared schema.
//!
//! ```yaml
//! - id: accounts
//!   type: load
//!   path: ${input_dir}/accounts.csv
//!   schema:
//!     account_id: int64
//!     company_name: string
//!     joining_date: {type: date, format: d/m/yyyy}
//! ```

use crate::common::{fingerprint_of, missing_column};
use crate::error::RunError;
use crate::step::{Arity, Role, Step, StepType};
use crate::storage::Location;
use orch_expr::{datefmt, from_polars_dtype, to_polars_dtype};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::*;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "load",
    summary: "Read a CSV or Parquet file (header, delimiter, quoting with multi-line fields, declared schema with date formats).",
    arity: Arity::None,
    example: "- id: invoices\n  type: load\n  path: ${input_dir}/invoices.csv\n  schema:\n    invoice_id: int64\n    account_id: int64\n    date_issued: date\n",
    decode,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Parquet,
}

/// One declared column: its type and, for dates, the format of the text.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDecl {
    pub name: String,
    pub dtype: DataType,
    /// strftime format for `date`/`datetime` columns stored as text in a non-ISO layout.
    pub format: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub path: String,
    pub format: Format,
    pub header: bool,
    pub delimiter: char,
    pub quote: Option<char>,
    pub null_values: Vec<String>,
    pub schema: Option<Vec<ColumnDecl>>,
    #[serde(skip)]
    pub path_span: Span,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let path_node = f.require("path", ctx);
    let path = path_node.and_then(|n| ctx.string(n, "path"));
    let path_span = path_node.map_or(f.span(), |n| n.span);
    if let Some(p) = &path {
        if let Err(why) = Location::parse(p) {
            ctx.error(Diagnostic::error(format!("`path`: {why}")).at(path_span));
        }
    }
    let format = match f.take("format") {
        Some(n) => ctx
            .choice(n, "format", &["csv", "parquet"])
            .map(|s| match s.as_str() {
                "parquet" => Format::Parquet,
                _ => Format::Csv,
            }),
        None => match path
            .as_deref()
            .and_then(|p| Location::parse(p).ok())
            .and_then(|l| l.extension())
        {
            Some(e) if e == "parquet" || e == "pq" => Some(Format::Parquet),
            Some(e) if e == "csv" || e == "tsv" || e == "txt" => Some(Format::Csv),
            _ => {
                if path.is_some() {
                    ctx.error(
                        Diagnostic::error("cannot tell the file format from the path")
                            .at(path_span)
                            .hint("add `format: csv` or `format: parquet`"),
                    );
                }
                None
            }
        },
    };
    let header = f
        .take("header")
        .and_then(|n| ctx.bool(n, "header"))
        .unwrap_or(true);
    let delimiter = single_char(f.take("delimiter"), "delimiter", ',', ctx);
    let quote = match f.take("quote") {
        Some(n) if n.is_null() => None,
        n => Some(single_char(n, "quote", '"', ctx)),
    };
    let null_values = f
        .take("null_values")
        .and_then(|n| ctx.strings(n, "null_values"))
        .map(|v| v.into_iter().map(|(s, _)| s).collect())
        .unwrap_or_default();
    let schema = f.take("schema").and_then(|n| decode_schema(n, ctx));
    Some(Box::new(Load {
        path: path?,
        format: format?,
        header,
        delimiter,
        quote,
        null_values,
        schema,
        path_span,
    }))
}

fn single_char(
    node: Option<&orch_spec::Node>,
    what: &str,
    default: char,
    ctx: &mut Ctx<'_>,
) -> char {
    let Some(n) = node else { return default };
    let Some(s) = ctx.string(n, what) else {
        return default;
    };
    let s = if s == "\\t" { "\t".to_string() } else { s };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => c,
        _ => {
            ctx.error(
                Diagnostic::error(format!(
                    "`{what}` must be a single ASCII character, got `{s}`"
                ))
                .at(n.span)
                .hint(format!("for example `{what}: \"{default}\"`")),
            );
            default
        }
    }
}

fn decode_schema(node: &orch_spec::Node, ctx: &mut Ctx<'_>) -> Option<Vec<ColumnDecl>> {
    let entries = ctx.entries(node, "schema")?;
    let mut cols = Vec::new();
    for (name, span, v) in entries {
        let (type_node, format_node) = if v.as_map().is_some() {
            let mut cf = Fields::new(v, format!("column `{name}`"), ctx)?;
            let t = cf.require("type", ctx);
            let fmt = cf.take("format");
            cf.finish(ctx);
            (t, fmt)
        } else {
            (Some(v), None)
        };
        let Some(type_node) = type_node else { continue };
        let Some(tname) = ctx.string(type_node, "type") else {
            continue;
        };
        let Some(dtype) = DataType::parse(&tname) else {
            ctx.error(
                Diagnostic::error(format!("unknown type `{tname}` for column `{name}`"))
                    .at(type_node.span)
                    .maybe_hint(orch_spec::suggest::hint(
                        &tname,
                        DataType::NAMES.iter().copied(),
                    ))
                    .hint(format!("types are: {}", DataType::NAMES.join(", "))),
            );
            continue;
        };
        let mut format = None;
        if let Some(fnode) = format_node {
            if !dtype.is_temporal() {
                ctx.error(
                    Diagnostic::error(format!(
                        "`format` applies to date and datetime columns, not {dtype}"
                    ))
                    .at(fnode.span),
                );
            } else if let Some(text) = ctx.string(fnode, "format") {
                match datefmt::to_strftime(&text) {
                    // The fast parser reads unpadded days/months with the padded directives.
                    Ok(f) => format = Some(datefmt::for_parsing(&f)),
                    Err(e) => ctx.error(
                        Diagnostic::error(format!("bad date format `{text}`: {}", e.message))
                            .at(fnode.span)
                            .hint("use a pattern such as d/m/yyyy or a strftime format such as %d/%m/%Y"),
                    ),
                }
            }
        }
        cols.push(ColumnDecl {
            name,
            dtype,
            format,
            span,
        });
    }
    Some(cols)
}

impl Load {
    fn local_path(&self) -> String {
        Location::parse(&self.path)
            .map(|l| l.display())
            .unwrap_or_else(|_| self.path.clone())
    }

    /// The raw scan: declared columns typed for the reader (dates with a custom format are
    /// read as text and parsed afterwards).
    fn scan(&self, reader_types: Option<&[ColumnDecl]>) -> Result<LazyFrame, RunError> {
        let path = self.local_path();
        if !std::path::Path::new(&path).exists() {
            return Err(RunError::user(
                format!("input file `{path}` not found"),
                Some("check `path` and the `input_dir` param (`--param input_dir=...`)".into()),
            ));
        }
        let pl_path = PlRefPath::new(path.as_str());
        match self.format {
            Format::Parquet => LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
                .map_err(|e| RunError::engine(format!("reading `{path}`"), e)),
            Format::Csv => {
                let mut r = LazyCsvReader::new(pl_path)
                    .with_has_header(self.header)
                    .with_separator(self.delimiter as u8)
                    .with_quote_char(self.quote.map(|c| c as u8))
                    .with_infer_schema_length(Some(1000))
                    .with_raise_if_empty(false);
                if !self.null_values.is_empty() {
                    r = r.with_null_values(Some(NullValues::AllColumns(
                        self.null_values.iter().map(|s| s.as_str().into()).collect(),
                    )));
                }
                if let Some(cols) = reader_types {
                    let overrides: polars::prelude::Schema = cols
                        .iter()
                        .map(|c| {
                            let t = if c.format.is_some() {
                                DataType::String
                            } else {
                                c.dtype.clone()
                            };
                            Field::new(c.name.as_str().into(), to_polars_dtype(&t))
                        })
                        .collect();
                    r = r.with_dtype_overwrite(Some(Arc::new(overrides)));
                }
                r.finish()
                    .map_err(|e| RunError::engine(format!("reading `{path}`"), e))
            }
        }
    }

    /// Infers the file's schema (used when no schema is declared).
    fn infer(&self) -> Result<Schema, RunError> {
        let mut lf = self.scan(None)?;
        let s = lf.collect_schema().map_err(|e| {
            RunError::engine(format!("reading the header of `{}`", self.local_path()), e)
        })?;
        Ok(s.iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    from_polars_dtype(t).unwrap_or(DataType::String),
                )
            })
            .collect())
    }
}

impl Step for Load {
    fn role(&self) -> Role {
        Role::Source
    }

    fn schema(&self, _inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        if let Some(cols) = &self.schema {
            let mut seen = std::collections::HashSet::new();
            for c in cols {
                if !seen.insert(c.name.as_str()) {
                    diags.push(
                        Diagnostic::error(format!("column `{}` is declared twice", c.name))
                            .at(c.span),
                    );
                }
            }
            return Some(
                cols.iter()
                    .map(|c| (c.name.clone(), c.dtype.clone()))
                    .collect(),
            );
        }
        // No declared schema: the file itself tells, so it must exist at compile time.
        match self.infer() {
            Ok(s) => Some(s),
            Err(e) => {
                diags.push(
                    Diagnostic::error(format!("cannot infer the schema of `{}`: {e}", self.path))
                        .at(self.path_span)
                        .hint("declare the columns under `schema:`, or check the path"),
                );
                None
            }
        }
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn reads(&self) -> Vec<String> {
        vec![self.local_path()]
    }

    fn to_polars(
        &self,
        _inputs: Vec<LazyFrame>,
        _schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let Some(cols) = &self.schema else {
            return self.scan(None);
        };
        let mut lf = self.scan(Some(cols))?;
        // Check the declared columns against the file's header before any data is read.
        let file_schema = lf.collect_schema().map_err(|e| {
            RunError::engine(format!("reading the header of `{}`", self.local_path()), e)
        })?;
        let file_cols: Schema = file_schema
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    from_polars_dtype(t).unwrap_or(DataType::String),
                )
            })
            .collect();
        for c in cols {
            if !file_cols.contains(&c.name) {
                let d = missing_column(
                    &c.name,
                    c.span,
                    &file_cols,
                    &format!("the header of `{}`", self.local_path()),
                );
                return Err(RunError::user(d.message.clone(), Some(d.hints.join("; "))));
            }
        }
        let exprs: Vec<Expr> = cols
            .iter()
            .map(|c| {
                let e = col(c.name.as_str());
                match (&c.format, &c.dtype) {
                    (Some(fmt), DataType::Date) => e.str().to_date(StrptimeOptions {
                        format: Some(fmt.as_str().into()),
                        strict: true,
                        exact: true,
                        cache: true,
                    }),
                    (Some(fmt), DataType::Datetime) => e.str().to_datetime(
                        Some(TimeUnit::Microseconds),
                        None,
                        StrptimeOptions {
                            format: Some(fmt.as_str().into()),
                            strict: true,
                            exact: true,
                            cache: true,
                        },
                        lit("raise"),
                    ),
                    _ => e,
                }
            })
            .collect();
        Ok(lf.select(exprs))
    }
}

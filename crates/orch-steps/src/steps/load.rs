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
//!
//! CSV rows that do not fit the schema (a value that does not parse, a wrong number of
//! fields, an unterminated quote, non-UTF-8 bytes) stop the run with the file, line, column
//! and value (`on_bad_rows: fail`), or are dropped and counted (`skip`) or written aside with
//! their reason (`quarantine`). See the section "CSV reading with bad-row handling" below and
//! docs/bad_input.md.

use crate::common::{fingerprint_of, missing_column};
use crate::error::RunError;
use crate::step::{Arity, IncrementalSource, Role, Step, StepType};
use crate::storage::{Location, Staged};
use orch_expr::{datefmt, from_polars_dtype, to_polars_dtype};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::*;
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "load",
    summary: "Read a CSV or Parquet file, or a folder or glob of them (header, delimiter, quoting with multi-line fields, declared schema with date formats; rows that do not fit: `on_bad_rows: fail | skip | quarantine`; `incremental: append | files | {column: c}`).",
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

/// `incremental:` of a load: how a rerun finds what is new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Incremental {
    /// `append`: the file only grows; reruns read only the bytes after the last read.
    Append,
    /// `files`: `path` is a folder or glob; reruns read only the files not read before.
    Files,
    /// `{column: c}`: reruns keep only the rows whose `c` is above the largest `c` read before.
    Column(String),
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
    /// How reruns find new rows (`None`: the source is read in full when it changed).
    pub incremental: Option<Incremental>,
    /// CSV rows that do not fit the schema: stop, drop and count, or set aside.
    #[serde(skip_serializing_if = "OnBadRows::is_fail")]
    pub on_bad_rows: OnBadRows,
    /// Where `on_bad_rows: quarantine` writes the bad rows (default
    /// `${output_dir}/quarantine/<step>.csv`, resolved when the pipeline is compiled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_path: Option<String>,
    /// The step id, for messages.
    #[serde(skip)]
    pub id: String,
    /// What the last read set aside (skipped or quarantined rows): reported by `validate`.
    #[serde(skip)]
    pub findings: Arc<std::sync::Mutex<Vec<String>>>,
    /// The quarantine file of the last read, staged: committed with the run's outputs (see
    /// [`Step::take_staged`]), so a run that fails later leaves the previous one in place.
    #[serde(skip)]
    pub quarantine: Arc<std::sync::Mutex<Vec<Staged>>>,
    #[serde(skip)]
    pub path_span: Span,
    /// When this load parses a piece of a larger file (an appended tail saved on its own):
    /// the file to name in messages, and how many lines come before the piece there.
    #[serde(skip)]
    pub origin: Option<(String, u64)>,
}

/// What a CSV `load` does with a row that does not fit the declared schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRows {
    /// Stop the run with the file, line, column, value and a hint.
    #[default]
    Fail,
    /// Drop the row, count it and report the count.
    Skip,
    /// Drop the row and write it, with the reason, to `quarantine_path`.
    Quarantine,
}

impl OnBadRows {
    pub fn is_fail(&self) -> bool {
        *self == OnBadRows::Fail
    }
}

fn decode(decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
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
    let many = path
        .as_deref()
        .and_then(|p| Location::parse(p).ok())
        .is_some_and(|l| l.is_many());
    let incremental = f
        .take("incremental")
        .and_then(|n| decode_incremental(n, header, format, many, schema.as_deref(), ctx));
    let (on_bad_rows, quarantine_path) = decode_bad_rows(decl, f, ctx, format);
    Some(Box::new(Load {
        path: path?,
        format: format?,
        header,
        delimiter,
        quote,
        null_values,
        schema,
        incremental,
        on_bad_rows,
        quarantine_path,
        id: decl.id.clone(),
        findings: Arc::default(),
        quarantine: Arc::default(),
        path_span,
        origin: None,
    }))
}

/// `incremental: append | files | {column: c}`, checked against the path and format.
fn decode_incremental(
    n: &orch_spec::Node,
    header: bool,
    format: Option<Format>,
    many: bool,
    schema: Option<&[ColumnDecl]>,
    ctx: &mut Ctx<'_>,
) -> Option<Incremental> {
    let modes = "`incremental: append` (a file that only grows), `incremental: files` (a folder or glob of daily drops) or `incremental: {column: <name>}` (rows above a high-water mark)";
    if n.as_map().is_some() {
        let mut f = Fields::new(n, "`incremental`", ctx)?;
        let column = f
            .require("column", ctx)
            .and_then(|c| ctx.string(c, "incremental.column"));
        f.finish(ctx);
        let column = column?;
        if let Some(cols) = schema {
            if let Some(c) = cols.iter().find(|c| c.name == column) {
                if matches!(c.dtype, DataType::Bool | DataType::List(_)) {
                    ctx.error(
                        Diagnostic::error(format!(
                            "`incremental.column`: `{column}` is {}; a high-water mark needs an ordered column",
                            c.dtype
                        ))
                        .at(n.span)
                        .hint("use an increasing id, a date or a timestamp"),
                    );
                }
            } else {
                let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
                ctx.error(
                    Diagnostic::error(format!(
                        "`incremental.column`: column `{column}` is not in the schema"
                    ))
                    .at(n.span)
                    .maybe_hint(orch_spec::suggest::hint(&column, names.iter().copied()))
                    .hint(format!("declared columns are: {}", names.join(", "))),
                );
            }
        }
        return Some(Incremental::Column(column));
    }
    if n.as_scalar() == Some("column") {
        ctx.error(
            Diagnostic::error("`incremental: column` needs the column's name")
                .at(n.span)
                .hint("write `incremental: {column: <name>}`, for example `incremental: {column: invoice_id}`"),
        );
        return None;
    }
    let mode = ctx.string(n, "incremental")?;
    match mode.as_str() {
        "append" => {
            if !header || format != Some(Format::Csv) {
                ctx.error(
                    Diagnostic::error("`incremental: append` needs a CSV file with a header")
                        .at(n.span)
                        .hint("remove `incremental`, or read a CSV with `header: true`"),
                );
            } else if many {
                ctx.error(
                    Diagnostic::error("`incremental: append` reads one growing file, but `path` names several files")
                        .at(n.span)
                        .hint("for a folder or glob of daily drops use `incremental: files`"),
                );
            }
            Some(Incremental::Append)
        }
        "files" => {
            if !many {
                ctx.error(
                    Diagnostic::error("`incremental: files` needs `path` to name a folder or a glob")
                        .at(n.span)
                        .hint("for example `path: ${input_dir}/invoices/*.csv`; for one growing file use `incremental: append`"),
                );
            }
            Some(Incremental::Files)
        }
        other => {
            ctx.error(
                Diagnostic::error(format!("`incremental` has the unknown value `{other}`"))
                    .at(n.span)
                    .maybe_hint(orch_spec::suggest::hint(other, ["append", "files"]))
                    .hint(format!("use {modes}")),
            );
            None
        }
    }
}

/// `on_bad_rows: fail | skip | quarantine` and `quarantine_path` (default
/// `${output_dir}/quarantine/<step id>.csv`).
fn decode_bad_rows(
    decl: &StepDecl,
    f: &mut Fields<'_>,
    ctx: &mut Ctx<'_>,
    format: Option<Format>,
) -> (OnBadRows, Option<String>) {
    let node = f.take("on_bad_rows");
    let policy = node
        .and_then(|n| ctx.choice(n, "on_bad_rows", &["fail", "skip", "quarantine"]))
        .map_or(OnBadRows::Fail, |s| match s.as_str() {
            "skip" => OnBadRows::Skip,
            "quarantine" => OnBadRows::Quarantine,
            _ => OnBadRows::Fail,
        });
    if let (Some(n), Some(Format::Parquet)) = (node, format) {
        if !policy.is_fail() {
            ctx.error(
                Diagnostic::error("`on_bad_rows` applies to CSV files; Parquet files are typed")
                    .at(n.span)
                    .hint("remove `on_bad_rows`"),
            );
        }
    }
    let qnode = f.take("quarantine_path");
    let qpath = match (policy, qnode) {
        (OnBadRows::Quarantine, Some(n)) => {
            let p = ctx.string(n, "quarantine_path");
            if let Some(Err(why)) = p.as_deref().map(Location::parse) {
                ctx.error(Diagnostic::error(format!("`quarantine_path`: {why}")).at(n.span));
            }
            p
        }
        (OnBadRows::Quarantine, None) => {
            let dir = ctx.params.get("output_dir").unwrap_or("output");
            Some(
                std::path::Path::new(dir)
                    .join("quarantine")
                    .join(format!("{}.csv", decl.id))
                    .display()
                    .to_string(),
            )
        }
        (_, Some(n)) => {
            ctx.error(
                Diagnostic::error("`quarantine_path` is only used with `on_bad_rows: quarantine`")
                    .at(n.span)
                    .hint("add `on_bad_rows: quarantine`, or remove `quarantine_path`"),
            );
            None
        }
        (_, None) => None,
    };
    (policy, qpath)
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
        if std::path::Path::new(&path).is_dir() {
            return Err(RunError::user(
                format!("input file `{path}` is a folder"),
                Some("`path` must name a file".into()),
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

    fn location(&self) -> Option<Location> {
        Location::parse(&self.path).ok()
    }

    /// Whether `path` names a folder or a glob (several files) rather than one file.
    fn is_many(&self) -> bool {
        self.location().is_some_and(|l| l.is_many())
    }

    /// The files `path` names now, sorted.
    fn files(&self) -> Result<Vec<String>, RunError> {
        match self.location() {
            Some(l) => l.list(),
            None => Ok(vec![self.local_path()]),
        }
    }

    /// This load, reading one file of its folder or glob (or an appended tail). Each file
    /// of a folder or glob quarantines its bad rows into a file of its own, named like it,
    /// in a folder named like the step's quarantine file (`quarantine/<step>/<file>`).
    fn one_file(&self, path: &str) -> Load {
        let quarantine_path = match (&self.quarantine_path, self.is_many()) {
            (Some(q), true) => {
                let q = std::path::Path::new(q);
                let name = std::path::Path::new(path).file_name().unwrap_or_default();
                Some(q.with_extension("").join(name).display().to_string())
            }
            (q, _) => q.clone(),
        };
        Load {
            path: path.to_string(),
            incremental: None,
            quarantine_path,
            ..self.clone()
        }
    }

    /// Several files: each read with this step's options, stacked in name order.
    fn read_many(&self) -> Result<LazyFrame, RunError> {
        let files = self.files()?;
        if files.is_empty() {
            let Some(cols) = &self.schema else {
                return Err(RunError::user(
                    format!("no file matches `{}`", self.local_path()),
                    Some("check `path`, or declare `schema:` so that an empty folder reads as an empty table".into()),
                ));
            };
            return Ok(DataFrame::empty_with_schema(&output_schema(cols)).lazy());
        }
        let parts = files
            .iter()
            .map(|f| self.one_file(f).to_polars(Vec::new(), &[]))
            .collect::<Result<Vec<_>, _>>()?;
        concat(parts, UnionArgs::default())
            .map_err(|e| RunError::engine(format!("stacking the files of `{}`", self.path), e))
    }

    /// Infers the file's schema (used when no schema is declared); for several files, the
    /// first one's.
    fn infer(&self) -> Result<Schema, RunError> {
        if self.is_many() {
            let first = self.files()?.into_iter().next().ok_or_else(|| {
                RunError::user(format!("no file matches `{}`", self.local_path()), None)
            })?;
            return self.one_file(&first).infer();
        }
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
        // A folder that cannot be listed reads as no files; the run reports why.
        self.files().unwrap_or_default()
    }

    /// With `on_bad_rows: skip | quarantine` the load is materialised on its own, so that
    /// [`Step::validate`] can report how many rows were set aside (as run warnings).
    fn must_materialize(&self) -> bool {
        self.format == Format::Csv && !self.on_bad_rows.is_fail()
    }

    fn validate(&self, _df: &DataFrame) -> Result<Vec<String>, RunError> {
        Ok(self
            .findings
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default())
    }

    fn take_staged(&self) -> Vec<Staged> {
        self.quarantine
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }

    fn incremental(&self) -> Option<IncrementalSource> {
        Some(match self.incremental.as_ref()? {
            Incremental::Append => IncrementalSource::Append {
                path: self.local_path(),
            },
            // Cheap on purpose (the engine asks often): the folder is listed by `reads`.
            Incremental::Files => IncrementalSource::Files {
                pattern: self.local_path(),
            },
            Incremental::Column(c) => IncrementalSource::Column {
                pattern: self.local_path(),
                column: c.clone(),
            },
        })
    }

    fn read_other(&self, path: &str, origin: Option<(&str, u64)>) -> Result<LazyFrame, RunError> {
        let mut one = self.one_file(path);
        one.origin = origin.map(|(f, n)| (f.to_string(), n));
        one.to_polars(Vec::new(), &[])
    }

    fn to_polars(
        &self,
        _inputs: Vec<LazyFrame>,
        _schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        if self.is_many() {
            return self.read_many();
        }
        if self.format == Format::Csv {
            return self.csv_plan();
        }
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

// ---------------------------------------------------------------------------------------------
// CSV reading with bad-row handling.
//
// The happy path is polars' parallel CSV reader with the declared types, wrapped in an
// `AnonymousScan`: the step itself sees the reader's outcome (in a fused plan a parse error
// would otherwise surface as a bare polars message, without the file). Only when the reader
// fails, or when the file's last column holds NULLs (the one symptom of a row with too few
// fields or a blank line, which polars pads with NULLs silently), is the file walked again
// byte by byte to find each bad row with its physical line number. With `on_bad_rows: skip`
// or `quarantine`, that slow path also builds the good rows.
// ---------------------------------------------------------------------------------------------

/// A bad-input error raised inside a polars plan. It travels through polars as an I/O error
/// so that it keeps its message and hint; [`bad_input_error`] finds it again.
#[derive(Debug, Clone)]
pub struct BadInputError {
    /// The `load` step that read the file.
    pub step: String,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for BadInputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BadInputError {}

impl BadInputError {
    fn into_polars(self) -> PolarsError {
        PolarsError::IO {
            error: Arc::new(std::io::Error::other(self)),
            msg: None,
        }
    }
}

/// The bad-input error a `load` raised inside a polars plan, if `e` carries one.
pub fn bad_input_error(e: &PolarsError) -> Option<&BadInputError> {
    match e {
        PolarsError::IO { error, .. } => error.get_ref()?.downcast_ref::<BadInputError>(),
        PolarsError::Context { error, .. } | PolarsError::ExprContext { error, .. } => {
            bad_input_error(error)
        }
        _ => None,
    }
}

/// `RunError::User` (message and hint apart) for a polars error that carries a
/// [`BadInputError`], with the id of the `load` step that found it.
pub fn user_error(e: &PolarsError) -> Option<(String, RunError)> {
    bad_input_error(e).map(|b| {
        (
            b.step.clone(),
            RunError::user(b.message.clone(), b.hint.clone()),
        )
    })
}

/// The reader's type for a declared column: dates with a custom format are read as text
/// and parsed afterwards.
fn reader_dtype(c: &ColumnDecl) -> polars::prelude::DataType {
    if c.format.is_some() {
        polars::prelude::DataType::String
    } else {
        to_polars_dtype(&c.dtype)
    }
}

/// The declared column as the step outputs it (custom-format dates parsed).
fn convert(c: &ColumnDecl, source: Expr, strict: bool) -> Expr {
    let opts = |fmt: &str| StrptimeOptions {
        format: Some(fmt.into()),
        strict,
        exact: true,
        cache: true,
    };
    match (&c.format, &c.dtype) {
        (Some(fmt), DataType::Date) => source.str().to_date(opts(fmt)),
        (Some(fmt), DataType::Datetime) => {
            source
                .str()
                .to_datetime(Some(TimeUnit::Microseconds), None, opts(fmt), lit("raise"))
        }
        _ => source,
    }
    .alias(c.name.as_str())
}

impl Load {
    /// The CSV plan: an anonymous scan around the fast reader (see the section comment).
    fn csv_plan(&self) -> Result<LazyFrame, RunError> {
        let path = self.local_path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RunError::user(
                    format!("input file `{path}` not found"),
                    Some("check `path` and the `input_dir` param (`--param input_dir=...`)".into()),
                ))
            }
            Err(e) => return Err(RunError::io(&path, e)),
        };
        if meta.is_dir() {
            return Err(RunError::user(
                format!("input file `{path}` is a folder"),
                Some("`path` must name a file".into()),
            ));
        }
        if meta.len() == 0 {
            let Some(cols) = &self.schema else {
                return Err(RunError::user(
                    format!("input file `{path}` is empty (0 bytes): there is no header to read the columns from"),
                    Some("declare the columns under `schema:`, or check the file".into()),
                ));
            };
            // An empty extract is not an error: 0 rows (a `check` step with `row_count`
            // can insist on rows).
            tracing::warn!(step = %self.id, "input file `{path}` is empty (0 bytes): read as 0 rows");
            let schema = output_schema(cols);
            return Ok(DataFrame::empty_with_schema(&schema).lazy());
        }
        let mut lf = self.scan(None)?;
        let file_schema = lf
            .collect_schema()
            .map_err(|e| RunError::engine(format!("reading the header of `{path}`"), e))?;
        let file_cols: Schema = file_schema
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    from_polars_dtype(t).unwrap_or(DataType::String),
                )
            })
            .collect();
        // Only a byte-order mark or blank lines: as empty as a 0-byte file.
        if file_cols.is_empty() {
            if let Some(cols) = &self.schema {
                tracing::warn!(step = %self.id, "input file `{path}` has no header line (only blank lines or a byte-order mark): read as 0 rows");
                return Ok(DataFrame::empty_with_schema(&output_schema(cols)).lazy());
            }
        }
        let columns: Vec<ColumnDecl> = match &self.schema {
            Some(cols) => {
                for c in cols {
                    if !file_cols.contains(&c.name) {
                        if let Some(e) = bare_cr_line_breaks(&path) {
                            return Err(e);
                        }
                        let d = missing_column(
                            &c.name,
                            c.span,
                            &file_cols,
                            &format!("the header of `{path}`"),
                        );
                        return Err(RunError::user(d.message.clone(), Some(d.hints.join("; "))));
                    }
                }
                cols.clone()
            }
            None => file_cols
                .fields()
                .iter()
                .map(|(n, t)| ColumnDecl {
                    name: n.clone(),
                    dtype: t.clone(),
                    format: None,
                    span: Span::default(),
                })
                .collect(),
        };
        let schema = output_schema(&columns);
        let (shown, line_offset) = self.origin.clone().unwrap_or_else(|| (path.clone(), 0));
        let scan = CsvScan {
            load: self.clone(),
            path: path.clone(),
            shown,
            line_offset,
            file_columns: file_cols.names().map(str::to_string).collect(),
            columns,
        };
        LazyFrame::anonymous_scan(
            Arc::new(scan),
            ScanArgsAnonymous {
                schema: Some(Arc::new(schema)),
                name: "csv",
                ..Default::default()
            },
        )
        .map_err(|e| RunError::engine(format!("reading `{path}`"), e))
    }
}

fn output_schema(cols: &[ColumnDecl]) -> polars::prelude::Schema {
    cols.iter()
        .map(|c| Field::new(c.name.as_str().into(), to_polars_dtype(&c.dtype)))
        .collect()
}

/// One CSV file read with the declared columns; see the section comment.
struct CsvScan {
    load: Load,
    path: String,
    /// The file named in messages (`path` itself, or the file an appended tail came from).
    shown: String,
    /// Lines before `path`'s first line in `shown` (0 unless a tail), added to line numbers.
    line_offset: u64,
    /// The declared columns (or, without a schema, every column with its inferred type).
    columns: Vec<ColumnDecl>,
    /// The file's columns, in file order.
    file_columns: Vec<String>,
}

impl AnonymousScan for CsvScan {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn scan(&self, args: AnonymousScanArgs) -> PolarsResult<DataFrame> {
        let df = self.read()?;
        let mut df = match &args.with_columns {
            Some(names) => df.select(names.iter().cloned())?,
            None => df,
        };
        // polars' CSV reader hands back a chunk per block it parsed (248 for 5.6 M line
        // items), and every gather downstream (join, group) then looks up each row's chunk:
        // one chunk (late_payment without checks or incremental sources at scale 100, its
        // line items read straight into the join: 1.19-1.32 s -> 1.13-1.20 s).
        df.rechunk_mut_par();
        Ok(match args.n_rows {
            Some(n) => df.head(Some(n)),
            None => df,
        })
    }
}

/// A row that does not fit, located in the file.
#[derive(Debug, Clone)]
struct BadRow {
    /// 1-based physical line where the row starts.
    line: u64,
    column: Option<String>,
    /// The offending value (shown escaped).
    value: String,
    reason: String,
    /// The whole row as written (lossy UTF-8).
    raw: String,
    utf8: bool,
}

/// What a byte-level walk of the file found.
#[derive(Default)]
struct Structure {
    bad: Vec<BadRow>,
    /// Data record indices that are not in the clean copy (bad rows and blank lines).
    skipped: Vec<u64>,
    blank: usize,
    records: u64,
    /// Whether a clean copy (header and good records) was written.
    copied: bool,
}

/// A bad value found by the reader itself: the row in the clean source, the column, the text.
struct BadValue {
    row: u64,
    column: usize,
    text: String,
}

impl CsvScan {
    fn dialect(&self) -> Dialect {
        Dialect {
            delimiter: self.load.delimiter as u8,
            quote: self.load.quote.map(|c| c as u8),
            header: self.load.header,
        }
    }

    fn reader(
        &self,
        path: &str,
        dtype: impl Fn(&ColumnDecl) -> polars::prelude::DataType,
        extra_text_column: Option<&str>,
        ignore_errors: bool,
    ) -> PolarsResult<LazyFrame> {
        let mut overrides: polars::prelude::Schema = self
            .columns
            .iter()
            .map(|c| Field::new(c.name.as_str().into(), dtype(c)))
            .collect();
        if let Some(x) = extra_text_column {
            overrides.with_column(x.into(), polars::prelude::DataType::String);
        }
        let mut r = LazyCsvReader::new(PlRefPath::new(path))
            .with_has_header(self.load.header)
            .with_separator(self.load.delimiter as u8)
            .with_quote_char(self.load.quote.map(|c| c as u8))
            .with_infer_schema_length(Some(1000))
            .with_raise_if_empty(false)
            .with_ignore_errors(ignore_errors)
            .with_dtype_overwrite(Some(Arc::new(overrides)));
        if !self.load.null_values.is_empty() {
            r = r.with_null_values(Some(NullValues::AllColumns(
                self.load
                    .null_values
                    .iter()
                    .map(|s| s.as_str().into())
                    .collect(),
            )));
        }
        r.finish()
    }

    /// The fast path: the typed read. Also returns the NULL count of the file's last column.
    fn read_fast(&self) -> PolarsResult<(DataFrame, usize)> {
        let last = self.file_columns.last();
        let extra = last.filter(|l| !self.columns.iter().any(|c| &c.name == *l));
        let mut exprs: Vec<Expr> = self
            .columns
            .iter()
            .map(|c| convert(c, col(c.name.as_str()), true))
            .collect();
        if let Some(x) = extra {
            exprs.push(col(x.as_str()));
        }
        let df = self
            .reader(&self.path, reader_dtype, extra.map(|s| s.as_str()), false)?
            .select(exprs)
            .collect()?;
        let nulls = match last {
            Some(l) => df.column(l)?.null_count(),
            None => 0,
        };
        let df = match extra {
            Some(x) => df.drop(x)?,
            None => df,
        };
        Ok((df, nulls))
    }

    fn read(&self) -> PolarsResult<DataFrame> {
        match guarded(|| self.read_fast()) {
            Ok((df, 0)) => {
                self.report(&[], 0, 0)?;
                Ok(df)
            }
            Ok((df, _)) => self.check_structure(df),
            Err(e) => self.diagnose(Some(e)),
        }
    }

    /// The fast read worked but the last column has NULLs: rows with too few fields or
    /// blank lines would look exactly like that. Walk the file to tell.
    fn check_structure(&self, df: DataFrame) -> PolarsResult<DataFrame> {
        let st = self.walk_structure(None).map_err(|e| self.io_error(e))?;
        if st.bad.is_empty() {
            if st.blank == 0 {
                // Genuine NULLs.
                self.report(&[], 0, 0)?;
                return Ok(df);
            }
            if df.height() as u64 == st.records {
                // Blank lines came out as all-NULL rows: drop them.
                let mut keep = vec![true; df.height()];
                for &i in &st.skipped {
                    keep[i as usize] = false;
                }
                let mask = BooleanChunked::from_slice("keep".into(), &keep);
                let df = df.filter(&mask)?;
                self.report(&[], 0, st.blank)?;
                return Ok(df);
            }
        }
        self.diagnose(None)
    }

    /// The slow path: find every bad row (structure by walking the bytes, values with the
    /// reader itself on the rows that are well-formed), then fail, skip or quarantine.
    fn diagnose(&self, fast_error: Option<PolarsError>) -> PolarsResult<DataFrame> {
        let copy = tempfile::Builder::new()
            .prefix(".orchestrator-clean-")
            .suffix(".csv")
            .tempfile()
            .map_err(|e| self.io_error(e))?;
        let st = {
            let mut w = std::io::BufWriter::new(copy.as_file());
            let st = self
                .walk_structure(Some(&mut w))
                .map_err(|e| self.io_error(e))?;
            std::io::Write::flush(&mut w).map_err(|e| self.io_error(e))?;
            st
        };
        let source = if st.copied {
            copy.path().to_string_lossy().into_owned()
        } else {
            self.path.clone()
        };
        let checked = guarded(|| self.check_values(&source));
        let (data, values) = match checked {
            Ok(v) => v,
            // The reader cannot even read the well-formed rows: report what it says.
            Err(e) => return Err(self.unexplained(fast_error.unwrap_or(e))),
        };
        let mut bad = st.bad;
        let total = bad.len() + values.len();
        if !values.is_empty() {
            // Lines only for what will be shown or written.
            let wanted: Vec<&BadValue> = if self.load.on_bad_rows == OnBadRows::Quarantine {
                values.iter().collect()
            } else {
                values.iter().take(1).collect()
            };
            let rows: Vec<u64> = wanted.iter().map(|v| v.row).collect();
            let located = self
                .locate(&st.skipped, &rows)
                .map_err(|e| self.io_error(e))?;
            for (v, (line, raw)) in wanted.iter().zip(located) {
                let c = &self.columns[v.column];
                let shown = show(v.text.as_bytes());
                let reason = match &c.format {
                    Some(f) => format!("`{shown}` is not a valid {} in the format `{f}`", c.dtype),
                    None => format!("`{shown}` is not a valid {}", c.dtype),
                };
                bad.push(BadRow {
                    line,
                    column: Some(c.name.clone()),
                    value: shown,
                    reason,
                    raw,
                    utf8: false,
                });
            }
        }
        for b in &mut bad {
            b.line += self.line_offset;
        }
        bad.sort_by_key(|b| b.line);
        if self.load.on_bad_rows.is_fail() {
            return match bad.first() {
                Some(first) => Err(self.fail(first, total).into_polars()),
                None => match fast_error {
                    Some(e) => Err(self.unexplained(e)),
                    None => {
                        self.report(&[], 0, st.blank)?;
                        Ok(data)
                    }
                },
            };
        }
        if total == 0 {
            if let Some(e) = fast_error {
                return Err(self.unexplained(e));
            }
        }
        self.report(&bad, total, st.blank)?;
        Ok(data)
    }

    fn io_error(&self, e: std::io::Error) -> PolarsError {
        BadInputError {
            step: self.load.id.clone(),
            message: format!("load `{}`: reading `{}`: {e}", self.load.id, self.shown),
            hint: None,
        }
        .into_polars()
    }

    /// The reader failed and no bad row explains it: its own message, with the file named.
    fn unexplained(&self, e: PolarsError) -> PolarsError {
        // The usual cause: a quote inside an unquoted field (`Gad"get`), which polars takes
        // for the start of a quoted field running on to the end of the file.
        if let Ok(Some((line, column, value))) = self.first_quote_inside_a_field() {
            let q = self.load.quote.unwrap_or('"');
            let at = at_line(line + self.line_offset, column.as_deref());
            return BadInputError {
                step: self.load.id.clone(),
                message: format!(
                    "load `{}`: bad row in `{}` at {at}: a quote inside an unquoted field: `{value}`",
                    self.load.id, self.shown
                ),
                hint: Some(format!(
                    "quote the whole field and write its quotes twice (`{q}{}{q}`), or set `quote:` on step `{}` to another character",
                    value.replace(q, &format!("{q}{q}")),
                    self.load.id
                )),
            }
            .into_polars();
        }
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        BadInputError {
            step: self.load.id.clone(),
            message: format!(
                "load `{}`: cannot read `{}`: {first}",
                self.load.id, self.shown
            ),
            hint: Some(
                "check the file against the step's `schema`, `delimiter` and `quote`".into(),
            ),
        }
        .into_polars()
    }

    /// The first field that does not start with the quote character but holds one: (line,
    /// column, value).
    fn first_quote_inside_a_field(&self) -> std::io::Result<Option<(u64, Option<String>, String)>> {
        let d = self.dialect();
        let Some(q) = d.quote else {
            return Ok(None);
        };
        let mut found = None;
        walk(&self.path, &d, |rec| {
            for (i, &(s, e)) in rec.fields.iter().enumerate() {
                let f = &rec.raw[s..e];
                if f.first() != Some(&q) && f.contains(&q) {
                    let column = rec.index.and_then(|_| self.file_columns.get(i).cloned());
                    found = Some((rec.line, column, show(f)));
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        Ok(found)
    }

    fn fail(&self, first: &BadRow, total: usize) -> BadInputError {
        let at = at_line(first.line, first.column.as_deref());
        let more = if total > 1 {
            format!(" (the first of {total} bad rows)")
        } else {
            String::new()
        };
        let id = &self.load.id;
        let policies = format!(
            "set `on_bad_rows: skip` (drop and count bad rows) or `on_bad_rows: quarantine` (write them to a file) on step `{id}`"
        );
        let hint = if first.utf8 {
            format!(
                "save the file as UTF-8 (for example `iconv -f latin1 -t utf-8`), or {policies}"
            )
        } else {
            format!("fix the file, or {policies}")
        };
        BadInputError {
            step: id.clone(),
            message: format!(
                "load `{id}`: bad row in `{}` at {at}: {}{more}",
                self.shown, first.reason
            ),
            hint: Some(hint),
        }
    }

    /// Records what was set aside, for `validate` (skip, quarantine) or the log (fail), and
    /// stages the quarantine file (header only when nothing was bad, so that it always
    /// describes the last read).
    fn report(&self, bad: &[BadRow], total: usize, blank: usize) -> PolarsResult<()> {
        let mut notes = Vec::new();
        if blank > 0 {
            notes.push(format!(
                "ignored {blank} blank line{} in `{}`",
                if blank == 1 { "" } else { "s" },
                self.shown
            ));
        }
        let first = bad.first().map(|b| match &b.column {
            Some(c) => format!(" (first: line {}, column `{c}`: {})", b.line, b.reason),
            None => format!(" (first: line {}: {})", b.line, b.reason),
        });
        let rows = if total == 1 { "row" } else { "rows" };
        match self.load.on_bad_rows {
            OnBadRows::Fail => {}
            OnBadRows::Skip => {
                if total > 0 {
                    notes.push(format!(
                        "skipped {total} bad {rows} of `{}`{}",
                        self.shown,
                        first.unwrap_or_default()
                    ));
                }
            }
            OnBadRows::Quarantine => {
                let qpath = self.load.quarantine_path.clone().unwrap_or_default();
                self.write_quarantine(&qpath, bad)?;
                if total > 0 {
                    notes.push(format!(
                        "quarantined {total} bad {rows} of `{}` into `{qpath}`{}",
                        self.shown,
                        first.unwrap_or_default()
                    ));
                }
            }
        }
        if self.load.on_bad_rows.is_fail() {
            for n in &notes {
                tracing::warn!(step = %self.load.id, "{n}");
            }
        } else if let Ok(mut f) = self.load.findings.lock() {
            // Several files (a folder, or an appended tail) add to what was set aside.
            f.extend(notes);
        }
        Ok(())
    }

    fn write_quarantine(&self, qpath: &str, bad: &[BadRow]) -> PolarsResult<()> {
        let lines: Vec<u64> = bad.iter().map(|b| b.line).collect();
        let text = |f: fn(&BadRow) -> &str| -> Vec<String> {
            bad.iter().map(|b| f(b).to_string()).collect()
        };
        let mut df = DataFrame::new(
            bad.len(),
            vec![
                Column::new("line".into(), lines),
                Column::new(
                    "column".into(),
                    bad.iter().map(|b| b.column.clone()).collect::<Vec<_>>(),
                ),
                Column::new("value".into(), text(|b| &b.value)),
                Column::new("reason".into(), text(|b| &b.reason)),
                Column::new("row".into(), text(|b| &b.raw)),
            ],
        )?;
        let target = Location::parse(qpath)
            .map(|l| l.local_path().to_path_buf())
            .unwrap_or_else(|_| std::path::PathBuf::from(qpath));
        // Staged, not written: it is committed with the outputs of a run that succeeds.
        let staged = crate::storage::stage(&target, |f| {
            CsvWriter::new(f)
                .include_header(true)
                .finish(&mut df)
                .map_err(|e| RunError::engine(format!("writing `{qpath}`"), e))
        })
        // Durable now: the runner commits it after the outputs, when a failure is too late.
        .and_then(|mut s| s.durable().map(|()| s))
        .map_err(|e| {
            BadInputError {
                step: self.load.id.clone(),
                message: format!(
                    "load `{}`: cannot write the quarantine file: {e}",
                    self.load.id
                ),
                hint: e.hint().map(str::to_string),
            }
            .into_polars()
        })?;
        if let Ok(mut q) = self.load.quarantine.lock() {
            // A re-read of the same file replaces its earlier quarantine file.
            q.retain(|old| old.target() != staged.target());
            q.push(staged);
        }
        Ok(())
    }

    /// The file indices of the columns that are read (their bytes must be UTF-8).
    fn read_indices(&self) -> Vec<usize> {
        self.columns
            .iter()
            .filter_map(|c| self.file_columns.iter().position(|f| *f == c.name))
            .collect()
    }

    /// Walks the file once: structural problems (field counts, quotes, UTF-8 in the columns
    /// read), blank lines, and, if `copy` is given and anything is found, a clean copy of the
    /// file without those records (the bytes of the good records unchanged).
    fn walk_structure(
        &self,
        mut copy: Option<&mut dyn std::io::Write>,
    ) -> std::io::Result<Structure> {
        use std::io::Write as _;
        let d = self.dialect();
        let expected = self.file_columns.len();
        let read = self.read_indices();
        let mut st = Structure::default();
        let mut copying = false;
        let name = |i: usize| self.file_columns.get(i).cloned();
        walk(&self.path, &d, |rec| {
            let Some(index) = rec.index else {
                return Ok(true);
            };
            st.records += 1;
            let field =
                |i: usize| -> &[u8] { rec.fields.get(i).map_or(&[][..], |&(s, e)| &rec.raw[s..e]) };
            let blank = rec.raw.is_empty() && expected > 1 && rec.unterminated.is_none();
            let problem: Option<(Option<String>, String, String, bool)> = if let Some(i) =
                rec.unterminated
            {
                let v = show(field(i));
                Some((
                    name(i),
                    v.clone(),
                    format!("unterminated quote: the quoted field `{v}` is never closed"),
                    false,
                ))
            } else if blank {
                None
            } else if rec.fields.len() != expected {
                let found = rec.fields.len();
                Some(if found < expected {
                    let missing = name(found).unwrap_or_default();
                    (
                        Some(missing.clone()),
                        show(rec.raw),
                        format!(
                            "{found} field{} where the header has {expected}: column `{missing}` is missing",
                            if found == 1 { "" } else { "s" }
                        ),
                        false,
                    )
                } else {
                    let v = show(field(expected));
                    let last = name(expected - 1).unwrap_or_default();
                    (
                        None,
                        v.clone(),
                        format!(
                            "{found} fields where the header has {expected}: unexpected `{v}` after the last column `{last}`"
                        ),
                        false,
                    )
                })
            } else if let Some(i) = rec.after_quote {
                let v = show(field(i));
                Some((
                    name(i),
                    v.clone(),
                    format!("text after the closing quote in `{v}` (a quote inside a quoted field is written twice: `\"\"`)"),
                    false,
                ))
            } else if let Some(&i) = read
                .iter()
                .find(|&&i| std::str::from_utf8(field(i)).is_err())
            {
                let v = show(field(i));
                Some((name(i), v.clone(), format!("invalid UTF-8 in `{v}`"), true))
            } else {
                None
            };
            if blank || problem.is_some() {
                st.skipped.push(index);
                if blank {
                    st.blank += 1;
                }
                if let Some((column, value, reason, utf8)) = problem {
                    st.bad.push(BadRow {
                        line: rec.line,
                        column,
                        value,
                        reason,
                        raw: String::from_utf8_lossy(rec.raw).into_owned(),
                        utf8,
                    });
                }
                if let (Some(w), false) = (copy.as_mut(), copying) {
                    // Everything before the first bad record, byte for byte.
                    let mut f = std::fs::File::open(&self.path)?;
                    std::io::copy(&mut std::io::Read::take(&mut f, rec.start), w)?;
                    copying = true;
                }
            } else if copying {
                if let Some(w) = copy.as_mut() {
                    w.write_all(rec.raw)?;
                    w.write_all(b"\n")?;
                }
            }
            Ok(true)
        })?;
        st.copied = copying;
        Ok(st)
    }

    /// The physical line and text of the good records at the given positions (ascending)
    /// among the records that are not `skipped`.
    fn locate(&self, skipped: &[u64], rows: &[u64]) -> std::io::Result<Vec<(u64, String)>> {
        let mut out = Vec::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(out);
        }
        let mut s = 0;
        let mut good = 0u64;
        walk(&self.path, &self.dialect(), |rec| {
            let Some(index) = rec.index else {
                return Ok(true);
            };
            while s < skipped.len() && skipped[s] < index {
                s += 1;
            }
            if s < skipped.len() && skipped[s] == index {
                return Ok(true);
            }
            while out.len() < rows.len() && rows[out.len()] == good {
                out.push((rec.line, String::from_utf8_lossy(rec.raw).into_owned()));
            }
            good += 1;
            Ok(out.len() < rows.len())
        })?;
        Ok(out)
    }

    /// Reads a well-formed source twice, typed (bad values become NULL) and as text: a value
    /// is bad where the text is there but the typed value is not. Exactly the reader's own
    /// rules, so the slow path agrees with the fast one. Returns the good rows (declared
    /// columns, typed) and the bad values in row order (the first bad column of each row).
    fn check_values(&self, source: &str) -> PolarsResult<(DataFrame, Vec<BadValue>)> {
        let typed = self.reader(source, reader_dtype, None, true)?.select(
            self.columns
                .iter()
                .map(|c| col(c.name.as_str()))
                .collect::<Vec<_>>(),
        );
        let checked: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].dtype != DataType::String)
            .collect();
        if checked.is_empty() {
            return Ok((typed.collect()?, Vec::new()));
        }
        let typed = typed.collect()?;
        let text = self
            .reader(source, |_| polars::prelude::DataType::String, None, false)?
            .select(
                checked
                    .iter()
                    .map(|&i| col(self.columns[i].name.as_str()).alias(format!("\u{1}t{i}")))
                    .collect::<Vec<_>>(),
            )
            .collect()?;
        if text.height() != typed.height() {
            polars_bail!(ComputeError: "the typed and text reads differ in length ({} and {})", typed.height(), text.height());
        }
        let both = typed.hstack(text.columns())?;
        let mut parsed = Vec::new();
        let mut flags = Vec::new();
        for &i in &checked {
            let c = &self.columns[i];
            let t = col(format!("\u{1}t{i}").as_str());
            let value = if c.format.is_some() {
                convert(c, t.clone(), false)
            } else {
                col(c.name.as_str())
            };
            flags.push(
                value
                    .clone()
                    .is_null()
                    .and(t.clone().is_not_null())
                    .and(t.str().len_bytes().gt(lit(0)))
                    .alias(format!("\u{1}b{i}")),
            );
            parsed.push(value);
        }
        let any_bad = checked
            .iter()
            .map(|i| col(format!("\u{1}b{i}").as_str()))
            .fold(lit(false), |acc, b| acc.or(b));
        let all = both
            .lazy()
            .with_columns(parsed)
            .with_columns(flags)
            .with_column(any_bad.alias("\u{1}bad"))
            .with_row_index("\u{1}row", None)
            .collect()?;
        let mask = all.column("\u{1}bad")?.bool()?.clone();
        let data = all
            .filter(&!&mask)?
            .select(self.columns.iter().map(|c| c.name.as_str()))?;
        let bad = all.filter(&mask)?;
        let rows = bad.column("\u{1}row")?.idx()?.clone();
        let flags: Vec<BooleanChunked> = checked
            .iter()
            .map(|i| {
                bad.column(&format!("\u{1}b{i}"))
                    .and_then(|c| c.bool().cloned())
            })
            .collect::<PolarsResult<_>>()?;
        let texts: Vec<StringChunked> = checked
            .iter()
            .map(|i| {
                bad.column(&format!("\u{1}t{i}"))
                    .and_then(|c| c.str().cloned())
            })
            .collect::<PolarsResult<_>>()?;
        let mut values = Vec::with_capacity(bad.height());
        for r in 0..bad.height() {
            let Some(k) = (0..checked.len()).find(|&k| flags[k].get(r) == Some(true)) else {
                continue;
            };
            values.push(BadValue {
                row: rows.get(r).unwrap_or_default() as u64,
                column: checked[k],
                text: texts[k].get(r).unwrap_or_default().to_string(),
            });
        }
        Ok((data, values))
    }
}

/// Runs a read, turning a panic inside polars' CSV reader (it has a few on malformed input,
/// e.g. a lone `"` as the last field of a file) into an error, so that the slow path can
/// still name the bad row.
fn guarded<T>(read: impl FnOnce() -> PolarsResult<T>) -> PolarsResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(polars_err!(ComputeError: "the CSV reader failed on malformed input ({why})"))
    })
}

/// A value for messages: invalid UTF-8 bytes as `\xNN`, line breaks and controls escaped,
/// long text cut.
fn show(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let mut out = String::new();
    let mut n = 0;
    'outer: for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            if n >= MAX {
                out.push('…');
                break 'outer;
            }
            match ch {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
            n += 1;
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
            n += 1;
        }
    }
    out
}

// --- a byte-level CSV walker (the slow path only) ------------------------------------------

struct Dialect {
    delimiter: u8,
    quote: Option<u8>,
    header: bool,
}

/// One record as written in the file.
struct Rec<'a> {
    /// 0-based index among the data records (blank and bad ones included); `None` for the
    /// header.
    index: Option<u64>,
    /// 1-based physical line where the record starts.
    line: u64,
    /// Byte offset of its first byte.
    start: u64,
    /// Its bytes without the final line break.
    raw: &'a [u8],
    /// Field ranges in `raw` (quotes included).
    fields: &'a [(usize, usize)],
    /// The first field with text after its closing quote (`"a"b`): polars reads that
    /// leniently, but it usually means an unescaped quote that swallowed line breaks.
    after_quote: Option<usize>,
    /// The field whose quote is never closed (the record then ends at the end of the line
    /// where that quote opened, and reading resumes on the next line).
    unterminated: Option<usize>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Calls `on` for every record of the file, in order, until it returns `false`. Quoted
/// fields may span lines (`"a\nb"`, `""` for a quote), `\r\n` ends a record like `\n`, a
/// leading byte-order mark is skipped.
fn walk(
    path: &str,
    d: &Dialect,
    mut on: impl FnMut(&Rec<'_>) -> std::io::Result<bool>,
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut at = (0u64, 1u64);
    let mut index = if d.header { None } else { Some(0) };
    // Each unterminated quote restarts the walk on the next line; bound the restarts.
    for _ in 0..10_000 {
        file.seek(SeekFrom::Start(at.0))?;
        match walk_from(&mut file, at, &mut index, d, &mut on)? {
            None => return Ok(()),
            Some(next) if next.0 >= len => return Ok(()),
            Some(next) => at = next,
        }
    }
    Err(std::io::Error::other(
        "too many unterminated quotes to go on",
    ))
}

/// Walks from `(offset, line)`; returns where to resume after an unterminated quote.
#[allow(unused_assignments)] // `emit!` resets the record state, also after the last record
fn walk_from(
    r: &mut impl std::io::Read,
    (start, start_line): (u64, u64),
    index: &mut Option<u64>,
    d: &Dialect,
    on: &mut impl FnMut(&Rec<'_>) -> std::io::Result<bool>,
) -> std::io::Result<Option<(u64, u64)>> {
    #[derive(PartialEq, Clone, Copy)]
    enum St {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteSeen,
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut rec: Vec<u8> = Vec::new();
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut fs = 0usize;
    let mut st = St::FieldStart;
    let mut pos = start;
    let mut line = start_line;
    let mut rec_start = start;
    let mut rec_line = start_line;
    let mut after_quote: Option<usize> = None;
    let mut quote_field = 0usize;
    let mut quote_line = start_line;
    // Where the open quote's line ends: (length of `rec` there, offset after the line break).
    let mut quote_eol: Option<(usize, u64)> = None;
    let mut first_read = start == 0;
    let mut stop = false;

    macro_rules! emit {
        ($unterminated:expr) => {{
            if rec.last() == Some(&b'\r') && rec.len() > fs {
                rec.pop();
            }
            fields.push((fs, rec.len()));
            let r = Rec {
                index: *index,
                line: rec_line,
                start: rec_start,
                raw: &rec,
                fields: &fields,
                after_quote,
                unterminated: $unterminated,
            };
            let go_on = on(&r)?;
            *index = Some(index.map_or(0, |i| i + 1));
            rec.clear();
            fields.clear();
            fs = 0;
            st = St::FieldStart;
            after_quote = None;
            go_on
        }};
    }

    'read: loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if first_read {
            first_read = false;
            if chunk.starts_with(BOM) {
                chunk = &chunk[BOM.len()..];
                pos += BOM.len() as u64;
                rec_start = pos;
            }
        }
        for &b in chunk {
            pos += 1;
            match st {
                St::Quoted => {
                    rec.push(b);
                    if Some(b) == d.quote {
                        st = St::QuoteSeen;
                    } else if b == b'\n' {
                        line += 1;
                        if quote_eol.is_none() {
                            quote_eol = Some((rec.len() - 1, pos));
                        }
                    }
                    continue;
                }
                St::QuoteSeen => {
                    if Some(b) == d.quote {
                        rec.push(b);
                        st = St::Quoted;
                        continue;
                    }
                    if b == b'\r' {
                        rec.push(b);
                        continue;
                    }
                    if b != d.delimiter && b != b'\n' {
                        // Text after a closing quote stays in the field (as polars reads
                        // it), and the record is flagged.
                        after_quote.get_or_insert(fields.len());
                        rec.push(b);
                        st = St::Unquoted;
                        continue;
                    }
                }
                _ => {}
            }
            if b == d.delimiter {
                fields.push((fs, rec.len()));
                rec.push(b);
                fs = rec.len();
                st = St::FieldStart;
            } else if b == b'\n' {
                let go_on = emit!(None);
                line += 1;
                rec_line = line;
                rec_start = pos;
                if !go_on {
                    stop = true;
                    break 'read;
                }
            } else if st == St::FieldStart && Some(b) == d.quote {
                rec.push(b);
                st = St::Quoted;
                quote_field = fields.len();
                quote_line = line;
                quote_eol = None;
            } else {
                rec.push(b);
                if st == St::FieldStart {
                    st = St::Unquoted;
                }
            }
        }
    }
    if stop {
        return Ok(None);
    }
    match st {
        St::Quoted => {
            let (cut, resume) = quote_eol.unwrap_or((rec.len(), pos));
            rec.truncate(cut);
            let _ = emit!(Some(quote_field));
            Ok(Some((resume, quote_line + 1)))
        }
        _ => {
            if !rec.is_empty() || !fields.is_empty() {
                let _ = emit!(None);
            }
            Ok(None)
        }
    }
}

/// Where a bad row is: "line 6, column `quantity`", or "line 6".
fn at_line(line: u64, column: Option<&str>) -> String {
    match column {
        Some(c) => format!("line {line}, column `{c}`"),
        None => format!("line {line}"),
    }
}

/// A file whose lines end with CR alone (classic Mac) reads as one long header line: say
/// so, instead of listing its every field as a missing-column candidate.
fn bare_cr_line_breaks(path: &str) -> Option<RunError> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 * 1024);
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    // No LF at all, but CRs: a stray CR in a header that has LF line breaks is not this.
    let bare_cr = !head.contains(&b'\n')
        && head
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && i + 1 < head.len());
    bare_cr.then(|| {
        RunError::user(
            format!("`{path}` ends its lines with CR alone (old Mac line breaks): its header cannot be told from its rows"),
            Some("convert the line breaks to LF or CRLF, for example `tr '\\r' '\\n' < FILE > NEW`".into()),
        )
    })
}

#[cfg(test)]
mod bad_row_tests {
    use super::*;

    fn load(path: &std::path::Path, policy: OnBadRows, quarantine: Option<String>) -> Load {
        let col = |name: &str, dtype: DataType, format: Option<&str>| ColumnDecl {
            name: name.into(),
            dtype,
            format: format.map(str::to_string),
            span: Span::default(),
        };
        Load {
            path: path.display().to_string(),
            format: Format::Csv,
            header: true,
            delimiter: ',',
            quote: Some('"'),
            null_values: Vec::new(),
            schema: Some(vec![
                col("id", DataType::Int64, None),
                col("name", DataType::String, None),
                col("day", DataType::Date, Some("%d/%m/%Y")),
                col("amount", DataType::Float64, None),
            ]),
            incremental: None,
            on_bad_rows: policy,
            quarantine_path: quarantine,
            id: "t".into(),
            findings: Arc::default(),
            quarantine: Arc::default(),
            path_span: Span::default(),
            origin: None,
        }
    }

    fn read(l: &Load) -> PolarsResult<DataFrame> {
        l.to_polars(Vec::new(), &[])
            .map_err(|e| polars_err!(ComputeError: "{e}"))?
            .collect()
    }

    /// index, line, text, number of fields, unterminated field (or 100 + after-quote field)
    type Seen = (Option<u64>, u64, String, usize, Option<usize>);

    fn records(text: &[u8]) -> Vec<Seen> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(&p, text).unwrap();
        let d = Dialect {
            delimiter: b',',
            quote: Some(b'"'),
            header: true,
        };
        let mut out = Vec::new();
        walk(p.to_str().unwrap(), &d, |r| {
            out.push((
                r.index,
                r.line,
                String::from_utf8_lossy(r.raw).into_owned(),
                r.fields.len(),
                r.unterminated.or(r.after_quote.map(|i| i + 100)),
            ));
            Ok(true)
        })
        .unwrap();
        out
    }

    #[test]
    fn walker_counts_physical_lines_across_quoted_line_breaks() {
        let r = records(b"\xEF\xBB\xBFa,b\r\n1,\"x\r\ny\"\r\n\r\n2,\"q\"\"\"\r\n3,z");
        assert_eq!(
            r,
            vec![
                (None, 1, "a,b".into(), 2, None),
                (Some(0), 2, "1,\"x\r\ny\"".into(), 2, None),
                (Some(1), 4, "".into(), 1, None),
                (Some(2), 5, "2,\"q\"\"\"".into(), 2, None),
                (Some(3), 6, "3,z".into(), 2, None),
            ]
        );
    }

    #[test]
    fn walker_flags_text_after_a_closing_quote() {
        // The quote opened on line 2 closes on line 4: three lines become one record.
        let r = records(b"a,b\n1,\"x\n2,y\n3,\"z\n4,w\n");
        assert_eq!(
            r,
            vec![
                (None, 1, "a,b".into(), 2, None),
                (Some(0), 2, "1,\"x\n2,y\n3,\"z".into(), 2, Some(101)),
                (Some(1), 5, "4,w".into(), 2, None),
            ]
        );
    }

    #[test]
    fn walker_resumes_after_an_unterminated_quote() {
        let r = records(b"a,b\n1,\"x\n2,y\n3,z\n");
        assert_eq!(
            r,
            vec![
                (None, 1, "a,b".into(), 2, None),
                (Some(0), 2, "1,\"x".into(), 2, Some(1)),
                (Some(1), 3, "2,y".into(), 2, None),
                (Some(2), 4, "3,z".into(), 2, None),
            ]
        );
    }

    #[test]
    fn shows_values_escaped_and_cut() {
        assert_eq!(show(b"a\nb\xff"), "a\\nb\\xFF");
        assert_eq!(show("x".repeat(100).as_bytes()).chars().count(), 61);
    }

    #[test]
    fn bad_rows_fail_skip_and_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(
            &p,
            "id,name,day,amount\n1,\"a\nb\",03/01/2021,1.5\n2,b,31/02/2021,2\n3,c,04/01/2021,x\n4,d,05/01/2021,4\n",
        )
        .unwrap();
        let e = read(&load(&p, OnBadRows::Fail, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at line 4, column `day`: `31/02/2021` is not a valid date in the format `%d/%m/%Y` (the first of 2 bad rows)"),
            "{e}"
        );
        let l = load(&p, OnBadRows::Skip, None);
        let df = read(&l).unwrap();
        assert_eq!(df.height(), 2);
        let notes = l.validate(&df).unwrap();
        assert!(notes[0].starts_with("skipped 2 bad rows of"), "{notes:?}");
        let q = dir.path().join("q").join("t.csv");
        let l = load(&p, OnBadRows::Quarantine, Some(q.display().to_string()));
        assert_eq!(read(&l).unwrap().height(), 2);
        // Staged, not written, until the engine commits it.
        assert!(!q.exists());
        let staged = l.take_staged();
        assert_eq!(staged.len(), 1);
        for st in staged {
            st.commit().unwrap();
        }
        let text = std::fs::read_to_string(&q).unwrap();
        assert_eq!(
            text,
            "line,column,value,reason,row\n4,day,31/02/2021,`31/02/2021` is not a valid date in the format `%d/%m/%Y`,\"2,b,31/02/2021,2\"\n5,amount,x,`x` is not a valid float64,\"3,c,04/01/2021,x\"\n"
        );
    }

    /// Random damage to a small CSV: whatever the bytes, reading never panics; `fail` either
    /// reads or names a bad row, and `skip` always reads.
    #[test]
    fn damaged_files_never_panic() {
        let base = b"id,name,day,amount\n1,\"a, \"\"b\"\"\nc\",03/01/2021,1.5\n2,b,04/01/2021,2\n3,c,05/01/2021,3\n".to_vec();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let noise: &[u8] = b",\"\n\r\xff\xc3x1/ ";
        for _ in 0..400 {
            let mut bytes = base.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % (bytes.len() as u64 + 1)) as usize;
                match next() % 3 {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, noise[(next() % noise.len() as u64) as usize]),
                }
            }
            std::fs::write(&p, &bytes).unwrap();
            for policy in [OnBadRows::Fail, OnBadRows::Skip] {
                let l = load(&p, policy, None);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&l)));
                let text = String::from_utf8_lossy(&bytes);
                let r = r.unwrap_or_else(|_| panic!("{policy:?} panicked on:\n{text}"));
                match (policy, r) {
                    (_, Ok(df)) => assert!(df.height() <= 4, "{text}"),
                    (OnBadRows::Fail, Err(e)) => {
                        let e = e.to_string();
                        assert!(
                            e.contains("load `t`:") || e.contains("not found in the header"),
                            "{e}\n{text}"
                        );
                    }
                    (_, Err(e)) => {
                        let e = e.to_string();
                        // A damaged header is not a row problem.
                        assert!(
                            e.contains("not found in the header") || e.contains("load `t`:"),
                            "{policy:?}: {e}\n{text}"
                        );
                    }
                }
            }
        }
    }
}

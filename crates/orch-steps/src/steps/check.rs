//! `check`: data checks on a table that passes through unchanged.
//!
//! ```yaml
//! - id: invoices_checked
//!   type: check
//!   inputs: [invoices, accounts]      # the first is checked and passed on; the others are
//!   checks:                           # only read by `relationships` checks
//!     - {not_null: [invoice_id, account_id]}
//!     - {unique: invoice_id}
//!     - {accepted_values: {column: gender, values: [M, F]}, severity: warn}
//!     - {row_count: {min: 1}}
//!     - {expression: "quantity >= 0", name: non_negative_quantity}
//!     - {relationships: {column: account_id, to: accounts, field: account_id}}
//! ```
//!
//! The step is materialised (the engine calls [`Step::validate`] on its whole result). A
//! failing `error` check (the default severity) stops the run before any output is written,
//! naming the check, the number of offending rows and the first few of them; a failing
//! `warn` check is reported as a run warning. NULLs pass every check except `not_null` (as in
//! SQL constraints): `unique` ignores rows with a NULL key, `accepted_values` and
//! `relationships` accept NULL, and an `expression` that is NULL is not false.
//!
//! The same list can be written as `checks:` on any other step: the compiler turns it into an
//! implicit check step `<id>.checks` (see `expand_checks` in orch-engine's compile.rs), decoded
//! by [`decode_section`], so the checks, their messages and their compile-time checks are
//! these.
//!
//! `relationships` needs a second table. [`Step::validate`] sees only the checked result, so
//! [`Step::to_polars`] keeps the plans of the other inputs for `validate` to read (the engine
//! calls both, in that order, for every run of the step).

use crate::common::{fingerprint_of, missing_column, ColRef, ExprSrc};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_expr::{from_polars_dtype, to_polars_dtype};
use orch_spec::StepDecl;
use orch_spec::{suggest, Ctx, DataType, Diagnostic, Diagnostics, Fields, Node, Schema, Span};
use polars::prelude::{
    col, len, lit, AnyValue, DataFrame, Expr, IntoLazy, JoinArgs, JoinType, LazyFrame, NamedFrom,
    PlSmallStr, PolarsResult, Series,
};
use serde::Serialize;
use std::sync::Mutex;

pub const TYPE: StepType = StepType {
    name: "check",
    summary: "Data checks (not_null, unique, accepted_values, row_count, expression, relationships); the input passes through unchanged. A failing `error` check stops the run before anything is written; a `warn` check is reported. The same list as `checks:` on any other step checks that step's output.",
    arity: Arity::AtLeast(1),
    example: "- id: invoices_checked\n  type: check\n  inputs: [invoices, accounts]\n  checks:\n    - {not_null: [invoice_id, account_id]}\n    - {unique: invoice_id}\n    - {row_count: {min: 1}}\n    - {expression: \"account_id > 0\", name: positive_account, severity: warn}\n    - {relationships: {column: account_id, to: accounts, field: account_id}}\n",
    decode,
};

/// The kinds of check, as written in YAML.
const KINDS: &[&str] = &[
    "not_null",
    "unique",
    "accepted_values",
    "row_count",
    "expression",
    "relationships",
];

/// How many offending rows a message shows.
const SAMPLE_ROWS: usize = 5;
/// How many columns of each shown row.
const SAMPLE_COLUMNS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warn,
}

/// A value of `accepted_values`, as written.
#[derive(Debug, Clone)]
pub struct Value {
    pub text: String,
    pub span: Span,
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NotNull(Vec<ColRef>),
    Unique(Vec<ColRef>),
    AcceptedValues {
        column: ColRef,
        values: Vec<Value>,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
    },
    Expression(ExprSrc),
    Relationships {
        column: ColRef,
        to: String,
        field: ColRef,
        /// Position of `to` among the step's inputs.
        #[serde(skip)]
        input: usize,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckDef {
    pub name: String,
    pub severity: Severity,
    pub kind: Kind,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub checks: Vec<CheckDef>,
    #[serde(skip)]
    id: String,
    /// Input step ids, in order.
    #[serde(skip)]
    inputs: Vec<String>,
    /// For a `checks:` section on another step: that step's id, and what the checked data
    /// is called in messages ("the output of step `x`").
    #[serde(skip)]
    section: Option<Section>,
    /// The files of the `load` steps the checked data comes from through single-input
    /// steps (set by the compiler): a failing `row_count` names those that hold no rows.
    #[serde(skip)]
    sources: std::sync::OnceLock<Vec<String>>,
    #[serde(skip)]
    stash: Stash,
}

/// A `checks:` section written on a step that is not a `check` step.
#[derive(Debug, Clone)]
struct Section {
    owner: String,
    subject: String,
}

/// What `to_polars` leaves for `validate`: the checked input's schema and the plans of the
/// other inputs (for `relationships`).
#[derive(Default)]
struct Stash(Mutex<Option<(Schema, Vec<LazyFrame>)>>);

impl std::fmt::Debug for Stash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stash")
    }
}

fn decode(decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let list = f.require("checks", ctx)?;
    decode_list(decl, list, None, ctx).map(|c| Box::new(c) as Box<dyn Step>)
}

/// A `checks:` section on another step (`owner`), which the compiler turns into an implicit
/// check step: `decl` is that step (its first input is the checked data, the others the
/// `to` steps of `relationships` checks, see [`relationship_targets`]) and `list` the
/// section. `writes` when the owner is a `write` step (then its input is checked, before
/// anything is written).
pub fn decode_section(
    decl: &StepDecl,
    list: &Node,
    owner: &str,
    writes: bool,
    ctx: &mut Ctx<'_>,
) -> Option<Box<dyn Step>> {
    let subject = if writes {
        format!("the input of step `{owner}`")
    } else {
        format!("the output of step `{owner}`")
    };
    let section = Section {
        owner: owner.to_string(),
        subject,
    };
    decode_list(decl, list, Some(section), ctx).map(|c| Box::new(c) as Box<dyn Step>)
}

/// The `to` steps of the `relationships` checks in a `checks:` list, in order, without
/// repeats (reported problems are left to the decoder).
pub fn relationship_targets(list: &Node, ctx: &Ctx<'_>) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = Vec::new();
    let orch_spec::yaml::Value::Seq(items) = &list.value else {
        return out;
    };
    for item in items {
        let Some(rel) = map_get(item, "relationships") else {
            continue;
        };
        let Some(to) = map_get(rel, "to") else {
            continue;
        };
        let Some(text) = to.as_scalar() else { continue };
        let name = ctx
            .params
            .substitute(text)
            .unwrap_or_else(|_| text.to_string());
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, to.span));
        }
    }
    out
}

fn map_get<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        orch_spec::yaml::Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn decode_list(
    decl: &StepDecl,
    list: &Node,
    section: Option<Section>,
    ctx: &mut Ctx<'_>,
) -> Option<Check> {
    let items = ctx.seq(list, "checks")?;
    if items.is_empty() {
        ctx.error(
            Diagnostic::error("`checks` is empty")
                .at(list.span)
                .hint("add checks such as `- {not_null: [id]}` or `- {row_count: {min: 1}}`"),
        );
        return None;
    }
    let mut checks = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let what = match &section {
            Some(s) => format!("check {} in the `checks` of step `{}`", i + 1, s.owner),
            None => format!("check {} of step `{}`", i + 1, decl.id),
        };
        if let Some(c) = decode_check(decl, item, what, ctx) {
            checks.push(c);
        }
    }
    // A section's extra inputs are exactly its `to` steps.
    let extra = if section.is_some() {
        0
    } else {
        decl.inputs.len()
    };
    for (k, (name, span)) in decl.inputs.iter().enumerate().take(extra).skip(1) {
        let used = checks
            .iter()
            .any(|c| matches!(&c.kind, Kind::Relationships { input, .. } if *input == k));
        if !used {
            ctx.error(
                Diagnostic::error(format!(
                    "input `{name}` of step `{}` is not used by any check",
                    decl.id
                ))
                .at(*span)
                .hint(format!(
                    "a check step checks its first input; the others are for `relationships` checks (`to: {name}`)"
                )),
            );
        }
    }
    Some(Check {
        checks,
        id: decl.id.clone(),
        inputs: decl.inputs.iter().map(|(n, _)| n.clone()).collect(),
        section,
        sources: std::sync::OnceLock::new(),
        stash: Stash::default(),
    })
}

fn decode_check(decl: &StepDecl, item: &Node, what: String, ctx: &mut Ctx<'_>) -> Option<CheckDef> {
    let mut cf = Fields::new(item, what.clone(), ctx)?;
    let present: Vec<(&'static str, &Node)> = KINDS
        .iter()
        .filter_map(|k| cf.take(k).map(|n| (*k, n)))
        .collect();
    let severity = cf
        .take("severity")
        .and_then(|n| ctx.choice(n, "severity", &["error", "warn"]))
        .map_or(Severity::Error, |s| match s.as_str() {
            "warn" => Severity::Warn,
            _ => Severity::Error,
        });
    let name = cf.take("name").and_then(|n| ctx.string(n, "name"));
    let has_unknown = cf.unused().next().is_some();
    cf.finish(ctx);
    let (kind_name, node) = match present.as_slice() {
        [one] => *one,
        [] => {
            if !has_unknown {
                ctx.error(
                    Diagnostic::error(format!(
                        "{what} says what to check with none of the check kinds"
                    ))
                    .at(item.span)
                    .hint(format!("use one of: {}", KINDS.join(", "))),
                );
            }
            return None;
        }
        [_, (second, n), ..] => {
            ctx.error(
                Diagnostic::error(format!("{what} has several check kinds (also `{second}`)"))
                    .at(n.span)
                    .hint("write one check per list item"),
            );
            return None;
        }
    };
    let kind = match kind_name {
        "not_null" => Kind::NotNull(ColRef::list(node, "not_null", ctx)?),
        "unique" => Kind::Unique(ColRef::list(node, "unique", ctx)?),
        "accepted_values" => decode_accepted(node, ctx)?,
        "row_count" => decode_row_count(node, ctx)?,
        "expression" => Kind::Expression(ExprSrc::decode(node, "expression", ctx)?),
        _ => decode_relationships(decl, node, ctx)?,
    };
    let name = name.unwrap_or_else(|| default_name(&kind));
    Some(CheckDef {
        name,
        severity,
        kind,
        span: node.span,
    })
}

fn single_col(node: &Node, what: &str, ctx: &mut Ctx<'_>) -> Option<ColRef> {
    let name = ctx.string(node, what)?;
    Some(ColRef {
        name,
        span: node.span,
    })
}

fn decode_accepted(node: &Node, ctx: &mut Ctx<'_>) -> Option<Kind> {
    let mut af = Fields::new(node, "`accepted_values`", ctx)?;
    let c = af.require("column", ctx);
    let v = af.require("values", ctx);
    af.finish(ctx);
    let column = single_col(c?, "column", ctx)?;
    let v = v?;
    let values: Vec<Value> = ctx
        .strings(v, "values")?
        .into_iter()
        .map(|(text, span)| Value { text, span })
        .collect();
    if values.is_empty() {
        ctx.error(
            Diagnostic::error("`values` is empty")
                .at(v.span)
                .hint("list the accepted values, e.g. `values: [M, F]`"),
        );
        return None;
    }
    Some(Kind::AcceptedValues { column, values })
}

fn decode_row_count(node: &Node, ctx: &mut Ctx<'_>) -> Option<Kind> {
    let mut rf = Fields::new(node, "`row_count`", ctx)?;
    let min_node = rf.take("min");
    let max_node = rf.take("max");
    rf.finish(ctx);
    let bound = |n: Option<&Node>, what: &str, ctx: &mut Ctx<'_>| -> Option<Option<u64>> {
        let Some(n) = n else { return Some(None) };
        let v = ctx.int(n, what)?;
        match u64::try_from(v) {
            Ok(v) => Some(Some(v)),
            Err(_) => {
                ctx.error(
                    Diagnostic::error(format!("`{what}` must not be negative, got {v}")).at(n.span),
                );
                None
            }
        }
    };
    let min = bound(min_node, "min", ctx)?;
    let max = bound(max_node, "max", ctx)?;
    match (min, max) {
        (None, None) => {
            ctx.error(
                Diagnostic::error("`row_count` needs `min`, `max` or both")
                    .at(node.span)
                    .hint("for example `row_count: {min: 1}`"),
            );
            None
        }
        (Some(a), Some(b)) if a > b => {
            ctx.error(
                Diagnostic::error(format!(
                    "`row_count`: `min` ({a}) is larger than `max` ({b})"
                ))
                .at(node.span),
            );
            None
        }
        _ => Some(Kind::RowCount { min, max }),
    }
}

fn decode_relationships(decl: &StepDecl, node: &Node, ctx: &mut Ctx<'_>) -> Option<Kind> {
    let mut rf = Fields::new(node, "`relationships`", ctx)?;
    let c = rf.require("column", ctx);
    let t = rf.require("to", ctx);
    let fnode = rf.take("field");
    rf.finish(ctx);
    let column = single_col(c?, "column", ctx)?;
    let t = t?;
    let to = ctx.string(t, "to")?;
    let field = match fnode {
        Some(n) => single_col(n, "field", ctx)?,
        None => column.clone(),
    };
    let Some(input) = decl.inputs.iter().position(|(n, _)| *n == to) else {
        let names: Vec<&str> = decl.inputs.iter().map(|(n, _)| n.as_str()).collect();
        let mut listed = names.clone();
        listed.push(&to);
        ctx.error(
            Diagnostic::error(format!("`to: {to}` is not an input of step `{}`", decl.id))
                .at(t.span)
                .maybe_hint(suggest::hint(&to, names.iter().copied()))
                .hint(format!(
                    "add it to the step's inputs: `inputs: [{}]`",
                    listed.join(", ")
                )),
        );
        return None;
    };
    Some(Kind::Relationships {
        column,
        to,
        field,
        input,
    })
}

fn names(cols: &[ColRef]) -> String {
    cols.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn default_name(kind: &Kind) -> String {
    match kind {
        Kind::NotNull(cols) => format!("not_null({})", names(cols)),
        Kind::Unique(cols) => format!("unique({})", names(cols)),
        Kind::AcceptedValues { column, .. } => format!("accepted_values({})", column.name),
        Kind::RowCount { .. } => "row_count".into(),
        Kind::Expression(e) => e.expr.to_sql(),
        Kind::Relationships {
            column, to, field, ..
        } => format!("relationships({} -> {to}.{})", column.name, field.name),
    }
}

/// A typed accepted value, or why the text is not one.
fn parse_value(t: &DataType, text: &str) -> Result<AnyValue<'static>, String> {
    let v = text.trim();
    match t {
        DataType::String => Ok(AnyValue::StringOwned(text.into())),
        DataType::Int64 => v
            .parse::<i64>()
            .map(AnyValue::Int64)
            .map_err(|_| format!("is not a whole number, but the column is {t}")),
        DataType::Float64 => v
            .parse::<f64>()
            .map(AnyValue::Float64)
            .map_err(|_| format!("is not a number, but the column is {t}")),
        DataType::Bool => match v.to_ascii_lowercase().as_str() {
            "true" => Ok(AnyValue::Boolean(true)),
            "false" => Ok(AnyValue::Boolean(false)),
            _ => Err(format!("is not true or false, but the column is {t}")),
        },
        DataType::Date => Series::new(PlSmallStr::EMPTY, [v])
            .strict_cast(&polars::prelude::DataType::Date)
            .ok()
            .and_then(|s| s.get(0).ok().map(|a| a.into_static()))
            .filter(|a| !a.is_null())
            .ok_or_else(|| format!("is not a date as yyyy-mm-dd, but the column is {t}")),
        _ => Err(format!(
            "cannot be checked: `accepted_values` works on string, int64, float64, bool and date columns, and this column is {t}"
        )),
    }
}

impl Check {
    fn side(&self, k: usize) -> String {
        if let (0, Some(s)) = (k, &self.section) {
            return s.subject.clone();
        }
        match self.inputs.get(k) {
            Some(n) => format!("the input `{n}`"),
            None => "the input".into(),
        }
    }
}

impl Step for Check {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let input = inputs.first()?;
        let side = self.side(0);
        let mut ok = true;
        for c in &self.checks {
            match &c.kind {
                Kind::NotNull(cols) | Kind::Unique(cols) => {
                    for r in cols {
                        ok &= r.resolve(input, &side, diags).is_some();
                    }
                }
                Kind::AcceptedValues { column, values } => {
                    let Some(t) = column.resolve(input, &side, diags) else {
                        ok = false;
                        continue;
                    };
                    for v in values {
                        if let Err(why) = parse_value(t, &v.text) {
                            diags.push(
                                Diagnostic::error(format!(
                                    "accepted value `{}` of `{}` {why}",
                                    v.text, column.name
                                ))
                                .at(v.span),
                            );
                            ok = false;
                        }
                    }
                }
                Kind::RowCount { .. } => {}
                Kind::Expression(e) => match e.check(input, diags) {
                    Some(DataType::Bool | DataType::Null) => {}
                    Some(t) => {
                        diags.push(
                            Diagnostic::error(format!(
                                "`expression` must be a true/false expression, got {t}"
                            ))
                            .at(e.span)
                            .hint("state what must hold, e.g. `quantity >= 0`"),
                        );
                        ok = false;
                    }
                    None => ok = false,
                },
                Kind::Relationships {
                    column,
                    to,
                    field,
                    input: k,
                } => {
                    let a = column.resolve(input, &side, diags);
                    let b = match inputs.get(*k) {
                        Some(s) => {
                            let t = s.get(&field.name);
                            if t.is_none() {
                                diags.push(missing_column(
                                    &field.name,
                                    field.span,
                                    s,
                                    &format!("the input `{to}`"),
                                ));
                            }
                            t
                        }
                        None => None,
                    };
                    match (a, b) {
                        (Some(a), Some(b)) if a.unify(b).is_none() => {
                            diags.push(
                                Diagnostic::error(format!(
                                    "`{}` is {a} but `{to}.{}` is {b}: they cannot be compared",
                                    column.name, field.name
                                ))
                                .at(c.span)
                                .hint("cast one of them with a `derive` step first"),
                            );
                            ok = false;
                        }
                        (Some(_), Some(_)) => {}
                        _ => ok = false,
                    }
                }
            }
        }
        ok.then(|| (*input).clone())
    }

    fn delta_rule(&self) -> DeltaRule {
        DeltaRule::RowWise
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        inputs: Vec<LazyFrame>,
        schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let mut inputs = inputs.into_iter();
        let first = inputs
            .next()
            .ok_or_else(|| RunError::internal("check step without input"))?;
        let schema = schemas.first().map(|s| (*s).clone()).unwrap_or_default();
        if let Ok(mut s) = self.stash.0.lock() {
            *s = Some((schema, inputs.collect()));
        }
        Ok(first)
    }

    fn must_materialize(&self) -> bool {
        true
    }

    fn validation_only(&self) -> bool {
        true
    }

    fn set_upstream_files(&self, files: Vec<String>) {
        let _ = self.sources.set(files);
    }

    fn validate(&self, df: &DataFrame) -> Result<Vec<String>, RunError> {
        self.validate_rows(df, 0, None)
    }

    fn validate_appended(
        &self,
        delta: &DataFrame,
        rows_before: u64,
        old: LazyFrame,
    ) -> Option<Result<Vec<String>, RunError>> {
        // Row-local checks hold for the old rows already (they passed, or warned, last
        // time); `row_count` adds the rows before; `unique` reads the old rows' key columns
        // only.
        Some(self.validate_rows(delta, rows_before, Some(old)))
    }
}

impl Check {
    /// Validates `df`, the rows after the first `rows_before` (which passed last time and
    /// `old` reads, when given).
    fn validate_rows(
        &self,
        df: &DataFrame,
        rows_before: u64,
        old: Option<LazyFrame>,
    ) -> Result<Vec<String>, RunError> {
        let (schema, others) = self
            .stash
            .0
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_else(|| (schema_of(df), Vec::new()));
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for c in &self.checks {
            let keys_of_all;
            let (df, rows_before) = match (&c.kind, &old) {
                // Uniqueness over every row: the old rows' keys and the new rows'.
                (Kind::Unique(cols), Some(old)) => {
                    let keys: Vec<Expr> = cols.iter().map(|r| col(r.name.as_str())).collect();
                    keys_of_all = polars::prelude::concat(
                        [
                            old.clone().select(keys.clone()),
                            df.clone().lazy().select(keys),
                        ],
                        Default::default(),
                    )
                    .and_then(|lf| lf.collect())
                    .map_err(|e| RunError::engine(format!("check `{}`", c.name), e))?;
                    (&keys_of_all, 0)
                }
                _ => (df, rows_before),
            };
            let Some(text) = self.evaluate(c, df, rows_before, &schema, &others)? else {
                continue;
            };
            match c.severity {
                Severity::Error => errors.push((c.name.clone(), text)),
                Severity::Warn => warnings.push(format!("check `{}` failed: {text}", c.name)),
            }
        }
        let hint = Some(
            "fix the data (or the step that produces it); to report a check without stopping the run, give it `severity: warn`"
                .to_string(),
        );
        let who = match &self.section {
            Some(s) => format!("step `{}`", s.owner),
            None => format!("check step `{}`", self.id),
        };
        match errors.as_slice() {
            [] => Ok(warnings),
            [(name, text)] => Err(RunError::user(
                format!("{who}: check `{name}` failed: {text}"),
                hint,
            )),
            many => {
                let mut msg = format!("{who}: {} checks failed:", many.len());
                for (name, text) in many {
                    msg.push_str(&format!("\n  - `{name}`: {text}"));
                }
                Err(RunError::user(msg, hint))
            }
        }
    }
}

/// Whether column `name`, NULLs left out, is in ascending order without two equal values
/// in a row: then it is unique. Ids that only grow are the common case, and these two
/// linear passes cost a fraction of the hash-based search for repeated keys.
fn sorted_without_repeats(df: &DataFrame, name: &str) -> PolarsResult<bool> {
    use polars::prelude::{ChunkCompareEq, SeriesMethods, SortOptions};
    let s = df.column(name)?.as_materialized_series().drop_nulls();
    // (Not for floats: NaN is not equal to itself, but a group-by puts NaNs together.)
    if s.dtype().is_float() {
        return Ok(false);
    }
    let n = s.len();
    if n < 2 {
        return Ok(true);
    }
    if !s.is_sorted(SortOptions::default())? {
        return Ok(false);
    }
    Ok(!s.slice(1, n - 1).equal(&s.slice(0, n - 1))?.any())
}

fn schema_of(df: &DataFrame) -> Schema {
    df.schema()
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                from_polars_dtype(t).unwrap_or(DataType::String),
            )
        })
        .collect()
}

impl Check {
    /// `None` when the check passes; otherwise what is wrong, with the first offending rows.
    fn evaluate(
        &self,
        c: &CheckDef,
        df: &DataFrame,
        rows_before: u64,
        schema: &Schema,
        others: &[LazyFrame],
    ) -> Result<Option<String>, RunError> {
        let engine = |e| RunError::engine(format!("check `{}` of step `{}`", c.name, self.id), e);
        let rows = |mask: Expr| df.clone().lazy().filter(mask).collect().map_err(engine);
        let (bad, what, first_cols): (DataFrame, String, Vec<String>) = match &c.kind {
            Kind::RowCount { min, max } => {
                let n = rows_before + df.height() as u64;
                let expected = match (min, max) {
                    (Some(a), Some(b)) if a == b => format!("exactly {a}"),
                    (Some(a), Some(b)) => format!("between {a} and {b}"),
                    (Some(a), None) => format!("at least {a}"),
                    (None, Some(b)) => format!("at most {b}"),
                    (None, None) => return Ok(None),
                };
                let fails = min.is_some_and(|a| n < a) || max.is_some_and(|b| n > b);
                if !fails {
                    return Ok(None);
                }
                let mut text = format!(
                    "`{}` has {n} row{}; expected {expected}",
                    self.inputs.first().map_or("the input", |s| s.as_str()),
                    if n == 1 { "" } else { "s" }
                );
                // No rows at all: say which source extract is empty, if one is.
                if n == 0 {
                    let empty: Vec<String> = self
                        .sources
                        .get()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| {
                            no_data_rows(f).map(|why| format!("`{f}` has no data rows ({why})"))
                        })
                        .collect();
                    if !empty.is_empty() {
                        text = format!("{text}: the source file {}", empty.join("; "));
                    }
                }
                return Ok(Some(text));
            }
            Kind::NotNull(cols) => {
                let mask = cols
                    .iter()
                    .map(|r| col(r.name.as_str()).is_null())
                    .reduce(|a, b| a.or(b))
                    .unwrap_or(lit(false));
                let list = cols
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(" or ");
                (
                    rows(mask)?,
                    format!("with NULL in {list}"),
                    cols.iter().map(|r| r.name.clone()).collect(),
                )
            }
            Kind::Unique(cols) => {
                if let [only] = cols.as_slice() {
                    if sorted_without_repeats(df, &only.name).map_err(engine)? {
                        return Ok(None);
                    }
                }
                let keys: Vec<Expr> = cols.iter().map(|r| col(r.name.as_str())).collect();
                let mask = cols
                    .iter()
                    .map(|r| col(r.name.as_str()).is_not_null())
                    .fold(len().over(keys).map_err(engine)?.gt(lit(1)), |a, b| {
                        a.and(b)
                    });
                let what = if cols.len() == 1 {
                    format!("whose `{}` is not unique", cols[0].name)
                } else {
                    format!("whose ({}) is not unique", names(cols))
                };
                (
                    rows(mask)?,
                    what,
                    cols.iter().map(|r| r.name.clone()).collect(),
                )
            }
            Kind::AcceptedValues { column, values } => {
                let t = schema
                    .get(&column.name)
                    .cloned()
                    .unwrap_or(DataType::String);
                let typed: Vec<AnyValue<'static>> = values
                    .iter()
                    .map(|v| parse_value(&t, &v.text))
                    .collect::<Result<_, _>>()
                    .map_err(|e| RunError::internal(format!("accepted value {e}")))?;
                let set = Series::from_any_values_and_dtype(
                    PlSmallStr::EMPTY,
                    &typed,
                    &to_polars_dtype(&t),
                    true,
                )
                .map_err(engine)?;
                let c0 = col(column.name.as_str());
                let mask = c0
                    .clone()
                    .is_not_null()
                    .and(c0.is_in(lit(set).implode(false), false).not());
                let shown = values
                    .iter()
                    .map(|v| v.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    rows(mask)?,
                    format!("whose `{}` is not one of [{shown}]", column.name),
                    vec![column.name.clone()],
                )
            }
            Kind::Expression(e) => {
                let pred = e
                    .expr
                    .to_polars(schema)
                    .map_err(|err| RunError::internal(err.message))?;
                let cols = e.expr.columns().into_iter().collect();
                (
                    rows(pred.not())?,
                    format!("where `{}` is false", e.expr.to_sql()),
                    cols,
                )
            }
            Kind::Relationships {
                column,
                to,
                field,
                input,
            } => {
                let other = match *input {
                    0 => df.clone().lazy(),
                    k => others.get(k - 1).cloned().ok_or_else(|| {
                        RunError::internal(format!(
                            "check `{}`: the input `{to}` was not passed to validate",
                            c.name
                        ))
                    })?,
                };
                let a = schema
                    .get(&column.name)
                    .cloned()
                    .unwrap_or(DataType::String);
                let t = to_polars_dtype(&a);
                let keys = other
                    .select([col(field.name.as_str()).cast(t.clone()).alias("\u{1}k")])
                    .filter(col("\u{1}k").is_not_null());
                let all: Vec<Expr> = df
                    .get_column_names()
                    .iter()
                    .map(|n| col(n.as_str()))
                    .collect();
                let bad = df
                    .clone()
                    .lazy()
                    .with_column(col(column.name.as_str()).cast(t).alias("\u{1}c"))
                    .filter(col("\u{1}c").is_not_null())
                    .join(
                        keys,
                        [col("\u{1}c")],
                        [col("\u{1}k")],
                        JoinArgs::new(JoinType::Anti),
                    )
                    .select(all)
                    .collect()
                    .map_err(engine)?;
                (
                    bad,
                    format!("whose `{}` is not in `{to}.{}`", column.name, field.name),
                    vec![column.name.clone()],
                )
            }
        };
        if bad.height() == 0 {
            return Ok(None);
        }
        let n = bad.height();
        Ok(Some(format!(
            "{n} row{} {what}; first: {}",
            if n == 1 { "" } else { "s" },
            sample(&bad, &first_cols)
        )))
    }
}

/// Why a source file holds no data rows, if it holds none: it is empty, or it has a header
/// line and nothing else (blank lines aside). Only small text files are looked at.
fn no_data_rows(path: &str) -> Option<&'static str> {
    const MAX: u64 = 1 << 16;
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    if meta.len() == 0 {
        return Some("the file is empty, 0 bytes");
    }
    if meta.len() > MAX {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.starts_with(b"PAR1") {
        return None;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    match (lines.next(), lines.next()) {
        (Some(_), None) => Some("only a header line"),
        (None, _) => Some("only blank lines"),
        _ => None,
    }
}

/// The first offending rows as `(a=1, b=NULL, ...)`, checked columns first.
fn sample(df: &DataFrame, first: &[String]) -> String {
    let mut order: Vec<String> = first.to_vec();
    for n in df.get_column_names() {
        if !order.iter().any(|o| o == n.as_str()) {
            order.push(n.to_string());
        }
    }
    let more_cols = order.len() > SAMPLE_COLUMNS;
    order.truncate(SAMPLE_COLUMNS);
    let mut rows = Vec::new();
    for i in 0..df.height().min(SAMPLE_ROWS) {
        let mut cells = Vec::new();
        for name in &order {
            let v = df
                .column(name)
                .ok()
                .and_then(|c| c.get(i).ok())
                .map_or_else(|| "?".to_string(), |v| show_value(&v));
            cells.push(format!("{name}={v}"));
        }
        if more_cols {
            cells.push("…".into());
        }
        rows.push(format!("({})", cells.join(", ")));
    }
    if df.height() > SAMPLE_ROWS {
        rows.push("…".into());
    }
    rows.join(", ")
}

fn show_value(v: &AnyValue<'_>) -> String {
    const MAX: usize = 40;
    let s = match v {
        AnyValue::Null => return "NULL".into(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    };
    let s = s.replace('\n', "\\n").replace('\r', "\\r");
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::sorted_without_repeats;
    use polars::prelude::{Column, DataFrame};

    fn frame(values: &[Option<i64>]) -> DataFrame {
        DataFrame::new_infer_height(vec![Column::new("k".into(), values)]).unwrap()
    }

    #[test]
    fn the_sorted_shortcut_proves_uniqueness_only_for_ascending_keys_without_repeats() {
        let yes = |v: &[Option<i64>]| sorted_without_repeats(&frame(v), "k").unwrap();
        assert!(yes(&[Some(1), Some(2), Some(5)]));
        assert!(yes(&[None, Some(1), None, Some(2)]), "NULLs are left out");
        assert!(yes(&[]) && yes(&[Some(7)]));
        assert!(!yes(&[Some(1), Some(2), Some(2), Some(3)]), "a repeat");
        assert!(!yes(&[Some(1), None, Some(1)]), "a repeat around a NULL");
        // Not ascending: no conclusion (the check then searches for repeats by hashing).
        assert!(!yes(&[Some(3), Some(1), Some(2)]));
        // Floats are left to the hash-based search (two NaNs are one group there).
        let nan =
            DataFrame::new_infer_height(vec![Column::new("k".into(), &[1.0, f64::NAN, f64::NAN])])
                .unwrap();
        assert!(!sorted_without_repeats(&nan, "k").unwrap());
    }
}

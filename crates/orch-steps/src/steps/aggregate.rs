//! `aggregate`: groups by key columns and computes named aggregations.
//!
//! ```yaml
//! - id: per_account
//!   type: aggregate
//!   input: invoices
//!   group_by: [account_id]
//!   aggregations:
//!     total_invoices: {count: invoice_id}
//!     amount: {sum: quantity * item_retail_price}
//!     names: {sorted_distinct_list: item_name}
//! ```
//! The argument of each function is an expression (a column name is the simplest one);
//! `count: "*"` counts rows. Output: the group keys, then the aggregations in order. Rows
//! come out sorted by the group keys (NULL first) when a reader cares about their order.

use crate::common::{fingerprint_of, ColRef, ExprSrc};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_spec::{Ctx, DataType, Diagnostic, Diagnostics, Fields, Schema, Span, StepDecl};
use polars::prelude::{
    col, len, lit, when, ExplodeOptions, LazyFrame, SortMultipleOptions, SortOptions,
};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "aggregate",
    summary: "Group by keys and aggregate: count, count_distinct, sum, mean, min, max, first, sorted_distinct_list.",
    arity: Arity::Exactly(1),
    example: "- id: per_account\n  type: aggregate\n  input: invoices\n  group_by: account_id\n  aggregations:\n    total_invoices: {count: invoice_id}\n    last_issued: {max: date_issued}\n",
    decode,
};

pub const FUNCTIONS: &[&str] = &[
    "count",
    "count_distinct",
    "sum",
    "mean",
    "min",
    "max",
    "first",
    "sorted_distinct_list",
];

#[derive(Debug, Clone, Serialize)]
pub struct Aggregation {
    pub name: String,
    pub function: String,
    /// `None` for `count: "*"`.
    pub arg: Option<ExprSrc>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub group_by: Vec<ColRef>,
    pub aggregations: Vec<Aggregation>,
    /// Whether a reader cares about the row order (set at compile time; part of the
    /// fingerprint, since it decides the order of a cached result).
    #[serde(serialize_with = "serialize_flag")]
    pub ordered: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn serialize_flag<S: serde::Serializer>(
    flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_bool(flag.load(std::sync::atomic::Ordering::Relaxed))
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let group_by = match f.take("group_by") {
        Some(n) => ColRef::list(n, "group_by", ctx)?,
        None => Vec::new(),
    };
    let aggs_node = f.require("aggregations", ctx)?;
    let entries = ctx.entries(aggs_node, "aggregations")?;
    if entries.is_empty() {
        ctx.error(
            Diagnostic::error("`aggregations` is empty")
                .at(aggs_node.span)
                .hint("add e.g. `n: {count: \"*\"}`"),
        );
    }
    let mut aggregations = Vec::new();
    for (name, span, v) in entries {
        // `{sum: amount}`: exactly one function -> argument pair.
        let pair = v.as_map().filter(|m| m.len() == 1);
        let Some([(fnode, arg)]) = pair else {
            ctx.error(
                Diagnostic::error(format!(
                    "aggregation `{name}` must be one `function: argument` pair"
                ))
                .at(v.span)
                .hint(format!(
                    "for example `{name}: {{sum: amount}}`; functions are {}",
                    FUNCTIONS.join(", ")
                )),
            );
            continue;
        };
        let Some(function) = ctx.choice(fnode, "aggregation function", FUNCTIONS) else {
            continue;
        };
        let arg_text = arg.as_scalar().unwrap_or_default();
        let arg = if function == "count" && arg_text == "*" {
            None
        } else {
            match ExprSrc::decode(arg, &format!("aggregation `{name}`"), ctx) {
                Some(e) => Some(e),
                None => continue,
            }
        };
        aggregations.push(Aggregation {
            name,
            function,
            arg,
            span,
        });
    }
    Some(Box::new(Aggregate {
        group_by,
        aggregations,
        ordered: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    }))
}

impl Step for Aggregate {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let input = inputs[0];
        let mut out = Schema::default();
        let mut ok = true;
        for g in &self.group_by {
            match g.resolve(input, "the input", diags) {
                Some(t) => out.upsert(&g.name, t.clone()),
                None => ok = false,
            }
        }
        for a in &self.aggregations {
            if out.contains(&a.name) {
                diags.push(
                    Diagnostic::error(format!("output column `{}` is defined twice", a.name))
                        .at(a.span)
                        .hint("give each aggregation a name that is not a group key"),
                );
                ok = false;
                continue;
            }
            let arg_type = match &a.arg {
                None => None,
                Some(e) => match e.check(input, diags) {
                    Some(t) => Some(t),
                    None => {
                        ok = false;
                        continue;
                    }
                },
            };
            let t = match (a.function.as_str(), arg_type) {
                ("count" | "count_distinct", _) => DataType::Int64,
                ("sum", Some(t)) if t.is_numeric() => match t {
                    DataType::Float64 => DataType::Float64,
                    _ => DataType::Int64,
                },
                ("mean", Some(t)) if t.is_numeric() => DataType::Float64,
                ("min" | "max" | "first", Some(t)) => t,
                ("sorted_distinct_list", Some(t)) => DataType::List(Box::new(t)),
                (f, Some(t)) => {
                    diags.push(
                        Diagnostic::error(format!("`{f}` needs a numeric argument, got {t}"))
                            .at(a.span)
                            .hint("use count, min, max or first for non-numeric columns"),
                    );
                    ok = false;
                    continue;
                }
                (f, None) => {
                    diags.push(
                        Diagnostic::error(format!("`{f}` needs a column, not \"*\"")).at(a.span),
                    );
                    ok = false;
                    continue;
                }
            };
            out.upsert(&a.name, t);
        }
        ok.then_some(out)
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    /// Every function merges: count, integer sums, min and max with themselves, lists by
    /// union, count_distinct through its distinct values; float sums, means and first by
    /// recomputing the groups the new rows touch (see `merge_is_exact`).
    fn delta_rule(&self) -> DeltaRule {
        DeltaRule::Merge
    }

    /// Sums and means of floats are not exact when merged (see the trait), nor is `first`,
    /// which depends on row order: with any of them the groups the new rows touch are
    /// recomputed, and `merge_states` never sees them.
    fn merge_is_exact(&self, input: &Schema) -> bool {
        !self.aggregations.iter().any(|a| match a.function.as_str() {
            "mean" | "first" => true,
            "sum" => {
                a.arg.as_ref().and_then(|x| x.expr.check(input).ok()) == Some(DataType::Float64)
            }
            _ => false,
        })
    }

    fn set_row_order_matters(&self, matters: bool) {
        self.ordered
            .store(matters, std::sync::atomic::Ordering::Relaxed);
    }

    fn group_keys(&self) -> Vec<String> {
        self.group_by.iter().map(|g| g.name.clone()).collect()
    }

    fn state_plan(&self, input: LazyFrame, schema: &Schema) -> Result<LazyFrame, RunError> {
        let mut aggs = Vec::new();
        for a in &self.aggregations {
            let arg = lower_arg(a, schema)?;
            let n = a.name.as_str();
            match (a.function.as_str(), arg) {
                // Counted from the list of the same values when the step keeps one anyway.
                ("count_distinct", Some(_)) if self.list_of_same(a).is_some() => {}
                ("count_distinct", Some(e)) => {
                    aggs.push(self.distinct_list(e).alias(hidden("cd", n)))
                }
                ("mean", Some(e)) => {
                    aggs.push(
                        self.one_chunk(e.clone().cast(polars::prelude::DataType::Float64))
                            .sum()
                            .alias(hidden("sum", n)),
                    );
                    aggs.push(
                        e.count()
                            .cast(polars::prelude::DataType::Int64)
                            .alias(hidden("n", n)),
                    );
                }
                // The others are their own state.
                _ => aggs.push(self.agg_expr(a, schema)?),
            }
        }
        Ok(self.grouped(input, aggs))
    }

    fn merge_states(&self, old: LazyFrame, new: LazyFrame) -> Result<LazyFrame, RunError> {
        let stack = |lfs: Vec<LazyFrame>| {
            polars::prelude::concat(lfs, Default::default())
                .map_err(|e| RunError::engine("stacking aggregation states", e))
        };
        // Lists of strings (the common case: names) are merged by a linear merge of the two
        // sorted lists; other lists are exploded, deduplicated and sorted again.
        let state_schema = old
            .clone()
            .collect_schema()
            .map_err(|e| RunError::engine("reading the stored aggregation state", e))?;
        let merges_strings = |n: &str| {
            matches!(
                state_schema.get(n),
                Some(polars::prelude::DataType::List(inner))
                    if **inner == polars::prelude::DataType::String
            )
        };
        // Only the groups the new rows touch are merged; the others are kept as they are.
        let (keep, stacked) = if self.group_by.is_empty() {
            (None, stack(vec![old, new.clone()])?)
        } else {
            let keys: Vec<_> = self.group_by.iter().map(|g| col(g.name.as_str())).collect();
            let touched = new
                .clone()
                .select(keys.clone())
                .unique(None, Default::default());
            // A null key is a group like any other: its stored row must be matched too (it
            // was kept beside the merged one, giving the null group twice).
            let split = |how| {
                let mut args = polars::prelude::JoinArgs::new(how);
                args.nulls_equal = true;
                old.clone()
                    .join(touched.clone(), keys.clone(), keys.clone(), args)
            };
            let keep = split(polars::prelude::JoinType::Anti);
            let stacked = stack(vec![split(polars::prelude::JoinType::Semi), new])?;
            (Some(keep), stacked)
        };
        let mut aggs = Vec::new();
        // The merged state's columns, in the stored state's order (kept groups are stacked
        // under the merged ones).
        let mut columns: Vec<polars::prelude::Expr> =
            self.group_by.iter().map(|g| col(g.name.as_str())).collect();
        for a in &self.aggregations {
            let n = a.name.as_str();
            let list = match a.function.as_str() {
                "sorted_distinct_list" => n.to_string(),
                "count_distinct" if self.list_of_same(a).is_some() => continue,
                "count_distinct" => hidden("cd", n),
                "count" => {
                    aggs.push(col(n).sum().cast(polars::prelude::DataType::Int64).alias(n));
                    columns.push(col(n));
                    continue;
                }
                // Integer sums only: float sums, means and `first` are recomputed instead
                // (`merge_is_exact`).
                "sum" | "min" | "max" => {
                    aggs.push(match a.function.as_str() {
                        "sum" => col(n).sum().alias(n),
                        "min" => col(n).min().alias(n),
                        _ => col(n).max().alias(n),
                    });
                    columns.push(col(n));
                    continue;
                }
                f => {
                    return Err(RunError::internal(format!(
                        "aggregation {f} does not merge"
                    )))
                }
            };
            let l = list.as_str();
            if merges_strings(l) {
                // A group holds at most its stored row and its new row: first and last are
                // the two lists (one list twice merges to itself).
                let (x, y) = (hidden("old", l), hidden("new", l));
                aggs.push(col(l).first().alias(x.as_str()));
                aggs.push(col(l).last().alias(y.as_str()));
                columns.push(merge_sorted_strings(col(x.as_str()), col(y.as_str())).alias(l));
            } else {
                aggs.push(self.union_lists(l).alias(l));
                columns.push(col(l));
            }
        }
        let merged = self.grouped(stacked, aggs).select(columns);
        match keep {
            Some(keep) => stack(vec![keep, merged]),
            None => Ok(merged),
        }
    }

    fn finish_state(&self, state: LazyFrame) -> Result<LazyFrame, RunError> {
        let mut cols: Vec<_> = self.group_by.iter().map(|g| col(g.name.as_str())).collect();
        for a in &self.aggregations {
            let n = a.name.as_str();
            cols.push(match a.function.as_str() {
                "count_distinct" => col(self
                    .list_of_same(a)
                    .map_or_else(|| hidden("cd", n), |l| l.to_string())
                    .as_str())
                .list()
                .len()
                .cast(polars::prelude::DataType::Int64)
                .alias(n),
                "mean" => {
                    let (s, c) = (hidden("sum", n), hidden("n", n));
                    when(col(c.as_str()).gt(lit(0)))
                        .then(
                            col(s.as_str())
                                / col(c.as_str()).cast(polars::prelude::DataType::Float64),
                        )
                        .otherwise(
                            lit(polars::prelude::NULL).cast(polars::prelude::DataType::Float64),
                        )
                        .alias(n)
                }
                _ => col(n),
            });
        }
        Ok(self.in_key_order(state.select(cols)))
    }

    fn to_polars(
        &self,
        mut inputs: Vec<LazyFrame>,
        schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let input = inputs
            .pop()
            .ok_or_else(|| RunError::internal("aggregate without input"))?;
        let schema = schemas[0];
        let aggs = self
            .aggregations
            .iter()
            .map(|a| self.agg_expr(a, schema))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.in_key_order(self.grouped(input, aggs)))
    }
}

/// The name of a state column kept beside the result (never shown in outputs).
fn hidden(what: &str, name: &str) -> String {
    format!("__{what}__{name}")
}

impl Aggregate {
    /// The name of a `sorted_distinct_list` over the same expression as `a`, if any.
    fn list_of_same(&self, a: &Aggregation) -> Option<&str> {
        let text = |x: &Aggregation| serde_json::to_string(&x.arg).ok();
        self.aggregations
            .iter()
            .find(|l| l.function == "sorted_distinct_list" && text(l) == text(a))
            .map(|l| l.name.as_str())
    }

    fn grouped(&self, input: LazyFrame, aggs: Vec<polars::prelude::Expr>) -> LazyFrame {
        if self.group_by.is_empty() {
            return input.select(aggs);
        }
        // Keys that polars knows to be sorted (read back from a stored part, say) make it
        // group by slices and sum them another way than gathered groups: the same rows would
        // give another last bit depending on where they were read from. Forget it.
        let keys: Vec<_> = self
            .group_by
            .iter()
            .map(|g| col(g.name.as_str()).set_sorted_flag(Default::default()))
            .collect();
        input.group_by(keys).agg(aggs)
    }

    /// The result sorted by the group keys (NULL first) when a reader cares about its row
    /// order: polars hands groups out in no set order, which would make a `first` or a float
    /// sum over an aggregate's output, or the rows of a file it is written to, differ from
    /// run to run and between an incremental run and a full recompute.
    fn in_key_order(&self, result: LazyFrame) -> LazyFrame {
        if self.group_by.is_empty() || !self.ordered.load(std::sync::atomic::Ordering::Relaxed) {
            return result;
        }
        let keys: Vec<&str> = self.group_by.iter().map(|g| g.name.as_str()).collect();
        result.sort(keys, SortMultipleOptions::default())
    }

    /// Without `group_by`, polars sums a column chunk by chunk and adds the chunks' sums: a
    /// float result would depend on how the input happened to be chunked (one CSV read, or
    /// stored parts plus new rows). One chunk makes it depend on the values and their order
    /// only. (Grouped sums gather each group's values and do not depend on chunks.)
    fn one_chunk(&self, e: polars::prelude::Expr) -> polars::prelude::Expr {
        if self.group_by.is_empty() {
            e.rechunk()
        } else {
            e
        }
    }

    /// The sorted distinct non-null values of `e`, as one list per group.
    fn distinct_list(&self, e: polars::prelude::Expr) -> polars::prelude::Expr {
        let list = e.drop_nulls().unique().sort(SortOptions::default());
        // In a group_by polars collects each group's values into a list; over the whole
        // table we build the single list ourselves.
        if self.group_by.is_empty() {
            list.implode(true)
        } else {
            list
        }
    }

    /// The union of the lists in column `n`, sorted.
    fn union_lists(&self, n: &str) -> polars::prelude::Expr {
        self.distinct_list(col(n).explode(ExplodeOptions {
            empty_as_null: false,
            keep_nulls: false,
        }))
    }

    fn agg_expr(
        &self,
        a: &Aggregation,
        schema: &Schema,
    ) -> Result<polars::prelude::Expr, RunError> {
        let arg = lower_arg(a, schema)?;
        let e = match (a.function.as_str(), arg) {
            ("count", None) => len().cast(polars::prelude::DataType::Int64),
            ("count", Some(e)) => e.count().cast(polars::prelude::DataType::Int64),
            ("count_distinct", Some(e)) => e
                .drop_nulls()
                .n_unique()
                .cast(polars::prelude::DataType::Int64),
            ("sum", Some(e)) => {
                let t = a.arg.as_ref().and_then(|x| x.expr.check(schema).ok());
                let target = if t == Some(DataType::Float64) {
                    polars::prelude::DataType::Float64
                } else {
                    polars::prelude::DataType::Int64
                };
                self.one_chunk(e.cast(target.clone())).sum().cast(target)
            }
            ("mean", Some(e)) => self.one_chunk(e).mean(),
            ("min", Some(e)) => e.min(),
            ("max", Some(e)) => e.max(),
            ("first", Some(e)) => e.first(),
            ("sorted_distinct_list", Some(e)) => self.distinct_list(e),
            (f, _) => {
                return Err(RunError::internal(format!(
                    "aggregation {f} without argument"
                )))
            }
        };
        Ok(e.alias(a.name.as_str()))
    }
}

/// An aggregation's argument as a polars expression (`None` for `count: "*"`). The
/// expression was checked when the pipeline was compiled: a failure here is a bug.
fn lower_arg(a: &Aggregation, schema: &Schema) -> Result<Option<polars::prelude::Expr>, RunError> {
    a.arg
        .as_ref()
        .map(|e| {
            e.expr
                .to_polars(schema)
                .map_err(|e| RunError::internal(e.message))
        })
        .transpose()
}

/// Per row, the union of two lists of strings that are each sorted (byte order, as polars
/// sorts strings) and without repeats: one linear merge, where exploding the two lists,
/// deduplicating and sorting again measured 2-3x slower on 3 M names. A null list is empty.
fn merge_sorted_strings(
    a: polars::prelude::Expr,
    b: polars::prelude::Expr,
) -> polars::prelude::Expr {
    a.map_many(
        |cols| merge_string_lists(&cols[0], &cols[1]),
        &[b],
        |_, fields| Ok(fields[0].clone()),
    )
}

fn merge_string_lists(
    a: &polars::prelude::Column,
    b: &polars::prelude::Column,
) -> polars::prelude::PolarsResult<polars::prelude::Column> {
    use polars::prelude::{IntoColumn, ListBuilderTrait, ListStringChunkedBuilder};
    use std::cmp::Ordering;
    let (a, b) = (a.list()?.rechunk(), b.list()?.rechunk());
    let (la, lb) = (a.downcast_as_array(), b.downcast_as_array());
    let (ia, ib) = (a.get_inner(), b.get_inner());
    let (ia, ib) = (ia.str()?.rechunk(), ib.str()?.rechunk());
    let (va, vb) = (ia.downcast_as_array(), ib.downcast_as_array());
    // The value positions of row `i` (a null list is empty).
    let span = |l: &polars::prelude::LargeListArray, i: usize| {
        if l.validity().is_none_or(|v| v.get_bit(i)) {
            let o = l.offsets();
            o[i] as usize..o[i + 1] as usize
        } else {
            0..0
        }
    };
    let mut out = ListStringChunkedBuilder::new(a.name().clone(), a.len(), va.len() + vb.len());
    let mut merged: Vec<&str> = Vec::new();
    for i in 0..a.len() {
        merged.clear();
        // Null values are left out, as the list aggregation leaves them out.
        let mut x = span(la, i).filter_map(|j| va.get(j)).peekable();
        let mut y = span(lb, i).filter_map(|j| vb.get(j)).peekable();
        loop {
            let next = match (x.peek(), y.peek()) {
                (Some(p), Some(q)) => match p.as_bytes().cmp(q.as_bytes()) {
                    Ordering::Less => x.next(),
                    Ordering::Greater => y.next(),
                    Ordering::Equal => {
                        y.next();
                        x.next()
                    }
                },
                (Some(_), None) => x.next(),
                (None, Some(_)) => y.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        out.append_values_iter(merged.iter().copied());
    }
    Ok(out.finish().into_column())
}

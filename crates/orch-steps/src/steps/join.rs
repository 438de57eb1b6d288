//! `join`: joins two inputs (left = first, right = second) on one or more key pairs.
//!
//! Output columns: the left columns, then the right columns other than the right keys
//! (key values are coalesced into the left key columns for every join kind). A non-key
//! column present on both sides is an error unless `suffix` is set, in which case the right
//! one is renamed `<name><suffix>`. `semi` and `anti` keep only the left columns.

use crate::common::{fingerprint_of, ColRef};
use crate::error::RunError;
use crate::step::{Arity, DeltaRule, Step, StepType};
use orch_spec::{Ctx, Diagnostic, Diagnostics, Fields, Schema, StepDecl};
use polars::prelude::{col, JoinArgs, JoinCoalesce, JoinType, LazyFrame, MaintainOrderJoin};
use serde::Serialize;

pub const TYPE: StepType = StepType {
    name: "join",
    summary: "Join two inputs: inner, left, right, full, semi, anti; one or more key pairs; clashing names need `suffix`.",
    arity: Arity::Exactly(2),
    example: "- id: invoices_accounts\n  type: join\n  inputs: [invoices, accounts]\n  how: inner\n  on: account_id\n",
    decode,
};

pub const HOWS: &[&str] = &["inner", "left", "right", "full", "semi", "anti"];

#[derive(Debug, Clone, Serialize)]
pub struct Join {
    pub how: String,
    pub left_on: Vec<ColRef>,
    pub right_on: Vec<ColRef>,
    pub suffix: Option<String>,
}

fn decode(_decl: &StepDecl, f: &mut Fields<'_>, ctx: &mut Ctx<'_>) -> Option<Box<dyn Step>> {
    let how = match f.take("how") {
        Some(n) => ctx.choice(n, "how", HOWS)?,
        None => "inner".to_string(),
    };
    let on = f.take("on");
    let left_on = f.take("left_on");
    let right_on = f.take("right_on");
    let (l, r) = match (on, left_on, right_on) {
        (Some(on), None, None) => {
            let keys = ColRef::list(on, "on", ctx)?;
            (keys.clone(), keys)
        }
        (None, Some(l), Some(r)) => {
            let l = ColRef::list(l, "left_on", ctx)?;
            let r = ColRef::list(r, "right_on", ctx)?;
            if l.len() != r.len() {
                ctx.error(
                    Diagnostic::error(format!(
                        "`left_on` has {} keys but `right_on` has {}",
                        l.len(),
                        r.len()
                    ))
                    .at(f.span())
                    .hint("give the same number of keys on each side, paired in order"),
                );
                return None;
            }
            (l, r)
        }
        _ => {
            ctx.error(
                Diagnostic::error("a join needs its keys: `on` (same names on both sides) or `left_on` and `right_on`")
                    .at(f.span())
                    .hint("for example `on: account_id`, or `left_on: acct` with `right_on: account_id`"),
            );
            return None;
        }
    };
    if l.is_empty() {
        ctx.error(Diagnostic::error("a join needs at least one key").at(f.span()));
        return None;
    }
    let suffix = f.take("suffix").and_then(|n| ctx.string(n, "suffix"));
    Some(Box::new(Join {
        how,
        left_on: l,
        right_on: r,
        suffix,
    }))
}

impl Join {
    fn keeps_right(&self) -> bool {
        !matches!(self.how.as_str(), "semi" | "anti")
    }
}

impl Step for Join {
    fn schema(&self, inputs: &[&Schema], diags: &mut Diagnostics) -> Option<Schema> {
        let (left, right) = (inputs[0], inputs[1]);
        let errors_before = diags.error_count();
        for (l, r) in self.left_on.iter().zip(&self.right_on) {
            let lt = l.resolve(left, "the left input", diags);
            let rt = r.resolve(right, "the right input", diags);
            // The same type on both sides: polars compares keys without casting, so an
            // int64 key against a float64 one (or a date against a datetime) would only fail
            // once the run reached the join.
            if let (Some(lt), Some(rt)) = (lt, rt) {
                if lt != rt {
                    let hint = match lt.unify(rt) {
                        // Cast the side whose type is not the common one.
                        Some(to) => {
                            let (name, from) = if to == *lt {
                                (&r.name, rt)
                            } else {
                                (&l.name, lt)
                            };
                            format!("cast `{name}` ({from}) first with a `derive` step: `{name}: CAST({name} AS {to})`")
                        }
                        None => "cast one side first with a `derive` step, e.g. CAST(x AS int64)"
                            .to_string(),
                    };
                    diags.push(
                        Diagnostic::error(format!(
                            "join keys `{}` ({lt}) and `{}` ({rt}) have incompatible types",
                            l.name, r.name
                        ))
                        .at(l.span)
                        .hint(hint),
                    );
                }
            }
        }
        if diags.error_count() > errors_before {
            return None;
        }
        let mut out = left.clone();
        if !self.keeps_right() {
            return Some(out);
        }
        let right_keys: Vec<&str> = self.right_on.iter().map(|c| c.name.as_str()).collect();
        let mut clashes = Vec::new();
        for (name, t) in right.fields() {
            if right_keys.contains(&name.as_str()) {
                continue;
            }
            if left.contains(name) {
                match &self.suffix {
                    Some(s) => {
                        let renamed = format!("{name}{s}");
                        if out.contains(&renamed) {
                            clashes.push(renamed);
                        } else {
                            out.upsert(&renamed, t.clone());
                        }
                    }
                    None => clashes.push(name.clone()),
                }
            } else {
                out.upsert(name, t.clone());
            }
        }
        if !clashes.is_empty() {
            let list: Vec<String> = clashes.iter().map(|c| format!("`{c}`")).collect();
            diags.push(
                Diagnostic::error(format!(
                    "both join inputs have the column(s) {}",
                    list.join(", ")
                ))
                .at(self.left_on[0].span)
                .hint("set `suffix: _right` to rename the right-hand copies, or drop/rename them first with a `select` step"),
            );
            return None;
        }
        Some(out)
    }

    fn join_keys(&self) -> Option<(Vec<String>, Vec<String>)> {
        let names = |v: &[crate::common::ColRef]| v.iter().map(|c| c.name.clone()).collect();
        Some((names(&self.left_on), names(&self.right_on)))
    }

    /// The output follows the left input (the right one for a right join); the other side
    /// only orders several matches of one row (see `compile`: not when its keys are unique),
    /// and a side read for its keys only (semi, anti) sets no order.
    fn input_order_matters(&self, input: usize) -> bool {
        match self.how.as_str() {
            "semi" | "anti" => input == 0,
            _ => true,
        }
    }

    fn follows_left_order(&self) -> bool {
        matches!(self.how.as_str(), "inner" | "left" | "semi" | "anti")
    }

    fn delta_rule(&self) -> DeltaRule {
        // Only where old output rows can never change: a new row on the preserved side
        // cannot turn an earlier unmatched (null-filled) row into a matched one.
        match self.how.as_str() {
            "inner" => DeltaRule::Join {
                left: true,
                right: true,
            },
            "left" | "semi" | "anti" => DeltaRule::Join {
                left: true,
                right: false,
            },
            "right" => DeltaRule::Join {
                left: false,
                right: true,
            },
            _ => DeltaRule::Recompute,
        }
    }

    fn fingerprint(&self) -> String {
        fingerprint_of(TYPE.name, self)
    }

    fn to_polars(
        &self,
        mut inputs: Vec<LazyFrame>,
        schemas: &[&Schema],
    ) -> Result<LazyFrame, RunError> {
        let right = inputs
            .pop()
            .ok_or_else(|| RunError::internal("join without right input"))?;
        let left = inputs
            .pop()
            .ok_or_else(|| RunError::internal("join without left input"))?;
        let how = match self.how.as_str() {
            "inner" => JoinType::Inner,
            "left" => JoinType::Left,
            "right" => JoinType::Right,
            "full" => JoinType::Full,
            "semi" => JoinType::Semi,
            "anti" => JoinType::Anti,
            other => return Err(RunError::internal(format!("unknown join kind {other}"))),
        };
        let left_schema = schemas[0];
        let right_schema = schemas[1];
        // Rename clashing right columns ourselves so the suffix rule is exactly ours.
        let right = match &self.suffix {
            Some(s) if self.keeps_right() => {
                let keys: Vec<&str> = self.right_on.iter().map(|c| c.name.as_str()).collect();
                let (old, new): (Vec<String>, Vec<String>) = right_schema
                    .names()
                    .filter(|n| !keys.contains(n) && left_schema.contains(n))
                    .map(|n| (n.to_string(), format!("{n}{s}")))
                    .unzip();
                if old.is_empty() {
                    right
                } else {
                    right.rename(old, new, true)
                }
            }
            _ => right,
        };
        let left_on: Vec<_> = self.left_on.iter().map(|c| col(c.name.as_str())).collect();
        let right_on: Vec<_> = self.right_on.iter().map(|c| col(c.name.as_str())).collect();
        let order = match how {
            JoinType::Inner | JoinType::Left => MaintainOrderJoin::Left,
            JoinType::Right => MaintainOrderJoin::Right,
            _ => MaintainOrderJoin::None,
        };
        let mut args = JoinArgs::new(how);
        args.coalesce = JoinCoalesce::CoalesceColumns;
        // Rows come out in the order of the left input (of the right one for a right join):
        // polars otherwise follows whichever side it hashes, the smaller one, so the same
        // rows would come out in another order when the new rows of an incremental run are
        // fewer than the other side's, and a float sum or `first` downstream would differ
        // from a full recompute.
        args.maintain_order = order;
        let joined = left.join(right, left_on, right_on, args);
        // Fix the column order to the documented one (polars puts right-join keys last).
        let out_cols: Vec<_> = {
            let mut d = Diagnostics::new();
            let s = self
                .schema(schemas, &mut d)
                .ok_or_else(|| RunError::internal("join schema failed after compile"))?;
            s.names().map(col).collect()
        };
        Ok(joined.select(out_cols))
    }
}

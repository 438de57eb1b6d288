//! Incremental runs: which steps can process only the rows appended since the last run.
//!
//! Every step of a run is in one of four states, decided before anything runs:
//!
//! - `Unchanged`: its fingerprint matches the last successful run.
//! - `Delta`: its inputs only gained rows, and its [`DeltaRule`] says how the new output rows
//!   follow from the new input rows (a row-wise step maps them; a join matches them against
//!   the other side). Its new rows are computed alone; its whole result is still available
//!   (lazily) to any step that needs it.
//! - `Merged`: an aggregation whose stored state is merged with the partial result of the
//!   new rows; its result is whole again (downstream steps see a changed table).
//! - `Updated`: a join whose right input is `Merged` and grouped by exactly the join's right
//!   keys, and whose left input only gained rows (or none): besides the new left rows, only
//!   the rows whose key the merge touched changed. An aggregation over it whose group keys
//!   come from the left input recomputes just the groups those rows fall in
//!   (`late_payment`: invoices joined with their merged per-invoice amounts, then summed per
//!   account).
//! - `Changed`: recomputed from its whole inputs; `why` says what prevented the rest.
//!
//! The state of a `Delta` step rests on the *delta fingerprint* (options, params and inputs,
//! without the content of incremental sources): equal to the last run's, only appended
//! rows differ.

use crate::exec::{CacheCtx, Preloaded};
use crate::plan::Plan;
use orch_steps::{DeltaRule, RunError};
use polars::prelude::{col, lit, IntoLazy, JoinArgs, JoinType, LazyFrame};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DState {
    Unchanged,
    Delta,
    Merged,
    Updated,
    Changed { why: Option<String> },
}

impl DState {
    fn changed(why: impl Into<String>) -> DState {
        DState::Changed {
            why: Some(why.into()),
        }
    }
}

/// Aggregations that keep mergeable state: those with [`DeltaRule::Merge`] fed (through any
/// steps) by an incremental source. They are materialised and their state is stored.
pub fn stateful(plan: &Plan) -> Vec<bool> {
    let mut fed = vec![false; plan.steps.len()];
    let mut out = vec![false; plan.steps.len()];
    for &i in &plan.order {
        let s = &plan.steps[i];
        fed[i] = s.step.incremental().is_some() || s.inputs.iter().any(|&j| fed[j]);
        out[i] = fed[i] && s.step.delta_rule() == DeltaRule::Merge;
    }
    out
}

/// The state of every step (see the module docs).
pub fn states(
    plan: &Plan,
    c: &CacheCtx,
    preloaded: &HashMap<usize, Preloaded>,
    merge_state_ok: &dyn Fn(usize) -> bool,
) -> Vec<DState> {
    let n = plan.steps.len();
    let mut st = vec![DState::Changed { why: None }; n];
    if c.full_refresh {
        return st;
    }
    for &i in &plan.order {
        let s = &plan.steps[i];
        let Some(prev) = c.previous.get(&s.id) else {
            continue;
        };
        if prev.fingerprint == c.fingerprints[i] {
            st[i] = DState::Unchanged;
            continue;
        }
        let same_shape =
            prev.delta_fp.as_deref() == c.delta_fingerprints.get(i).map(|s| s.as_str());
        let ins: Vec<&DState> = s.inputs.iter().map(|&j| &st[j]).collect();
        let is = |k: usize, want: &DState| ins.get(k).is_some_and(|s| *s == want);
        let any_delta = ins.iter().any(|s| **s == DState::Delta);
        let all_ok = ins
            .iter()
            .all(|s| matches!(s, DState::Unchanged | DState::Delta));
        st[i] = if s.step.incremental().is_some() {
            match preloaded.get(&i) {
                Some(p) if p.incremental && p.new.is_some() && same_shape => DState::Delta,
                _ => DState::Changed { why: None },
            }
        } else if same_shape && joins_merged_groups(plan, i, &st) {
            DState::Updated
        } else if !any_delta && !is(0, &DState::Updated) {
            DState::Changed { why: None }
        } else if !same_shape {
            DState::changed("its options or inputs changed")
        } else {
            match s.step.delta_rule() {
                DeltaRule::RowWise
                    if is(0, &DState::Delta)
                        && ins.iter().skip(1).all(|s| **s == DState::Unchanged) =>
                {
                    DState::Delta
                }
                DeltaRule::Stack if all_ok => DState::Delta,
                DeltaRule::Join { left, right } if all_ok => {
                    let (l, r) = (is(0, &DState::Delta), is(1, &DState::Delta));
                    if (l && !r && left) || (r && !l && right) || (l && r && left && right) {
                        DState::Delta
                    } else {
                        DState::changed("this join cannot add new rows on that side alone")
                    }
                }
                DeltaRule::Merge
                    if is(0, &DState::Delta)
                        || (is(0, &DState::Updated) && groups_from_left(plan, i)) =>
                {
                    if merge_state_ok(i) {
                        DState::Merged
                    } else {
                        DState::changed("no intact stored state to merge into")
                    }
                }
                DeltaRule::Recompute => DState::changed(format!(
                    "a `{}` step is recomputed when its input gains rows",
                    s.type_name
                )),
                _ => DState::changed("an input changed in more than appended rows"),
            }
        };
    }
    st
}

/// Whether join `i` is `Updated` (see the module docs): its right input merged new rows
/// into groups keyed by exactly the join's right keys (so each left row meets at most one
/// right row, and only rows with a touched key changed), and its left input is unchanged or
/// only gained rows. Inner, left, semi and anti joins (a touched key can add, change or
/// remove the output rows of its left rows, never those of other keys).
fn joins_merged_groups(plan: &Plan, i: usize, st: &[DState]) -> bool {
    let s = &plan.steps[i];
    let (DeltaRule::Join { left: true, .. }, [l, r]) = (s.step.delta_rule(), s.inputs.as_slice())
    else {
        return false;
    };
    let Some((_, mut keys)) = s.step.join_keys() else {
        return false;
    };
    let mut groups = plan.steps[*r].step.group_keys();
    groups.sort();
    keys.sort();
    st[*r] == DState::Merged
        && matches!(st[*l], DState::Delta | DState::Unchanged)
        && plan.steps[*r].step.delta_rule() == DeltaRule::Merge
        && !groups.is_empty()
        && groups == keys
}

/// Whether aggregation `i` over an `Updated` join groups by columns of the join's left
/// input only: they come through the join unchanged, so the groups of the changed rows are
/// the groups of their left rows (a column of the right input could have had another value
/// before).
fn groups_from_left(plan: &Plan, i: usize) -> bool {
    let join = &plan.steps[plan.steps[i].inputs[0]];
    let left = &plan.steps[join.inputs[0]].schema;
    let keys = plan.steps[i].step.group_keys();
    !keys.is_empty() && keys.iter().all(|k| left.contains(k))
}

/// Builds lazy plans for a run: whole results, and the new rows of `Delta` steps.
pub struct Builder<'a> {
    pub plan: &'a Plan,
    pub states: &'a [DState],
    pub preloaded: &'a HashMap<usize, Preloaded>,
    /// New rows already materialised (data checks of `Delta` steps).
    pub deltas: &'a HashMap<usize, polars::prelude::DataFrame>,
    /// The whole result of step `i` (as the executor builds it).
    pub whole: &'a dyn Fn(usize) -> Result<LazyFrame, RunError>,
}

impl Builder<'_> {
    fn inputs_schemas(&self, i: usize) -> Vec<&orch_spec::Schema> {
        let s = &self.plan.steps[i];
        s.inputs
            .iter()
            .map(|&j| &self.plan.steps[j].schema)
            .collect()
    }

    fn apply(&self, i: usize, inputs: Vec<LazyFrame>) -> Result<LazyFrame, RunError> {
        self.plan.steps[i]
            .step
            .to_polars(inputs, &self.inputs_schemas(i))
    }

    /// The rows step `i` (in state `Delta`) gained in this run.
    pub fn delta(&self, i: usize) -> Result<LazyFrame, RunError> {
        if let Some(df) = self.deltas.get(&i) {
            return Ok(df.clone().lazy());
        }
        let s = &self.plan.steps[i];
        if s.step.incremental().is_some() {
            let p = self.preloaded.get(&i).and_then(|p| p.new.clone());
            return p
                .map(|df| df.lazy())
                .ok_or_else(|| RunError::internal("delta of a source without new rows"));
        }
        let delta_in = |k: usize| self.states[s.inputs[k]] == DState::Delta;
        match s.step.delta_rule() {
            DeltaRule::RowWise => {
                let mut inputs = vec![self.delta(s.inputs[0])?];
                for &j in &s.inputs[1..] {
                    inputs.push((self.whole)(j)?);
                }
                self.apply(i, inputs)
            }
            DeltaRule::Stack => {
                let inputs = s
                    .inputs
                    .iter()
                    .map(|&j| match self.states[j] {
                        DState::Delta => self.delta(j),
                        // An unchanged input adds nothing, but keeps its columns.
                        _ => Ok((self.whole)(j)?.limit(0)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.apply(i, inputs)
            }
            DeltaRule::Join { .. } => {
                let (l, r) = (s.inputs[0], s.inputs[1]);
                match (delta_in(0), delta_in(1)) {
                    (true, false) => {
                        let (dl, right) = self.new_left_and_matching_right(i)?;
                        self.apply(i, vec![dl, right])
                    }
                    (false, true) => self.apply(i, vec![(self.whole)(l)?, self.delta(r)?]),
                    _ => {
                        // (old L + new L) x (old R + new R), less old L x old R.
                        let (dl, right) = self.new_left_and_matching_right(i)?;
                        let a = self.apply(i, vec![dl, right])?;
                        // Only old left rows whose key the new right rows carry can match.
                        // The new right rows are read here, once (they are few, and joined
                        // below anyway): their keys become a filter on the old left rows.
                        let dr = self.delta(r)?.collect().map_err(|e| {
                            RunError::engine(
                                format!("step `{}`: the new rows of its right input", s.id),
                                e,
                            )
                        })?;
                        let old_l = match s.step.join_keys() {
                            Some((lk, rk)) => {
                                let rk: Vec<_> = rk.iter().map(|c| col(c.as_str())).collect();
                                let keys = dr
                                    .clone()
                                    .lazy()
                                    .select(rk)
                                    .unique(None, Default::default())
                                    .collect()
                                    .map_err(|e| RunError::engine("new join keys", e))?;
                                self.old_matching(l, &lk, keys)?
                            }
                            None => self.old(l)?,
                        };
                        let b = self.apply(i, vec![old_l, dr.lazy()])?;
                        crate::exec::concat_lazy(vec![a, b])
                    }
                }
            }
            _ => Err(RunError::internal(format!(
                "step `{}` has no row delta",
                s.id
            ))),
        }
    }

    /// The new rows of join `i`'s left input, read once, and its whole right input filtered
    /// to the keys they carry: the other right rows cannot match them (in an inner, left,
    /// semi or anti join), and polars would otherwise read and hash the whole right input
    /// (product_mix's new line items against a million invoices). The filter reaches the
    /// right input's scans.
    fn new_left_and_matching_right(&self, i: usize) -> Result<(LazyFrame, LazyFrame), RunError> {
        let s = &self.plan.steps[i];
        let (l, r) = (s.inputs[0], s.inputs[1]);
        let (dl, right) = (self.delta(l)?, (self.whole)(r)?);
        let Some((left_keys, right_keys)) = s.step.join_keys() else {
            return Ok((dl, right));
        };
        let engine = |e| {
            RunError::engine(
                format!("step `{}`: the new rows of its left input", s.id),
                e,
            )
        };
        let dl = dl.collect().map_err(engine)?;
        let lk: Vec<_> = left_keys.iter().map(|c| col(c.as_str())).collect();
        let keys = dl
            .clone()
            .lazy()
            .select(lk)
            .unique(None, Default::default())
            .collect()
            .map_err(engine)?;
        Ok((dl.lazy(), keeping_keys(right, &right_keys, keys)?))
    }

    /// The old rows of step `i` whose columns `cols` match a row of `keys` (a semi join,
    /// NULL matching nothing), with the filter pushed as far up as those columns go
    /// unchanged: for a join of new rows against an old side, only the few old rows that can
    /// match are read and joined.
    fn old_matching(
        &self,
        i: usize,
        cols: &[String],
        keys: polars::prelude::DataFrame,
    ) -> Result<LazyFrame, RunError> {
        let s = &self.plan.steps[i];
        let first_has = |c: &String| {
            s.inputs
                .first()
                .is_some_and(|&j| self.plan.steps[j].schema.contains(c))
        };
        // Steps that keep the first input's columns as they are: joins (new columns come
        // from the other side) and data checks. A derive might redefine one: stop there.
        let passes_through = self.states[i] == DState::Delta
            && (matches!(s.step.delta_rule(), DeltaRule::Join { .. }) || s.type_name == "check");
        if passes_through && cols.iter().all(first_has) {
            let mut inputs = vec![self.old_matching(s.inputs[0], cols, keys)?];
            for &j in &s.inputs[1..] {
                inputs.push(self.old(j)?);
            }
            return self.apply(i, inputs);
        }
        keeping_keys(self.old(i)?, cols, keys)
    }

    /// The group keys (`keys`, columns of the join's left input) of the rows of `Updated`
    /// join `j` that changed: the new left rows, and the left rows whose join key the
    /// merged right input touched (the keys of the new rows of its input). Their groups are
    /// all an aggregation over `j` must recompute.
    pub fn touched_by_update(&self, j: usize, keys: &[String]) -> Result<LazyFrame, RunError> {
        let s = &self.plan.steps[j];
        let (l, r) = (s.inputs[0], s.inputs[1]);
        let Some((left_keys, right_keys)) = s.step.join_keys() else {
            return Err(RunError::internal("an updated join without keys"));
        };
        let merged = &self.plan.steps[r];
        // The right keys the merge touched, named as on the left.
        let renamed: Vec<_> = right_keys
            .iter()
            .zip(&left_keys)
            .map(|(rk, lk)| col(rk.as_str()).alias(lk.as_str()))
            .collect();
        let merged_keys = self
            .delta(merged.inputs[0])?
            .select(renamed)
            .unique(None, Default::default())
            .collect()
            .map_err(|e| {
                RunError::engine(format!("step `{}`: the groups it merged", merged.id), e)
            })?;
        let groups: Vec<_> = keys.iter().map(|c| col(c.as_str())).collect();
        let mut parts =
            vec![keeping_keys((self.whole)(l)?, &left_keys, merged_keys)?.select(groups.clone())];
        if self.states[l] == DState::Delta {
            parts.push(self.delta(l)?.select(groups));
        }
        Ok(crate::exec::concat_lazy(parts)?.unique(None, Default::default()))
    }

    /// The result step `i` had at the last run (before this run's new rows).
    pub fn old(&self, i: usize) -> Result<LazyFrame, RunError> {
        let s = &self.plan.steps[i];
        if self.states[i] != DState::Delta {
            return (self.whole)(i);
        }
        if s.step.incremental().is_some() {
            let parts = self
                .preloaded
                .get(&i)
                .map(|p| p.parts.clone())
                .unwrap_or_default();
            // The last run read no data rows (a header-only extract): no old rows, same columns.
            if parts.is_empty() {
                return Ok((self.whole)(i)?.limit(0));
            }
            return crate::exec::scan_stored(&parts);
        }
        let inputs = s
            .inputs
            .iter()
            .map(|&j| self.old(j))
            .collect::<Result<Vec<_>, _>>()?;
        self.apply(i, inputs)
    }
}

/// The rows of `old` whose columns `cols` match a row of `keys` (NULL matching nothing).
/// The first key's values filter with `is_in`, which polars pushes down to stored parts
/// (row groups whose statistics exclude every key are not read: new invoices have new
/// ids); a semi join read and probed every row. With more keys, the semi join then keeps
/// the exact combinations.
fn keeping_keys(
    old: LazyFrame,
    cols: &[String],
    keys: polars::prelude::DataFrame,
) -> Result<LazyFrame, RunError> {
    let (Some(first_col), Some(first_key)) = (cols.first(), keys.columns().first()) else {
        return Err(RunError::internal("a join without keys"));
    };
    let first = first_key
        .as_materialized_series()
        .drop_nulls()
        .unique()
        .map_err(|e| RunError::engine("matching new join keys", e))?;
    let old = old.filter(col(first_col.as_str()).is_in(lit(first).implode(true), false));
    if cols.len() == 1 {
        return Ok(old);
    }
    let on: Vec<_> = cols.iter().map(|c| col(c.as_str())).collect();
    let key_cols: Vec<_> = keys
        .get_column_names()
        .into_iter()
        .map(|n| col(n.clone()))
        .collect();
    Ok(old.join(keys.lazy(), on, key_cols, JoinArgs::new(JoinType::Semi)))
}

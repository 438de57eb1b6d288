//! Type checking: every node's type from its children's, with errors phrased for users.
//!
//! The rules here are shared with lowering (which needs the same coercions), so the polars
//! translation can never disagree with what `check` accepted.

use chrono::{NaiveDate, NaiveDateTime};
use orch_spec::suggest;
use orch_spec::{DataType, Schema};

use crate::ast::{BinaryOp, Expr, Literal, UnaryOp};
use crate::error::ExprError;
use crate::functions::{self, is_bool, is_orderable, is_scalar, is_string};

impl Expr {
    /// Type-checks against the input columns and returns the expression's type.
    ///
    /// Reports every independent problem (an error below a node suppresses only the errors
    /// that would follow from it). Whether a filter is boolean is the caller's business.
    pub fn check(&self, schema: &Schema) -> Result<DataType, Vec<ExprError>> {
        let mut errs = Vec::new();
        match infer(self, schema, &mut errs) {
            Some(t) if errs.is_empty() => Ok(t),
            _ => Err(errs),
        }
    }
}

fn infer(e: &Expr, schema: &Schema, errs: &mut Vec<ExprError>) -> Option<DataType> {
    let result = match e {
        Expr::Column(name) => column_type(name, schema),
        Expr::Literal(l) => Ok(l.data_type()),
        _ => {
            let mut types = Vec::new();
            let mut ok = true;
            e.for_each_child(&mut |c| match infer(c, schema, errs) {
                Some(t) => types.push(t),
                None => ok = false,
            });
            if !ok {
                return None;
            }
            node_type(e, &types)
        }
    };
    result.map_err(|err| errs.push(err)).ok()
}

pub(crate) fn column_type(name: &str, schema: &Schema) -> Result<DataType, ExprError> {
    if let Some(t) = schema.get(name) {
        return Ok(t.clone());
    }
    let hint = suggest::hint(name, schema.names());
    let quote_hint = (hint.is_none()).then(|| {
        format!(
            "if you meant the text \"{name}\", write it in single quotes: '{}'",
            name.replace('\'', "''")
        )
    });
    Err(ExprError::new(format!(
        "column `{name}` not found; {}",
        schema.describe_columns()
    ))
    .maybe_hint(hint)
    .maybe_hint(quote_hint))
}

/// The type of `e` given its children's types, in [`Expr::for_each_child`] order.
pub(crate) fn node_type(e: &Expr, types: &[DataType]) -> Result<DataType, ExprError> {
    match e {
        Expr::Column(_) | Expr::Literal(_) => unreachable_leaf(e),
        Expr::Unary { op, expr } => unary_type(*op, expr, &types[0]),
        Expr::Binary { op, left, right } => binary_type(*op, left, &types[0], right, &types[1]),
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => case_type(operand.as_deref(), branches, otherwise.as_deref(), types),
        Expr::Function { name, args } => functions::result_type(*name, args, types),
        Expr::Cast { expr, to, .. } => cast_type(expr, &types[0], to),
        Expr::IsNull { .. } => Ok(DataType::Bool),
        Expr::InList { expr, list, .. } => {
            let mut items = vec![(&**expr, &types[0])];
            items.extend(list.iter().zip(&types[1..]));
            common_type(&items).map_err(|(i, j)| {
                describe_mismatch(
                    "IN compares values of different types".into(),
                    items[i],
                    items[j],
                )
            })?;
            Ok(DataType::Bool)
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            let items = [
                (&**expr, &types[0]),
                (&**low, &types[1]),
                (&**high, &types[2]),
            ];
            let t = common_type(&items).map_err(|(i, j)| {
                describe_mismatch(
                    "BETWEEN compares values of different types".into(),
                    items[i],
                    items[j],
                )
            })?;
            if !is_orderable(&t) {
                return Err(ExprError::new(format!(
                    "BETWEEN cannot order values of type {t}"
                )));
            }
            Ok(DataType::Bool)
        }
        Expr::Like {
            expr,
            pattern,
            case_insensitive,
            ..
        } => {
            let kw = if *case_insensitive { "ILIKE" } else { "LIKE" };
            if !is_string(&types[0]) {
                return Err(ExprError::new(format!(
                    "{kw} applies to strings, but `{expr}` is {}",
                    types[0]
                ))
                .hint(format!("convert it with CAST({expr} AS string)")));
            }
            match &**pattern {
                Expr::Literal(Literal::String(_) | Literal::Null) => Ok(DataType::Bool),
                other => Err(ExprError::new(format!(
                    "the {kw} pattern must be a string literal, got `{other}`"
                ))
                .hint(
                    "compare with another column using =, starts_with(), ends_with() or contains()",
                )),
            }
        }
    }
}

fn unreachable_leaf(e: &Expr) -> Result<DataType, ExprError> {
    // Leaves are typed directly by the callers; answer sensibly anyway rather than panic.
    match e {
        Expr::Literal(l) => Ok(l.data_type()),
        _ => Err(ExprError::new(format!(
            "internal error: cannot type `{e}` without a schema"
        ))),
    }
}

fn unary_type(op: UnaryOp, expr: &Expr, t: &DataType) -> Result<DataType, ExprError> {
    match op {
        UnaryOp::Neg if t.is_numeric() => Ok(t.clone()),
        UnaryOp::Neg => Err(ExprError::new(format!(
            "cannot negate `{expr}`, which is {t}"
        ))),
        UnaryOp::Not if is_bool(t) => Ok(DataType::Bool),
        UnaryOp::Not => Err(
            ExprError::new(format!("NOT needs a bool, but `{expr}` is {t}")).hint(format!(
                "compare it to something, e.g. NOT ({expr} IS NULL)"
            )),
        ),
    }
}

pub(crate) fn binary_type(
    op: BinaryOp,
    l: &Expr,
    lt: &DataType,
    r: &Expr,
    rt: &DataType,
) -> Result<DataType, ExprError> {
    use BinaryOp::*;
    match op {
        And | Or => {
            for (e, t) in [(l, lt), (r, rt)] {
                if !is_bool(t) {
                    return Err(ExprError::new(format!(
                        "{} needs bool operands, but `{e}` is {t}",
                        op.symbol()
                    )));
                }
            }
            Ok(DataType::Bool)
        }
        Concat => {
            for (e, t) in [(l, lt), (r, rt)] {
                if !is_scalar(t) {
                    return Err(ExprError::new(format!(
                        "|| cannot join `{e}`, which is {t}"
                    )));
                }
            }
            Ok(DataType::String)
        }
        Eq | NotEq | Lt | LtEq | Gt | GtEq => {
            let t = common_type(&[(l, lt), (r, rt)]).map_err(|_| {
                describe_mismatch(format!("cannot compare {lt} with {rt}"), (l, lt), (r, rt))
            })?;
            if !is_orderable(&t) {
                return Err(ExprError::new(format!("cannot compare values of type {t}")));
            }
            Ok(DataType::Bool)
        }
        Add | Sub | Mul | Div | Mod => {
            if lt.is_numeric() && rt.is_numeric() {
                return Ok(match op {
                    Div => DataType::Float64,
                    _ => lt.unify(rt).unwrap_or(DataType::Float64),
                });
            }
            let mut err = ExprError::new(format!(
                "`{}` cannot be applied to {lt} and {rt} (in `{l} {} {r}`)",
                op.symbol(),
                op.symbol()
            ));
            let temporal = |t: &DataType| t.is_temporal();
            if op == Sub && temporal(lt) && temporal(rt) {
                err = err.hint(format!(
                    "use date_diff_days({l}, {r}) for the number of days between two dates"
                ));
            } else if matches!(op, Add | Sub) && (temporal(lt) || temporal(rt)) {
                let (d, n) = if temporal(lt) { (l, r) } else { (r, l) };
                let n = if op == Sub {
                    format!("-({n})")
                } else {
                    n.to_string()
                };
                err = err.hint(format!(
                    "use date_add_days({d}, {n}) to shift a date by days"
                ));
            } else if op == Add && (*lt == DataType::String || *rt == DataType::String) {
                err = err.hint(format!(
                    "use {l} || {r} or concat({l}, {r}) to join strings"
                ));
            } else if *lt == DataType::String || *rt == DataType::String {
                err = err.hint(
                    "convert strings to numbers with CAST(x AS float64) or TRY_CAST(x AS float64)",
                );
            }
            Err(err)
        }
    }
}

fn case_type(
    operand: Option<&Expr>,
    branches: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
    types: &[DataType],
) -> Result<DataType, ExprError> {
    if branches.is_empty() {
        return Err(ExprError::new(
            "CASE needs at least one WHEN ... THEN ... branch",
        ));
    }
    let mut i = 0;
    let operand_item = operand.map(|o| {
        i += 1;
        (o, &types[0])
    });
    let mut conds = Vec::new();
    let mut results = Vec::new();
    for (w, t) in branches {
        conds.push((w, &types[i]));
        results.push((t, &types[i + 1]));
        i += 2;
    }
    if let Some(e) = otherwise {
        results.push((e, &types[i]));
    }
    match operand_item {
        Some(op) => {
            let mut items = vec![op];
            items.extend(conds.iter().copied());
            common_type(&items).map_err(|(a, b)| {
                describe_mismatch(
                    "CASE compares values of different types".into(),
                    items[a],
                    items[b],
                )
            })?;
        }
        None => {
            for (w, t) in &conds {
                if !is_bool(t) {
                    return Err(ExprError::new(format!(
                        "a CASE WHEN condition must be bool, but `{w}` is {t}"
                    )));
                }
            }
        }
    }
    common_type(&results).map_err(|(a, b)| {
        describe_mismatch(
            "CASE branches return different types".into(),
            results[a],
            results[b],
        )
    })
}

/// Which casts make sense; the rest are user errors rather than runtime surprises.
pub(crate) fn cast_type(
    expr: &Expr,
    from: &DataType,
    to: &DataType,
) -> Result<DataType, ExprError> {
    use DataType::*;
    let ok = match (from, to) {
        (_, List(_)) => false,
        (a, b) if a == b => true,
        (Null, _) => true,
        (List(_), _) => false,
        (_, String) => true,
        (String, _) => true,
        (Int64 | Float64 | Bool, Int64 | Float64 | Bool) => true,
        (Date, Datetime) | (Datetime, Date) => true,
        _ => false,
    };
    if ok {
        Ok(to.clone())
    } else {
        let mut e = ExprError::new(format!("cannot cast `{expr}` from {from} to {to}"));
        if from.is_temporal() && to.is_numeric() {
            e = e.hint("use year(), month(), day() or date_diff_days() to get numbers from dates");
        }
        Err(e)
    }
}

/// A string literal read as a date or timestamp, for comparisons such as
/// `date_issued >= '2024-01-01'`.
pub(crate) fn literal_as(e: &Expr, target: &DataType) -> Option<Literal> {
    let Expr::Literal(Literal::String(s)) = e else {
        return None;
    };
    match target {
        DataType::Date => parse_date(s).map(Literal::Date),
        DataType::Datetime => parse_timestamp(s).map(Literal::Timestamp),
        _ => None,
    }
}

/// ISO `yyyy-mm-dd` (surrounding spaces allowed).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// ISO date and time with a space or `T`, optional seconds and fraction; a bare date means
/// midnight.
pub(crate) fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    parse_date(s).and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// The common type of values that must agree (comparison operands, CASE branches,
/// coalesce arguments...). String literals adapt to a date/datetime side when they parse
/// as one. On failure, the indices of two items that disagree.
pub(crate) fn common_type(items: &[(&Expr, &DataType)]) -> Result<DataType, (usize, usize)> {
    let is_str_lit = |e: &Expr| matches!(e, Expr::Literal(Literal::String(_)));
    let mut acc = DataType::Null;
    let mut acc_idx: Option<usize> = None;
    for (i, (e, t)) in items.iter().enumerate() {
        if is_str_lit(e) {
            continue;
        }
        match acc.unify(t) {
            Some(u) => {
                if acc_idx.is_none() && **t != DataType::Null {
                    acc_idx = Some(i);
                }
                acc = u;
            }
            None => return Err((acc_idx.unwrap_or(0), i)),
        }
    }
    for (i, (e, _)) in items.iter().enumerate() {
        if !is_str_lit(e) {
            continue;
        }
        if acc.is_temporal() {
            if literal_as(e, &acc).is_none() {
                return Err((i, acc_idx.unwrap_or(0)));
            }
        } else {
            match acc.unify(&DataType::String) {
                Some(u) => acc = u,
                None => return Err((i, acc_idx.unwrap_or(0))),
            }
        }
    }
    Ok(acc)
}

/// "cannot compare int64 with string: `a` is int64 but `b` is string" plus fix-it hints.
pub(crate) fn describe_mismatch(
    what: String,
    (e1, t1): (&Expr, &DataType),
    (e2, t2): (&Expr, &DataType),
) -> ExprError {
    let mut err = ExprError::new(format!("{what}: `{e1}` is {t1} but `{e2}` is {t2}"));
    for ((e, t), (_, other)) in [((e1, t1), (e2, t2)), ((e2, t2), (e1, t1))] {
        if *t != DataType::String || !other.is_temporal() {
            continue;
        }
        err = match e {
            Expr::Literal(Literal::String(s)) => err.hint(format!(
                "'{s}' is not a valid {other}; write dates as 'yyyy-mm-dd' (or DATE 'yyyy-mm-dd') and datetimes as 'yyyy-mm-dd HH:MM:SS'"
            )),
            _ => err.hint(format!("parse the string first, e.g. to_date({e}, 'yyyy-mm-dd')")),
        };
    }
    if (t1.is_numeric() && *t2 == DataType::String) || (t2.is_numeric() && *t1 == DataType::String)
    {
        err = err.hint(
            "convert with CAST(x AS float64) / CAST(x AS string) so both sides have one type",
        );
    }
    err
}

//! Lowering to native polars expressions (no UDFs), so polars can optimise, fuse and
//! stream them like hand-written lazy code.
//!
//! Types drive the translation: lowering recomputes each node's type with the same rules
//! as `check` and inserts the casts those rules imply (int64 -> float64 widening, string
//! literals read as dates, NULL literals typed to their context).

use orch_spec::{DataType, Schema};
use polars::prelude as pl;
use polars::prelude::{LiteralValue, NamedFrom, RoundMode, StrptimeOptions, TimeUnit};

use crate::ast::{BinaryOp, Expr, Literal, UnaryOp};
use crate::check::{column_type, common_type, literal_as, node_type};
use crate::datefmt;
use crate::error::ExprError;
use crate::functions::Func;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Our type as a polars type (datetimes: microseconds, no time zone).
pub fn to_polars_dtype(t: &DataType) -> pl::DataType {
    match t {
        DataType::Bool => pl::DataType::Boolean,
        DataType::Int64 => pl::DataType::Int64,
        DataType::Float64 => pl::DataType::Float64,
        DataType::String => pl::DataType::String,
        DataType::Date => pl::DataType::Date,
        DataType::Datetime => pl::DataType::Datetime(TimeUnit::Microseconds, None),
        DataType::List(inner) => pl::DataType::List(Box::new(to_polars_dtype(inner))),
        DataType::Null => pl::DataType::Null,
    }
}

/// A polars type as ours: all integer widths read as int64, all floats as float64, any
/// datetime unit as datetime. None for types expressions cannot use (categoricals,
/// structs, decimals, durations, binary, ...).
pub fn from_polars_dtype(t: &pl::DataType) -> Option<DataType> {
    Some(match t {
        pl::DataType::Boolean => DataType::Bool,
        t if t.is_integer() => DataType::Int64,
        t if t.is_float() => DataType::Float64,
        pl::DataType::String => DataType::String,
        pl::DataType::Date => DataType::Date,
        pl::DataType::Datetime(_, _) => DataType::Datetime,
        pl::DataType::List(inner) => DataType::List(Box::new(from_polars_dtype(inner)?)),
        pl::DataType::Null => DataType::Null,
        _ => return None,
    })
}

impl Expr {
    /// Translates to a polars expression over a frame with `schema`. Runs `check` first;
    /// on type errors returns the first one (call `check` to get them all).
    ///
    /// The result has the polars type of `check`'s type when input columns have the
    /// canonical polars types of [`to_polars_dtype`].
    pub fn to_polars(&self, schema: &Schema) -> Result<pl::Expr, ExprError> {
        if let Err(mut errs) = self.check(schema) {
            let more = errs.len().saturating_sub(1);
            let mut first = errs.swap_remove(0);
            if more > 0 {
                first
                    .hints
                    .push(format!("and {more} more problem(s) in this expression"));
            }
            return Err(first);
        }
        Ok(lower(self, schema)?.0)
    }
}

type Lowered = (pl::Expr, DataType);

fn lower(e: &Expr, schema: &Schema) -> Result<Lowered, ExprError> {
    match e {
        Expr::Column(name) => Ok((pl::col(name.as_str()), column_type(name, schema)?)),
        Expr::Literal(l) => Ok((lit(l), l.data_type())),
        Expr::Binary {
            op: BinaryOp::Concat,
            ..
        } => {
            // a || b || c becomes one concat_str over all parts rather than nested pairs.
            let mut leaves = Vec::new();
            concat_leaves(e, &mut leaves);
            let mut parts = Vec::with_capacity(leaves.len());
            for leaf in leaves {
                let (x, xt) = lower(leaf, schema)?;
                if !crate::functions::is_scalar(&xt) {
                    return Err(ExprError::new(format!(
                        "|| cannot join `{leaf}`, which is {xt}"
                    )));
                }
                parts.push(as_string(x, &xt));
            }
            Ok((pl::concat_str(parts, "", false), DataType::String))
        }
        _ => {
            let mut children = Vec::new();
            let mut first_err = None;
            e.for_each_child(&mut |c| match lower(c, schema) {
                Ok(x) => children.push(x),
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            });
            if let Some(err) = first_err {
                return Err(err);
            }
            let types: Vec<DataType> = children.iter().map(|(_, t)| t.clone()).collect();
            let t = node_type(e, &types)?;
            let pe = lower_node(e, children, &t)?;
            Ok((pe, t))
        }
    }
}

/// The operands of a left- or right-nested `||` chain, in order.
fn concat_leaves<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::Concat,
            left,
            right,
        } => {
            concat_leaves(left, out);
            concat_leaves(right, out);
        }
        other => out.push(other),
    }
}

fn null_of(t: &DataType) -> pl::Expr {
    pl::lit(pl::NULL).cast(to_polars_dtype(t))
}

fn lit(l: &Literal) -> pl::Expr {
    match l {
        Literal::Null => pl::lit(pl::NULL),
        Literal::Bool(b) => pl::lit(*b),
        // Typed: polars' plain `lit` makes "dynamic" numbers that take the type of whatever
        // they meet (or int32 alone); our literals are int64/float64.
        Literal::Int(i) => pl::Expr::Literal(pl::Scalar::from(*i).into()),
        Literal::Float(f) => pl::Expr::Literal(pl::Scalar::from(*f).into()),
        Literal::String(s) => pl::lit(s.clone()),
        Literal::Date(d) => pl::lit(days_since_epoch(d)).cast(pl::DataType::Date),
        Literal::Timestamp(t) => pl::lit(t.and_utc().timestamp_micros())
            .cast(pl::DataType::Datetime(TimeUnit::Microseconds, None)),
    }
}

fn days_since_epoch(d: &chrono::NaiveDate) -> i32 {
    // Dates come from chrono, whose range (±262,000 years) fits i32 days.
    (d.signed_duration_since(chrono::NaiveDate::default())
        .num_days()) as i32
}

/// Converts a value of type `from` to `to` where the typing rules allow it implicitly.
fn coerce(pe: pl::Expr, from: &DataType, to: &DataType) -> pl::Expr {
    match (from, to) {
        (a, b) if a == b => pe,
        (_, DataType::Null) => pe,
        (DataType::Null, t) => pe.cast(to_polars_dtype(t)),
        (DataType::Int64, DataType::Float64) => pe.cast(pl::DataType::Float64),
        (DataType::Date, DataType::Datetime) => pe.cast(to_polars_dtype(to)),
        _ => pe,
    }
}

/// Like [`coerce`], but string literals become dates/datetimes when `to` is temporal.
fn coerce_child(src: &Expr, (pe, from): Lowered, to: &DataType) -> pl::Expr {
    match literal_as(src, to) {
        Some(l) => lit(&l),
        None => coerce(pe, &from, to),
    }
}

/// A string argument; a bare NULL is typed as string so string operations accept it.
fn text((pe, t): Lowered) -> pl::Expr {
    coerce(pe, &t, &DataType::String)
}

/// Text of a scalar, as `CAST(x AS string)` would give it.
fn as_string(pe: pl::Expr, from: &DataType) -> pl::Expr {
    match from {
        DataType::String => pe,
        _ => pe.cast(pl::DataType::String),
    }
}

/// The common type of several children, for coercing them together.
fn common(srcs: &[&Expr], children: &[Lowered]) -> DataType {
    let items: Vec<(&Expr, &DataType)> = srcs
        .iter()
        .copied()
        .zip(children.iter().map(|(_, t)| t))
        .collect();
    // `check` already accepted these, so the common type exists.
    common_type(&items).unwrap_or(DataType::Null)
}

fn polars_err(e: pl::PolarsError) -> ExprError {
    ExprError::new(format!(
        "internal error building the polars expression: {e}"
    ))
}

fn lower_node(e: &Expr, mut ch: Vec<Lowered>, t: &DataType) -> Result<pl::Expr, ExprError> {
    Ok(match e {
        Expr::Column(_) | Expr::Literal(_) => unreachable_leaf()?,
        Expr::Unary { op, .. } => {
            let (x, xt) = ch.remove(0);
            match op {
                UnaryOp::Neg if xt == DataType::Null => x,
                UnaryOp::Neg => -x,
                UnaryOp::Not => coerce(x, &xt, &DataType::Bool).not(),
            }
        }
        Expr::Binary { op, left, right } => {
            let r = ch.pop().unwrap_or_else(null_pair);
            let l = ch.pop().unwrap_or_else(null_pair);
            binary(*op, left, l, right, r, t)?
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            let mut it = ch.into_iter();
            let operand_l = operand
                .as_ref()
                .map(|_| it.next().unwrap_or_else(null_pair));
            let mut pairs = Vec::new();
            for _ in branches {
                let w = it.next().unwrap_or_else(null_pair);
                let r = it.next().unwrap_or_else(null_pair);
                pairs.push((w, r));
            }
            let else_l = otherwise
                .as_ref()
                .map(|_| it.next().unwrap_or_else(null_pair));
            // For a simple CASE, the operand and WHEN values meet at their common type.
            let cmp_type = operand.as_ref().map(|o| {
                let mut srcs = vec![&**o];
                srcs.extend(branches.iter().map(|(w, _)| w));
                let mut lows = vec![operand_l.clone().unwrap_or_else(null_pair)];
                lows.extend(pairs.iter().map(|(w, _)| w.clone()));
                common(&srcs, &lows)
            });
            let mut acc = match (otherwise, else_l) {
                (Some(src), Some(l)) => coerce_child(src, l, t),
                _ => null_of(t),
            };
            for ((w_src, r_src), (w, r)) in branches.iter().zip(pairs).rev() {
                let cond = match (&operand, &operand_l, &cmp_type) {
                    (Some(o_src), Some(o), Some(ct)) => {
                        coerce_child(o_src, o.clone(), ct).eq(coerce_child(w_src, w, ct))
                    }
                    _ => coerce(w.0, &w.1, &DataType::Bool),
                };
                acc = pl::when(cond)
                    .then(coerce_child(r_src, r, t))
                    .otherwise(acc);
            }
            acc
        }
        Expr::Function { name, args } => function(*name, args, ch, t)?,
        Expr::Cast { to, try_cast, .. } => {
            let (x, from) = ch.remove(0);
            cast(x, &from, to, *try_cast)
        }
        Expr::IsNull { negated, .. } => {
            let (x, _) = ch.remove(0);
            if *negated {
                x.is_not_null()
            } else {
                x.is_null()
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let mut srcs = vec![&**expr];
            srcs.extend(list.iter());
            let ct = common(&srcs, &ch);
            let mut it = ch.into_iter();
            let x = coerce_child(expr, it.next().unwrap_or_else(null_pair), &ct);
            let membership = in_list(x, list, it.collect(), &ct)?;
            if *negated {
                membership.not()
            } else {
                membership
            }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let ct = common(&[&**expr, &**low, &**high], &ch);
            let mut it = ch.into_iter();
            let x = coerce_child(expr, it.next().unwrap_or_else(null_pair), &ct);
            let lo = coerce_child(low, it.next().unwrap_or_else(null_pair), &ct);
            let hi = coerce_child(high, it.next().unwrap_or_else(null_pair), &ct);
            let inside = x.clone().gt_eq(lo).and(x.lt_eq(hi));
            if *negated {
                inside.not()
            } else {
                inside
            }
        }
        Expr::Like {
            pattern,
            negated,
            case_insensitive,
            ..
        } => {
            let x = text(ch.remove(0));
            let matched = match &**pattern {
                Expr::Literal(Literal::String(p)) => like(x, p, *case_insensitive),
                _ => null_of(&DataType::Bool),
            };
            if *negated {
                matched.not()
            } else {
                matched
            }
        }
    })
}

fn null_pair() -> Lowered {
    (pl::lit(pl::NULL), DataType::Null)
}

fn unreachable_leaf() -> Result<pl::Expr, ExprError> {
    Err(ExprError::new(
        "internal error: leaf expression reached lower_node",
    ))
}

fn binary(
    op: BinaryOp,
    l_src: &Expr,
    l: Lowered,
    r_src: &Expr,
    r: Lowered,
    t: &DataType,
) -> Result<pl::Expr, ExprError> {
    use BinaryOp::*;
    Ok(match op {
        And => coerce(l.0, &l.1, &DataType::Bool).and(coerce(r.0, &r.1, &DataType::Bool)),
        Or => coerce(l.0, &l.1, &DataType::Bool).or(coerce(r.0, &r.1, &DataType::Bool)),
        Concat => pl::concat_str([as_string(l.0, &l.1), as_string(r.0, &r.1)], "", false),
        Eq | NotEq | Lt | LtEq | Gt | GtEq => {
            let ct = common_type(&[(l_src, &l.1), (r_src, &r.1)]).unwrap_or(DataType::Null);
            let a = coerce_child(l_src, l, &ct);
            let b = coerce_child(r_src, r, &ct);
            match op {
                Eq => a.eq(b),
                NotEq => a.neq(b),
                Lt => a.lt(b),
                LtEq => a.lt_eq(b),
                Gt => a.gt(b),
                _ => a.gt_eq(b),
            }
        }
        Add | Sub | Mul => {
            let a = coerce(l.0, &l.1, t);
            let b = coerce(r.0, &r.1, t);
            match op {
                Add => a + b,
                Sub => a - b,
                _ => a * b,
            }
        }
        Div => {
            // True division; dividing by zero gives NULL (as Spark does) rather than ±inf/NaN.
            let a = coerce(l.0, &l.1, &DataType::Float64);
            let b = coerce(r.0, &r.1, &DataType::Float64);
            pl::when(b.clone().eq(pl::lit(0.0)))
                .then(null_of(&DataType::Float64))
                .otherwise(a / b)
        }
        Mod => {
            // SQL's remainder takes the dividend's sign (-7 % 3 = -1); polars' % follows the
            // divisor (floored, = 2), so shift results whose sign disagrees. x % 0 is NULL.
            let a = coerce(l.0, &l.1, t);
            let b = coerce(r.0, &r.1, t);
            let zero = if *t == DataType::Float64 {
                pl::lit(0.0)
            } else {
                pl::lit(0i64)
            };
            let m = a.clone() % b.clone();
            let wrong_sign = m
                .clone()
                .neq(zero.clone())
                .and(m.clone().lt(zero.clone()).neq(a.lt(zero.clone())));
            pl::when(b.clone().eq(zero))
                .then(null_of(t))
                .otherwise(pl::when(wrong_sign).then(m.clone() - b).otherwise(m))
        }
    })
}

fn in_list(
    x: pl::Expr,
    items: &[Expr],
    lowered: Vec<Lowered>,
    ct: &DataType,
) -> Result<pl::Expr, ExprError> {
    let all_literal = items.iter().all(|i| matches!(i, Expr::Literal(_)));
    if !all_literal || matches!(ct, DataType::Null | DataType::List(_)) {
        // General case: a chain of equalities has exactly SQL's NULL semantics.
        let mut acc: Option<pl::Expr> = None;
        for (src, l) in items.iter().zip(lowered) {
            let eq = x.clone().eq(coerce_child(src, l, ct));
            acc = Some(match acc {
                Some(a) => a.or(eq),
                None => eq,
            });
        }
        return Ok(acc.unwrap_or_else(|| pl::lit(false)));
    }
    // Literal lists use one hash lookup per row. A NULL in the list turns "not found" into
    // NULL, as in SQL.
    let has_null = items
        .iter()
        .any(|i| matches!(i, Expr::Literal(Literal::Null)));
    let values: Vec<Literal> = items
        .iter()
        .filter(|i| !matches!(i, Expr::Literal(Literal::Null)))
        .map(|i| match i {
            Expr::Literal(l) => literal_as(i, ct).unwrap_or_else(|| l.clone()),
            _ => Literal::Null,
        })
        .collect();
    let membership = if values.is_empty() {
        null_of(&DataType::Bool)
    } else {
        let series = literal_series(&values, ct).map_err(polars_err)?;
        x.is_in(pl::lit(series).implode(false), false)
    };
    Ok(if has_null && !values.is_empty() {
        membership.or(null_of(&DataType::Bool))
    } else {
        membership
    })
}

fn literal_series(values: &[Literal], t: &DataType) -> pl::PolarsResult<pl::Series> {
    let name = pl::PlSmallStr::EMPTY;
    let s = match t {
        DataType::Bool => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| matches!(v, Literal::Bool(true)))
                .collect::<Vec<_>>(),
        ),
        DataType::Int64 => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| if let Literal::Int(i) = v { *i } else { 0 })
                .collect::<Vec<_>>(),
        ),
        DataType::Float64 => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Literal::Int(i) => *i as f64,
                    Literal::Float(f) => *f,
                    _ => f64::NAN,
                })
                .collect::<Vec<_>>(),
        ),
        DataType::String => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| {
                    if let Literal::String(s) = v {
                        s.clone()
                    } else {
                        String::new()
                    }
                })
                .collect::<Vec<_>>(),
        ),
        DataType::Date => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| {
                    if let Literal::Date(d) = v {
                        days_since_epoch(d)
                    } else {
                        0
                    }
                })
                .collect::<Vec<_>>(),
        )
        .cast(&pl::DataType::Date)?,
        DataType::Datetime => pl::Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Literal::Timestamp(t) => t.and_utc().timestamp_micros(),
                    Literal::Date(d) => i64::from(days_since_epoch(d)) * MICROS_PER_DAY,
                    _ => 0,
                })
                .collect::<Vec<_>>(),
        )
        .cast(&to_polars_dtype(t))?,
        DataType::List(_) | DataType::Null => pl::Series::new_null(name, values.len()),
    };
    Ok(s)
}

/// LIKE via the cheapest native string operation that expresses the pattern.
fn like(x: pl::Expr, pattern: &str, case_insensitive: bool) -> pl::Expr {
    let wild = |c: char| c == '%' || c == '_';
    if !case_insensitive {
        let inner = pattern.trim_start_matches('%').trim_end_matches('%');
        if !inner.contains(wild) && !inner.is_empty() {
            let lead = pattern.starts_with('%');
            let trail = pattern.ends_with('%');
            return match (lead, trail) {
                (false, false) => x.eq(pl::lit(pattern.to_string())),
                (false, true) => x.str().starts_with(pl::lit(inner.to_string())),
                (true, false) => x.str().ends_with(pl::lit(inner.to_string())),
                (true, true) => x.str().contains_literal(pl::lit(inner.to_string())),
            };
        }
    }
    let mut re = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
    let mut literal = String::new();
    for c in pattern.chars() {
        if wild(c) {
            re.push_str(&regex::escape(&literal));
            literal.clear();
            re.push_str(if c == '%' { ".*" } else { "." });
        } else {
            literal.push(c);
        }
    }
    re.push_str(&regex::escape(&literal));
    re.push('$');
    x.str().contains(pl::lit(re), true)
}

fn cast(x: pl::Expr, from: &DataType, to: &DataType, try_cast: bool) -> pl::Expr {
    let strict = !try_cast;
    let do_cast = |x: pl::Expr, t: pl::DataType| if strict { x.strict_cast(t) } else { x.cast(t) };
    match (from, to) {
        (a, b) if a == b => x,
        (DataType::String, DataType::Date) => x.str().to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            strict,
            exact: true,
            cache: true,
        }),
        (DataType::String, DataType::Datetime) => x.str().to_datetime(
            Some(TimeUnit::Microseconds),
            None,
            StrptimeOptions {
                format: None,
                strict,
                exact: true,
                cache: true,
            },
            pl::lit("raise"),
        ),
        (DataType::String, DataType::Bool) => string_to_bool(x),
        _ => do_cast(x, to_polars_dtype(to)),
    }
}

/// 'true'/'false' (any case, surrounding spaces ignored), also t/f, yes/no, y/n, 1/0;
/// other text is NULL even for a strict CAST: polars has no string-to-bool cast to fail
/// with, and raising conditionally would need a UDF.
fn string_to_bool(x: pl::Expr) -> pl::Expr {
    let norm = x
        .clone()
        .str()
        .strip_chars(pl::lit(LiteralValue::untyped_null()))
        .str()
        .to_lowercase();
    let set = |words: &[&str]| {
        let s = pl::Series::new(
            pl::PlSmallStr::EMPTY,
            words.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        );
        norm.clone().is_in(pl::lit(s).implode(false), false)
    };
    let fallback = null_of(&DataType::Bool);
    pl::when(set(&["true", "t", "yes", "y", "1"]))
        .then(pl::lit(true))
        .otherwise(
            pl::when(set(&["false", "f", "no", "n", "0"]))
                .then(pl::lit(false))
                .otherwise(fallback),
        )
}

fn function(f: Func, args: &[Expr], ch: Vec<Lowered>, t: &DataType) -> Result<pl::Expr, ExprError> {
    use Func::*;
    let srcs: Vec<&Expr> = args.iter().collect();
    let str_arg = |i: usize| -> String {
        match args.get(i) {
            Some(Expr::Literal(Literal::String(s))) => s.clone(),
            _ => String::new(),
        }
    };
    let mut it = ch.clone().into_iter();
    let mut next = || it.next().unwrap_or_else(null_pair);
    Ok(match f {
        Coalesce => {
            let exprs: Vec<pl::Expr> = args
                .iter()
                .zip(ch)
                .map(|(s, l)| coerce_child(s, l, t))
                .collect();
            pl::coalesce(&exprs)
        }
        Nullif => {
            let ct = common(&srcs, &ch);
            let (a, b) = (next(), next());
            let a_cmp = coerce_child(&args[0], a.clone(), &ct);
            let b_cmp = coerce_child(&args[1], b, &ct);
            pl::when(a_cmp.eq(b_cmp))
                .then(null_of(t))
                .otherwise(coerce(a.0, &a.1, t))
        }
        If => {
            let c = next();
            let (th, el) = (next(), next());
            pl::when(coerce(c.0, &c.1, &DataType::Bool))
                .then(coerce_child(&args[1], th, t))
                .otherwise(coerce_child(&args[2], el, t))
        }
        Abs => {
            let (x, xt) = next();
            if xt == DataType::Null {
                coerce(x, &xt, t)
            } else {
                x.abs()
            }
        }
        Round => {
            let (x, xt) = next();
            let digits = match args.get(1) {
                Some(Expr::Literal(Literal::Int(d))) => *d,
                _ => 0,
            };
            round(x, &xt, digits)
        }
        Floor | Ceil => {
            let (x, xt) = next();
            match xt {
                DataType::Float64 => {
                    let r = if f == Floor { x.floor() } else { x.ceil() };
                    r.cast(pl::DataType::Int64)
                }
                _ => x.cast(pl::DataType::Int64),
            }
        }
        Least | Greatest => {
            let exprs: Vec<pl::Expr> = args
                .iter()
                .zip(ch)
                .map(|(s, l)| coerce_child(s, l, t).cast(to_polars_dtype(t)))
                .collect();
            if f == Least {
                polars::lazy::dsl::min_horizontal(exprs).map_err(polars_err)?
            } else {
                polars::lazy::dsl::max_horizontal(exprs).map_err(polars_err)?
            }
        }
        Lower => text(next()).str().to_lowercase(),
        Upper => text(next()).str().to_uppercase(),
        Trim => text(next())
            .str()
            .strip_chars(pl::lit(LiteralValue::untyped_null())),
        Ltrim => text(next())
            .str()
            .strip_chars_start(pl::lit(LiteralValue::untyped_null())),
        Rtrim => text(next())
            .str()
            .strip_chars_end(pl::lit(LiteralValue::untyped_null())),
        Length => text(next()).str().len_chars().cast(pl::DataType::Int64),
        Replace => {
            let x = text(next());
            let (from, to) = (str_arg(1), str_arg(2));
            if from.is_empty() {
                x
            } else {
                x.str().replace_all(pl::lit(from), pl::lit(to), true)
            }
        }
        RegexpReplace => {
            text(next())
                .str()
                .replace_all(pl::lit(str_arg(1)), pl::lit(str_arg(2)), false)
        }
        RegexpLike => text(next()).str().contains(pl::lit(str_arg(1)), true),
        Concat => {
            let parts: Vec<pl::Expr> = ch.into_iter().map(|(x, xt)| as_string(x, &xt)).collect();
            pl::concat_str(parts, "", true)
        }
        Substr => {
            let x = text(next());
            let start = next();
            let len = if args.len() > 2 { Some(next()) } else { None };
            substr(x, &args[1], start, args.get(2).zip(len))
        }
        StartsWith => {
            let x = text(next());
            x.str().starts_with(text(next()))
        }
        EndsWith => {
            let x = text(next());
            x.str().ends_with(text(next()))
        }
        Contains => {
            let x = text(next());
            x.str().contains_literal(text(next()))
        }
        ToDate | ToTimestamp => {
            let x = text(next());
            let fmt = if args.len() > 1 {
                datefmt::for_parsing(&datefmt::to_strftime(&str_arg(1))?)
            } else if f == ToDate {
                "%Y-%m-%d".to_string()
            } else {
                "%Y-%m-%d %H:%M:%S".to_string()
            };
            // Not strict: values that do not match become NULL instead of failing the run.
            let opts = StrptimeOptions {
                format: Some(fmt.into()),
                strict: false,
                exact: true,
                cache: true,
            };
            if f == ToDate {
                x.str().to_date(opts)
            } else {
                x.str()
                    .to_datetime(Some(TimeUnit::Microseconds), None, opts, pl::lit("raise"))
            }
        }
        DateDiffDays => {
            let end = day_number(&args[0], next());
            let start = day_number(&args[1], next());
            end - start
        }
        DateAddDays => {
            let d = next();
            let n = next();
            let n = coerce(n.0, &n.1, &DataType::Int64);
            match t {
                DataType::Datetime => {
                    let base = coerce_child(&args[0], d, t);
                    base + (n * pl::lit(MICROS_PER_DAY))
                        .cast(pl::DataType::Duration(TimeUnit::Microseconds))
                }
                _ => {
                    let base = coerce_child(&args[0], d, &DataType::Date);
                    (base.cast(pl::DataType::Int32).cast(pl::DataType::Int64) + n)
                        .cast(pl::DataType::Int32)
                        .cast(pl::DataType::Date)
                }
            }
        }
        Year | Month | Day => {
            let d = next();
            let dt = temporal_arg(&args[0], d);
            let part = match f {
                Year => dt.dt().year(),
                Month => dt.dt().month(),
                _ => dt.dt().day(),
            };
            part.cast(pl::DataType::Int64)
        }
        FormatDate => {
            let d = next();
            let fmt = datefmt::to_strftime(&str_arg(1))?;
            temporal_arg(&args[0], d).dt().strftime(&fmt)
        }
    })
}

/// A date-like argument as a polars date/datetime (string literals parsed; NULL typed).
fn temporal_arg(src: &Expr, l: Lowered) -> pl::Expr {
    match &l.1 {
        DataType::Date | DataType::Datetime => l.0,
        DataType::Null => null_of(&DataType::Date),
        _ => {
            match literal_as(src, &DataType::Date).or_else(|| literal_as(src, &DataType::Datetime))
            {
                Some(lit_value) => lit(&lit_value),
                None => l.0,
            }
        }
    }
}

/// Days since 1970-01-01 as int64; datetimes count their calendar date.
fn day_number(src: &Expr, l: Lowered) -> pl::Expr {
    let xt = l.1.clone();
    let d = temporal_arg(src, l);
    let as_date = match xt {
        DataType::Datetime => d.cast(pl::DataType::Date),
        _ => match literal_as(src, &DataType::Date) {
            Some(_) => d,
            None if xt == DataType::String => d.cast(pl::DataType::Date),
            None => d,
        },
    };
    // A date's physical value is its day number.
    as_date.cast(pl::DataType::Int32).cast(pl::DataType::Int64)
}

fn round(x: pl::Expr, xt: &DataType, digits: i64) -> pl::Expr {
    match xt {
        DataType::Float64 if digits >= 0 => x.round(digits as u32, RoundMode::HalfAwayFromZero),
        DataType::Float64 | DataType::Int64 if digits < 0 => {
            let p = 10f64.powi((-digits) as i32);
            let r = (x.cast(pl::DataType::Float64) / pl::lit(p))
                .round(0, RoundMode::HalfAwayFromZero)
                * pl::lit(p);
            if *xt == DataType::Int64 {
                r.cast(pl::DataType::Int64)
            } else {
                r
            }
        }
        _ => x,
    }
}

/// SQL substr (1-based; 0 acts as 1; negative counts from the end) on polars' 0-based slice.
fn substr(
    x: pl::Expr,
    start_src: &Expr,
    start: Lowered,
    len: Option<(&Expr, Lowered)>,
) -> pl::Expr {
    // polars reads a NULL length as "to the end"; SQL gives NULL for any NULL argument.
    let mut null_if: Vec<pl::Expr> = Vec::new();
    let offset = match start_src {
        Expr::Literal(Literal::Int(s)) if *s > 0 => pl::lit(*s - 1),
        Expr::Literal(Literal::Int(s)) => pl::lit(*s),
        _ => {
            let s = coerce(start.0, &start.1, &DataType::Int64);
            null_if.push(s.clone().is_null());
            pl::when(s.clone().gt(pl::lit(0i64)))
                .then(s.clone() - pl::lit(1i64))
                .otherwise(s)
        }
    };
    let length = match len {
        None => pl::lit(LiteralValue::untyped_null()),
        Some((Expr::Literal(Literal::Int(n)), _)) => pl::lit((*n).max(0)),
        Some((_, (l, lt))) => {
            let l = coerce(l, &lt, &DataType::Int64);
            null_if.push(l.clone().is_null());
            pl::when(l.clone().lt(pl::lit(0i64)))
                .then(pl::lit(0i64))
                .otherwise(l)
        }
    };
    let sliced = x.str().slice(offset, length);
    match null_if.into_iter().reduce(|a, b| a.or(b)) {
        Some(cond) => pl::when(cond)
            .then(null_of(&DataType::String))
            .otherwise(sliced),
        None => sliced,
    }
}

//! The function library: names, documentation and typing rules.
//!
//! [`functions()`] is the single source of truth for what users may call; `check` validates
//! names against it and docs/expressions.md lists exactly these (a test keeps them in sync).

use orch_spec::DataType;

use crate::ast::{Expr, Literal};
use crate::check::{common_type, describe_mismatch, literal_as};
use crate::datefmt;
use crate::error::ExprError;

/// A documented function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FunctionDoc {
    pub name: &'static str,
    pub signature: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

/// The functions expressions may call, in documentation order.
pub fn functions() -> &'static [FunctionDoc] {
    FUNCTIONS
}

/// A function of the library. Names are case-insensitive in source text and rendered in
/// lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Coalesce,
    Nullif,
    If,
    Abs,
    Round,
    Floor,
    Ceil,
    Least,
    Greatest,
    Lower,
    Upper,
    Trim,
    Ltrim,
    Rtrim,
    Length,
    Replace,
    RegexpReplace,
    RegexpLike,
    Concat,
    Substr,
    StartsWith,
    EndsWith,
    Contains,
    ToDate,
    ToTimestamp,
    DateDiffDays,
    DateAddDays,
    Year,
    Month,
    Day,
    FormatDate,
}

impl Func {
    /// Every function, in the same order as [`functions()`].
    pub const ALL: &'static [Func] = &[
        Func::Coalesce,
        Func::Nullif,
        Func::If,
        Func::Abs,
        Func::Round,
        Func::Floor,
        Func::Ceil,
        Func::Least,
        Func::Greatest,
        Func::Lower,
        Func::Upper,
        Func::Trim,
        Func::Ltrim,
        Func::Rtrim,
        Func::Length,
        Func::Replace,
        Func::RegexpReplace,
        Func::RegexpLike,
        Func::Concat,
        Func::Substr,
        Func::StartsWith,
        Func::EndsWith,
        Func::Contains,
        Func::ToDate,
        Func::ToTimestamp,
        Func::DateDiffDays,
        Func::DateAddDays,
        Func::Year,
        Func::Month,
        Func::Day,
        Func::FormatDate,
    ];

    pub fn doc(self) -> &'static FunctionDoc {
        // ALL and FUNCTIONS share one order (checked by a test), so the discriminant indexes.
        &FUNCTIONS[self as usize]
    }

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        self.doc().name
    }

    /// Looks a name up case-insensitively, including the alias `substring`.
    pub fn from_name(name: &str) -> Option<Func> {
        let n = name.to_ascii_lowercase();
        if n == "substring" {
            return Some(Func::Substr);
        }
        Func::ALL.iter().copied().find(|f| f.name() == n)
    }

    /// Minimum and maximum (None: unbounded) number of arguments.
    pub fn arity(self) -> (usize, Option<usize>) {
        use Func::*;
        match self {
            Coalesce | Concat => (1, None),
            Least | Greatest => (2, None),
            If | Replace | RegexpReplace => (3, Some(3)),
            Round | ToDate | ToTimestamp => (1, Some(2)),
            Substr => (2, Some(3)),
            Nullif | RegexpLike | StartsWith | EndsWith | Contains | DateDiffDays | DateAddDays
            | FormatDate => (2, Some(2)),
            Abs | Floor | Ceil | Lower | Upper | Trim | Ltrim | Rtrim | Length | Year | Month
            | Day => (1, Some(1)),
        }
    }
}

/// Names that read the wall clock. Transformations must be reproducible, so these are
/// rejected with a pointer to the `as_of` pipeline parameter.
pub(crate) const WALL_CLOCK: &[&str] = &[
    "current_date",
    "current_timestamp",
    "current_time",
    "localtimestamp",
    "localtime",
    "now",
    "today",
    "sysdate",
    "systimestamp",
    "getdate",
    "curdate",
    "curtime",
    "unix_timestamp",
];

/// Aggregates, which belong in aggregate steps rather than row expressions.
pub(crate) const AGGREGATES: &[&str] = &[
    "sum",
    "count",
    "avg",
    "mean",
    "min",
    "max",
    "first",
    "last",
    "median",
    "stddev",
    "variance",
    "count_distinct",
    "array_agg",
    "string_agg",
    "collect_list",
    "collect_set",
];

static FUNCTIONS: &[FunctionDoc] = &[
    FunctionDoc {
        name: "coalesce",
        signature: "coalesce(value, ...) -> common type of the values",
        description: "The first argument that is not NULL, or NULL if all are NULL. All arguments must share a type (int64 and float64 mix to float64).",
        example: "coalesce(nickname, first_name, 'unknown')",
    },
    FunctionDoc {
        name: "nullif",
        signature: "nullif(a, b) -> type of a",
        description: "NULL when a = b, otherwise a.",
        example: "nullif(country, '')",
    },
    FunctionDoc {
        name: "if",
        signature: "if(condition: bool, then, else) -> common type of then and else",
        description: "`then` when the condition is true, `else` when it is false or NULL.",
        example: "if(quantity > 0, price, 0)",
    },
    FunctionDoc {
        name: "abs",
        signature: "abs(x: number) -> type of x",
        description: "Absolute value.",
        example: "abs(balance)",
    },
    FunctionDoc {
        name: "round",
        signature: "round(x: number[, digits: int literal]) -> type of x",
        description: "Rounds half away from zero (2.5 -> 3, -2.5 -> -3) to `digits` decimal places (default 0). Negative digits round to tens, hundreds, ... Integers are returned unchanged unless digits is negative.",
        example: "round(amount * 1.2, 2)",
    },
    FunctionDoc {
        name: "floor",
        signature: "floor(x: number) -> int64",
        description: "The largest integer not greater than x. NULL if the value does not fit an int64 (or is NaN).",
        example: "floor(minutes / 60)",
    },
    FunctionDoc {
        name: "ceil",
        signature: "ceil(x: number) -> int64",
        description: "The smallest integer not less than x. NULL if the value does not fit an int64 (or is NaN).",
        example: "ceil(weight_kg)",
    },
    FunctionDoc {
        name: "least",
        signature: "least(a, b, ...) -> common type of the arguments",
        description: "The smallest argument, ignoring NULLs (NULL only if all are NULL). Works on numbers, strings, dates and datetimes.",
        example: "least(due_date, DATE '2024-12-31')",
    },
    FunctionDoc {
        name: "greatest",
        signature: "greatest(a, b, ...) -> common type of the arguments",
        description: "The largest argument, ignoring NULLs (NULL only if all are NULL). Works on numbers, strings, dates and datetimes.",
        example: "greatest(0, balance)",
    },
    FunctionDoc {
        name: "lower",
        signature: "lower(s: string) -> string",
        description: "Lower-cases the string (Unicode aware).",
        example: "lower(email)",
    },
    FunctionDoc {
        name: "upper",
        signature: "upper(s: string) -> string",
        description: "Upper-cases the string (Unicode aware).",
        example: "upper(country_code)",
    },
    FunctionDoc {
        name: "trim",
        signature: "trim(s: string) -> string",
        description: "Removes leading and trailing whitespace.",
        example: "trim(company_name)",
    },
    FunctionDoc {
        name: "ltrim",
        signature: "ltrim(s: string) -> string",
        description: "Removes leading whitespace.",
        example: "ltrim(code)",
    },
    FunctionDoc {
        name: "rtrim",
        signature: "rtrim(s: string) -> string",
        description: "Removes trailing whitespace.",
        example: "rtrim(code)",
    },
    FunctionDoc {
        name: "length",
        signature: "length(s: string) -> int64",
        description: "The number of characters (not bytes).",
        example: "length(postcode) = 5",
    },
    FunctionDoc {
        name: "replace",
        signature: "replace(s: string, from: string literal, to: string literal) -> string",
        description: "Replaces every occurrence of the literal text `from` with `to` (no patterns). An empty `from` leaves s unchanged.",
        example: "replace(phone, ' ', '')",
    },
    FunctionDoc {
        name: "regexp_replace",
        signature: "regexp_replace(s: string, pattern: string literal, replacement: string literal) -> string",
        description: "Replaces every match of the regular expression (Rust regex syntax) with the replacement, in which `$1` or `${1}` refer to capture groups and `$$` is a literal dollar sign. Backslashes in SQL strings are not escapes, so '\\n' reaches the regex as \\n.",
        example: "regexp_replace(company_address, '[\\r\\n]+', ' ')",
    },
    FunctionDoc {
        name: "regexp_like",
        signature: "regexp_like(s: string, pattern: string literal) -> bool",
        description: "True when the regular expression matches anywhere in s (anchor with ^ and $ to match the whole string).",
        example: "regexp_like(invoice_no, '^INV-[0-9]+$')",
    },
    FunctionDoc {
        name: "concat",
        signature: "concat(value, ...) -> string",
        description: "Joins the values as text, treating NULL as the empty string (unlike `||`, which returns NULL if either side is NULL). Non-string values are converted as CAST(x AS string) does.",
        example: "concat(first_name, ' ', last_name)",
    },
    FunctionDoc {
        name: "substr",
        signature: "substr(s: string, start: int64[, length: int64]) -> string",
        description: "The substring starting at character `start` (1-based; 0 acts as 1; negative counts from the end) of at most `length` characters (to the end if omitted; a negative length gives ''). `substring` is an alias.",
        example: "substr(iban, 1, 2)",
    },
    FunctionDoc {
        name: "starts_with",
        signature: "starts_with(s: string, prefix: string) -> bool",
        description: "True when s begins with prefix.",
        example: "starts_with(sku, 'EU-')",
    },
    FunctionDoc {
        name: "ends_with",
        signature: "ends_with(s: string, suffix: string) -> bool",
        description: "True when s ends with suffix.",
        example: "ends_with(email, '@example.com')",
    },
    FunctionDoc {
        name: "contains",
        signature: "contains(s: string, needle: string) -> bool",
        description: "True when s contains the literal text needle.",
        example: "contains(lower(notes), 'urgent')",
    },
    FunctionDoc {
        name: "to_date",
        signature: "to_date(s: string[, format: string literal]) -> date",
        description: "Parses a date. The format is a pattern such as 'd/m/yyyy', 'dd/mm/yyyy', 'm/d/yy', 'yyyy-mm-dd' or a strftime string such as '%d/%m/%Y'; the default is 'yyyy-mm-dd'. The whole string must match; values that do not match the format (or are not real dates) become NULL.",
        example: "to_date(date_issued, 'd/m/yyyy')",
    },
    FunctionDoc {
        name: "to_timestamp",
        signature: "to_timestamp(s: string[, format: string literal]) -> datetime",
        description: "Parses a date and time (microsecond precision, no time zone), with the same pattern syntax as to_date, e.g. 'yyyy-mm-dd HH:MM:SS' (HH hours, MM minutes, SS seconds); the default is 'yyyy-mm-dd HH:MM:SS'. Values that do not match become NULL.",
        example: "to_timestamp(created, 'dd/mm/yyyy HH:MM')",
    },
    FunctionDoc {
        name: "date_diff_days",
        signature: "date_diff_days(end: date, start: date) -> int64",
        description: "end - start in whole days (negative when end is earlier). For datetimes the time of day is ignored: the calendar dates are subtracted.",
        example: "date_diff_days(DATE '${as_of}', date_issued) > 30",
    },
    FunctionDoc {
        name: "date_add_days",
        signature: "date_add_days(d: date, n: int64) -> type of d",
        description: "The date n days after d (n may be negative). Works on datetimes too, keeping the time of day.",
        example: "date_add_days(date_issued, 30)",
    },
    FunctionDoc {
        name: "year",
        signature: "year(d: date) -> int64",
        description: "The year of a date or datetime. `EXTRACT(YEAR FROM d)` is also accepted.",
        example: "year(date_issued) = 2024",
    },
    FunctionDoc {
        name: "month",
        signature: "month(d: date) -> int64",
        description: "The month (1-12) of a date or datetime.",
        example: "month(date_issued)",
    },
    FunctionDoc {
        name: "day",
        signature: "day(d: date) -> int64",
        description: "The day of the month (1-31) of a date or datetime.",
        example: "day(date_issued)",
    },
    FunctionDoc {
        name: "format_date",
        signature: "format_date(d: date, format: string literal) -> string",
        description: "Formats a date or datetime as text with the same pattern syntax as to_date; single-letter d and m print without leading zeros.",
        example: "format_date(date_issued, 'dd/mm/yyyy')",
    },
];

/// Typing of one call whose arguments all type-checked. `args` are the argument
/// expressions (some parameters must be literals), `types` their types.
pub(crate) fn result_type(
    f: Func,
    args: &[Expr],
    types: &[DataType],
) -> Result<DataType, ExprError> {
    let (min, max) = f.arity();
    if args.len() < min || max.is_some_and(|m| args.len() > m) {
        let want = match max {
            Some(m) if m == min => format!("{min} argument{}", if min == 1 { "" } else { "s" }),
            Some(m) => format!("{min} to {m} arguments"),
            None => format!("at least {min} argument{}", if min == 1 { "" } else { "s" }),
        };
        return Err(
            ExprError::new(format!("{} expects {want}, got {}", f.name(), args.len()))
                .hint(format!("usage: {}", f.doc().signature)),
        );
    }
    let a = Args { f, args, types };
    use Func::*;
    Ok(match f {
        Coalesce => a.common(0..args.len())?,
        Nullif => {
            a.common(0..2)?;
            if types[0] == DataType::Null {
                types[1].clone()
            } else {
                types[0].clone()
            }
        }
        If => {
            a.want(0, is_bool, "a bool")?;
            a.common(1..3)?
        }
        Abs => a.want(0, DataType::is_numeric, "a number")?,
        Round => {
            let t = a.want(0, DataType::is_numeric, "a number")?;
            if args.len() == 2 {
                a.round_digits()?;
            }
            t
        }
        Floor | Ceil => {
            a.want(0, DataType::is_numeric, "a number")?;
            DataType::Int64
        }
        Least | Greatest => {
            let t = a.common(0..args.len())?;
            if !is_orderable(&t) {
                return Err(ExprError::new(format!(
                    "{} cannot order values of type {t}",
                    f.name()
                )));
            }
            t
        }
        Lower | Upper | Trim | Ltrim | Rtrim => {
            a.want(0, is_string, "a string")?;
            DataType::String
        }
        Length => {
            a.want(0, is_string, "a string")?;
            DataType::Int64
        }
        Replace => {
            a.want(0, is_string, "a string")?;
            a.string_literal(1, "the text to find")?;
            a.string_literal(2, "the replacement")?;
            DataType::String
        }
        RegexpReplace => {
            a.want(0, is_string, "a string")?;
            a.regex(1)?;
            a.string_literal(2, "the replacement")?;
            DataType::String
        }
        RegexpLike => {
            a.want(0, is_string, "a string")?;
            a.regex(1)?;
            DataType::Bool
        }
        Concat => {
            for i in 0..args.len() {
                a.want(i, is_scalar, "a scalar value")?;
            }
            DataType::String
        }
        Substr => {
            a.want(0, is_string, "a string")?;
            a.want(1, is_int, "an int64")?;
            if args.len() == 3 {
                a.want(2, is_int, "an int64")?;
            }
            DataType::String
        }
        StartsWith | EndsWith | Contains => {
            a.want(0, is_string, "a string")?;
            a.want(1, is_string, "a string")?;
            DataType::Bool
        }
        ToDate | ToTimestamp => {
            a.want(0, is_string, "a string")?;
            if args.len() == 2 {
                a.date_format(1)?;
            }
            if f == ToDate {
                DataType::Date
            } else {
                DataType::Datetime
            }
        }
        DateDiffDays => {
            a.date_like(0)?;
            a.date_like(1)?;
            DataType::Int64
        }
        DateAddDays => {
            let t = a.date_like(0)?;
            a.want(1, is_int, "an int64")?;
            t
        }
        Year | Month | Day => {
            a.date_like(0)?;
            DataType::Int64
        }
        FormatDate => {
            a.date_like(0)?;
            a.date_format(1)?;
            DataType::String
        }
    })
}

pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::String | DataType::Null)
}

pub(crate) fn is_bool(t: &DataType) -> bool {
    matches!(t, DataType::Bool | DataType::Null)
}

pub(crate) fn is_int(t: &DataType) -> bool {
    matches!(t, DataType::Int64 | DataType::Null)
}

pub(crate) fn is_scalar(t: &DataType) -> bool {
    !matches!(t, DataType::List(_))
}

pub(crate) fn is_orderable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int64
            | DataType::Float64
            | DataType::String
            | DataType::Date
            | DataType::Datetime
            | DataType::Bool
            | DataType::Null
    )
}

/// The arguments of one call, with helpers that phrase errors uniformly.
struct Args<'a> {
    f: Func,
    args: &'a [Expr],
    types: &'a [DataType],
}

impl Args<'_> {
    fn want(&self, i: usize, ok: fn(&DataType) -> bool, what: &str) -> Result<DataType, ExprError> {
        let t = &self.types[i];
        if ok(t) {
            return Ok(t.clone());
        }
        let mut e = ExprError::new(format!(
            "{} expects {what} as argument {}, got {t}",
            self.f.name(),
            i + 1
        ));
        if what == "a string" {
            e = e.hint(format!("convert it with CAST({} AS string)", self.args[i]));
        } else if what.starts_with("a number") && *t == DataType::String {
            e = e.hint(format!(
                "convert it with CAST({} AS float64) or TRY_CAST",
                self.args[i]
            ));
        }
        Err(e.hint(format!("usage: {}", self.f.doc().signature)))
    }

    fn common(&self, range: std::ops::Range<usize>) -> Result<DataType, ExprError> {
        let items: Vec<(&Expr, &DataType)> =
            range.map(|i| (&self.args[i], &self.types[i])).collect();
        common_type(&items).map_err(|(i, j)| {
            describe_mismatch(
                format!("the arguments of {} must have a common type", self.f.name()),
                items[i],
                items[j],
            )
        })
    }

    fn string_literal(&self, i: usize, what: &str) -> Result<&str, ExprError> {
        match &self.args[i] {
            Expr::Literal(Literal::String(s)) => Ok(s),
            other => Err(ExprError::new(format!(
                "{} expects a string literal ({what}) as argument {}, got `{other}`",
                self.f.name(),
                i + 1
            ))
            .hint(format!("usage: {}", self.f.doc().signature))),
        }
    }

    fn regex(&self, i: usize) -> Result<(), ExprError> {
        let pat = self.string_literal(i, "the pattern")?;
        regex::Regex::new(pat).map(|_| ()).map_err(|e| {
            // regex errors span several lines with a caret; the last line says what is wrong.
            let text = e.to_string();
            let reason = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&text)
                .trim()
                .to_string();
            ExprError::new(format!(
                "invalid regular expression '{pat}' in argument {} of {}: {}",
                i + 1,
                self.f.name(),
                reason.trim_start_matches("error: ")
            ))
            .hint("patterns use Rust regex syntax: https://docs.rs/regex/latest/regex/#syntax")
        })
    }

    fn date_format(&self, i: usize) -> Result<String, ExprError> {
        let fmt = self.string_literal(i, "the format")?;
        datefmt::to_strftime(fmt).map_err(|e| ExprError {
            message: format!(
                "bad date format in argument {} of {}: {}",
                i + 1,
                self.f.name(),
                e.message
            ),
            hints: e.hints,
        })
    }

    fn round_digits(&self) -> Result<i64, ExprError> {
        match &self.args[1] {
            Expr::Literal(Literal::Int(d)) if (-18..=18).contains(d) => Ok(*d),
            other => Err(ExprError::new(format!(
                "round expects an integer literal between -18 and 18 as argument 2 (the digits), got `{other}`"
            ))),
        }
    }

    /// A date or datetime, or a string literal holding an ISO date/timestamp.
    fn date_like(&self, i: usize) -> Result<DataType, ExprError> {
        let t = &self.types[i];
        if matches!(t, DataType::Date | DataType::Datetime | DataType::Null) {
            return Ok(t.clone());
        }
        if let Expr::Literal(Literal::String(_)) = &self.args[i] {
            for target in [DataType::Date, DataType::Datetime] {
                if literal_as(&self.args[i], &target).is_some() {
                    return Ok(target);
                }
            }
        }
        let mut e = ExprError::new(format!(
            "{} expects a date as argument {}, got {t}",
            self.f.name(),
            i + 1
        ));
        if *t == DataType::String {
            e = e.hint(format!(
                "parse strings with to_date({}, 'yyyy-mm-dd')",
                self.args[i]
            ));
        }
        Err(e.hint(format!("usage: {}", self.f.doc().signature)))
    }
}

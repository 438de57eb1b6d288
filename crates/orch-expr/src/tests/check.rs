//! Type checking and the errors users see.

use super::*;
use crate::ExprError;

fn accounts() -> Schema {
    schema(&[
        ("account_id", DataType::Int64),
        ("amount", DataType::Float64),
        ("name", DataType::String),
        ("date_issued", DataType::Date),
        ("created", DataType::Datetime),
        ("late", DataType::Bool),
        ("raw_date", DataType::String),
    ])
}

fn check(src: &str) -> Result<DataType, Vec<ExprError>> {
    parse(src)
        .unwrap_or_else(|e| panic!("`{src}` should parse: {e}"))
        .check(&accounts())
}

fn errors(src: &str) -> Vec<ExprError> {
    match check(src) {
        Ok(t) => panic!("`{src}` should not type-check, got {t}"),
        Err(e) => e,
    }
}

fn one_error(src: &str) -> ExprError {
    let mut e = errors(src);
    assert_eq!(e.len(), 1, "`{src}`: {e:?}");
    e.remove(0)
}

fn parse_error(src: &str) -> ExprError {
    match parse(src) {
        Ok(e) => panic!("`{src}` should not parse, got {e}"),
        Err(e) => e,
    }
}

#[test]
fn result_types() {
    let t = |src: &str| check(src).unwrap_or_else(|e| panic!("`{src}`: {e:?}"));
    assert_eq!(t("account_id + 1"), DataType::Int64);
    assert_eq!(t("account_id + amount"), DataType::Float64);
    assert_eq!(t("account_id / 2"), DataType::Float64);
    assert_eq!(t("account_id % 2"), DataType::Int64);
    assert_eq!(t("amount > account_id"), DataType::Bool);
    assert_eq!(t("name || account_id"), DataType::String);
    assert_eq!(t("date_issued >= '2024-01-01'"), DataType::Bool);
    assert_eq!(t("created > date_issued"), DataType::Bool);
    assert_eq!(t("CASE WHEN late THEN 1 END"), DataType::Int64);
    assert_eq!(t("CASE WHEN late THEN 1 ELSE 2.5 END"), DataType::Float64);
    assert_eq!(
        t("CASE WHEN late THEN NULL ELSE name END"),
        DataType::String
    );
    assert_eq!(t("NULL"), DataType::Null);
    assert_eq!(t("coalesce(amount, 0)"), DataType::Float64);
    assert_eq!(t("date_add_days(created, 1)"), DataType::Datetime);
    assert_eq!(t("date_add_days('2024-01-01', 1)"), DataType::Date);
    assert_eq!(t("to_date(raw_date, 'd/m/yyyy')"), DataType::Date);
    assert_eq!(t("floor(amount)"), DataType::Int64);
    assert_eq!(t("round(amount, 2)"), DataType::Float64);
    assert_eq!(t("CAST(account_id AS string)"), DataType::String);
    assert_eq!(t("TRY_CAST(name AS float64)"), DataType::Float64);
    assert_eq!(t("account_id IN (1, 2.5, NULL)"), DataType::Bool);
}

#[test]
fn unknown_column_lists_columns_and_suggests() {
    let e = one_error("acount_id > 1");
    assert_eq!(
        e.message,
        "column `acount_id` not found; valid columns are `account_id`, `amount`, `name`, `date_issued`, `created`, `late`, `raw_date`"
    );
    assert_eq!(e.hints, ["did you mean `account_id`?"]);
    // A double-quoted "string" that matches nothing is most likely meant as text.
    let e = one_error("name = \"Smith\"");
    assert!(
        e.hints.iter().any(|h| h.contains("single quotes: 'Smith'")),
        "{e:?}"
    );
}

#[test]
fn reports_every_problem() {
    let es = errors("acount_id + amout > lenght");
    assert_eq!(es.len(), 3, "{es:?}");
    assert!(es[1].hints.contains(&"did you mean `amount`?".to_string()));
    let es = errors("upper(account_id) || lower(amount)");
    assert_eq!(es.len(), 2, "{es:?}");
}

#[test]
fn unknown_function_suggests() {
    let e = parse_error("regexp_replac(name, 'x', 'y')");
    assert!(
        e.message.starts_with("unknown function `regexp_replac`"),
        "{e}"
    );
    assert!(
        e.hints
            .contains(&"did you mean `regexp_replace`?".to_string()),
        "{e:?}"
    );
    let e = parse_error("ifnull(name, 'x')");
    assert!(e.hints.iter().any(|h| h.contains("coalesce")), "{e:?}");
    let e = parse_error("sum(amount)");
    assert!(e.message.contains("aggregate"), "{e}");
    let e = parse_error("max(amount, 3)");
    assert!(e.hints.iter().any(|h| h.contains("greatest")), "{e:?}");
}

#[test]
fn wall_clock_is_rejected() {
    for src in [
        "current_date",
        "CURRENT_TIMESTAMP",
        "now()",
        "date_diff_days(current_date(), date_issued)",
    ] {
        let e = parse_error(src);
        assert!(e.message.contains("reads the clock"), "{src}: {e}");
        assert!(
            e.hints.iter().any(|h| h.contains("DATE '${as_of}'")),
            "{src}: {e:?}"
        );
    }
}

#[test]
fn arity() {
    let e = one_error("lower(name, name)");
    assert_eq!(e.message, "lower expects 1 argument, got 2");
    assert!(e.hints[0].starts_with("usage: lower(s: string)"));
    assert_eq!(
        one_error("regexp_replace(name, 'x')").message,
        "regexp_replace expects 3 arguments, got 2"
    );
    assert_eq!(
        one_error("substr(name)").message,
        "substr expects 2 to 3 arguments, got 1"
    );
    assert_eq!(
        one_error("least(amount)").message,
        "least expects at least 2 arguments, got 1"
    );
}

#[test]
fn argument_types() {
    let e = one_error("regexp_replace(account_id, 'x', 'y')");
    assert_eq!(
        e.message,
        "regexp_replace expects a string as argument 1, got int64"
    );
    assert!(e.hints[0].contains("CAST(account_id AS string)"), "{e:?}");
    assert_eq!(
        one_error("abs(name)").message,
        "abs expects a number as argument 1, got string"
    );
    assert_eq!(
        one_error("year(raw_date)").message,
        "year expects a date as argument 1, got string"
    );
    assert!(one_error("year(raw_date)").hints[0].contains("to_date(raw_date, 'yyyy-mm-dd')"));
    assert!(one_error("regexp_replace(name, name, 'y')")
        .message
        .contains("string literal"));
    assert!(one_error("if(amount, 1, 2)")
        .message
        .contains("expects a bool as argument 1, got float64"));
    assert!(one_error("coalesce(amount, name)")
        .message
        .starts_with("the arguments of coalesce must have a common type"));
    assert!(one_error("round(amount, account_id)")
        .message
        .contains("integer literal"));
}

#[test]
fn patterns_and_formats_are_validated() {
    let e = one_error("regexp_like(name, '([a-z]+')");
    assert!(
        e.message
            .starts_with("invalid regular expression '([a-z]+' in argument 2 of regexp_like"),
        "{e}"
    );
    let e = one_error("to_date(raw_date, 'DD/MM/YYYY')");
    assert!(
        e.message
            .starts_with("bad date format in argument 2 of to_date"),
        "{e}"
    );
    assert!(one_error("format_date(date_issued, '%Q')")
        .message
        .contains("invalid strftime"));
    assert!(one_error("name LIKE name")
        .message
        .contains("pattern must be a string literal"));
}

#[test]
fn date_rules() {
    let e = one_error("date_issued - date_issued");
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("date_diff_days(date_issued, date_issued)")),
        "{e:?}"
    );
    let e = one_error("date_issued + 30");
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("date_add_days(date_issued, 30)")),
        "{e:?}"
    );
    let e = one_error("date_issued > 'yesterday'");
    assert!(
        e.message.starts_with("cannot compare date with string"),
        "{e}"
    );
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("'yesterday' is not a valid date")),
        "{e:?}"
    );
    let e = one_error("date_issued = raw_date");
    assert!(
        e.hints.iter().any(|h| h.contains("to_date(raw_date")),
        "{e:?}"
    );
    let e = one_error("date_issued > '2024-02-30'");
    assert!(
        e.hints.iter().any(|h| h.contains("not a valid date")),
        "{e:?}"
    );
    assert!(check("date_issued IN ('2024-01-01', '2024-02-01')").is_ok());
    assert!(check("date_issued BETWEEN '2024-01-01' AND '2024-12-31'").is_ok());
}

#[test]
fn operator_types() {
    assert!(one_error("name + 1").hints.iter().any(|h| h.contains("||")));
    assert!(one_error("amount > name")
        .message
        .starts_with("cannot compare float64 with string"));
    assert!(one_error("NOT amount").message.contains("NOT needs a bool"));
    assert!(one_error("late AND 1")
        .message
        .contains("AND needs bool operands"));
    assert!(one_error("-name").message.contains("cannot negate"));
    assert!(one_error("CASE WHEN late THEN 1 ELSE 'x' END")
        .message
        .starts_with("CASE branches return different types"));
    assert!(one_error("CASE WHEN amount THEN 1 END")
        .message
        .contains("must be bool"));
    assert!(one_error("CASE account_id WHEN 'a' THEN 1 END")
        .message
        .starts_with("CASE compares"));
    assert!(one_error("CAST(date_issued AS int64)")
        .message
        .contains("cannot cast"));
    assert!(one_error("account_id IN ('a')")
        .message
        .starts_with("IN compares"));
    assert!(one_error("name ILIKE 3").message.contains("ILIKE pattern"));
    assert!(one_error("amount LIKE 'x'")
        .message
        .contains("LIKE applies to strings"));
}

#[test]
fn syntax_errors_have_positions() {
    let e = parse_error("amount + )");
    assert_eq!(
        e.message,
        "syntax error at column 10: expected an expression, found `)`"
    );
    let e = parse_error("amount +");
    assert_eq!(
        e.message,
        "syntax error at the end: expected an expression, found the end of the expression"
    );
    let e = parse_error("name = 'abc");
    assert!(
        e.message
            .starts_with("syntax error at column 8: unterminated string literal"),
        "{e}"
    );
    let e = parse_error("account id > 3");
    assert!(
        e.message
            .starts_with("syntax error at column 9: unexpected `id`"),
        "{e}"
    );
    let e = parse_error("a +\n  )");
    assert!(
        e.message.starts_with("syntax error at line 2, column 3"),
        "{e}"
    );
    let e = parse_error("CASE WHEN late THEN 1");
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("CASE WHEN condition THEN value")),
        "{e:?}"
    );
    assert_eq!(parse_error("").message, "the expression is empty");
    assert_eq!(
        parse_error("  -- just a comment").message,
        "the expression is empty"
    );
    let e = parse_error("x > ${as_of}");
    assert!(
        e.hints.iter().any(|h| h.contains("pipeline parameter")),
        "{e:?}"
    );
    let e = parse_error("t.amount");
    assert!(e.message.contains("qualified names"), "{e}");
    assert!(parse_error("amount @@ 2").message.contains("not supported"));
    assert!(parse_error("(SELECT 1)").message.contains("subquery"));
    assert!(parse_error("x IS TRUE")
        .hints
        .iter()
        .any(|h| h.contains("coalesce")));
    assert!(parse_error("12345678901234567890")
        .message
        .contains("does not fit in int64"));
    assert!(parse_error("DATE '2024-02-30'")
        .message
        .contains("invalid DATE literal"));
    assert!(parse_error("CAST(x AS blob)")
        .message
        .contains("unknown type"));
}

#[test]
fn to_polars_reports_the_first_error() {
    let e = parse("acount_id + amout")
        .unwrap()
        .to_polars(&accounts())
        .unwrap_err();
    assert!(e.message.contains("acount_id"));
    assert!(e.hints.iter().any(|h| h.contains("1 more problem")));
}

#[test]
fn display_includes_hints() {
    let e = one_error("acount_id");
    assert!(
        e.to_string()
            .ends_with("\nhint: did you mean `account_id`?"),
        "{e}"
    );
}

#[test]
fn columns_are_collected() {
    let e = parse(
        "CASE WHEN late THEN amount * 2 ELSE coalesce(\"x y\", amount) END > 3 AND name LIKE 'a%'",
    )
    .unwrap();
    let cols: Vec<String> = e.columns().into_iter().collect();
    assert_eq!(cols, ["amount", "late", "name", "x y"]);
}

#[test]
fn dtype_mapping() {
    use polars::prelude as pl;
    for t in [
        DataType::Bool,
        DataType::Int64,
        DataType::Float64,
        DataType::String,
        DataType::Date,
        DataType::Datetime,
    ] {
        assert_eq!(from_polars_dtype(&to_polars_dtype(&t)), Some(t.clone()));
    }
    let list = DataType::List(Box::new(DataType::String));
    assert_eq!(from_polars_dtype(&to_polars_dtype(&list)), Some(list));
    assert_eq!(
        from_polars_dtype(&pl::DataType::Int32),
        Some(DataType::Int64)
    );
    assert_eq!(
        from_polars_dtype(&pl::DataType::UInt32),
        Some(DataType::Int64)
    );
    assert_eq!(
        from_polars_dtype(&pl::DataType::Float32),
        Some(DataType::Float64)
    );
    assert_eq!(
        from_polars_dtype(&pl::DataType::Datetime(pl::TimeUnit::Nanoseconds, None)),
        Some(DataType::Datetime)
    );
    assert_eq!(from_polars_dtype(&pl::DataType::Binary), None);
}

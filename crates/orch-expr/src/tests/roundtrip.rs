//! Parsing and canonical SQL: parse(to_sql(e)) == e, and the text is stable.

use crate::{parse, Expr, Func, Literal};

/// Expressions covering every node type, operator and function.
pub(crate) const CORPUS: &[&str] = &[
    "a",
    "\"my col\"",
    "\"select\"",
    "\"we\"\"ird\"",
    "`tick`",
    "Amount",
    "1",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "1.5",
    "-0.25",
    "1e20",
    "2.5E-3",
    "'it''s'",
    "'line\nbreak'",
    r"'back\slash'",
    "''",
    "TRUE",
    "false",
    "NULL",
    "DATE '2024-02-29'",
    "TIMESTAMP '2024-02-29 13:45:00'",
    "TIMESTAMP '2024-02-29T13:45:00.123456'",
    "a + b * c - d / e % f",
    "(a + b) * c",
    "a - -5",
    "a - (-b)",
    "- (a + b)",
    "+a",
    "NOT NOT a",
    "a || b || 'x'",
    "a = b AND c <> d OR e != f",
    "a < b OR a <= b OR a > b OR a >= b",
    "NOT (a AND b)",
    "a IS NULL",
    "a IS NOT NULL",
    "a IN (1, 2, 3)",
    "a NOT IN ('x', NULL)",
    "a BETWEEN 1 AND 10",
    "a NOT BETWEEN b AND c + 1",
    "a BETWEEN (b AND c) AND d",
    "a LIKE 'x%'",
    "a NOT LIKE '_y'",
    "a ILIKE '%z%'",
    "a NOT ILIKE 'q'",
    "CASE WHEN a THEN 1 WHEN b THEN 2 ELSE 3 END",
    "CASE WHEN a > 1 THEN 'x' END",
    "CASE a WHEN 1 THEN 'one' ELSE 'many' END",
    "CAST(a AS int64)",
    "CAST(a AS VARCHAR(20))",
    "CAST(a AS double)",
    "a::date",
    "a::timestamp",
    "CAST(a AS boolean)",
    "TRY_CAST(a AS float64)",
    "coalesce(a, b, 0)",
    "nullif(a, '')",
    "if(a > 0, 'pos', 'neg')",
    "abs(a)",
    "round(a)",
    "round(a, 2)",
    "round(a, -1)",
    "floor(a)",
    "CEIL(a)",
    "least(a, b)",
    "greatest(a, b, c)",
    "lower(a)",
    "UPPER(a)",
    "trim(a)",
    "ltrim(a)",
    "rtrim(a)",
    "length(a)",
    "replace(a, 'x', 'y')",
    r"regexp_replace(company_address, '[\r\n]+', ' ')",
    "regexp_like(a, '^[0-9]+$')",
    "concat(a, ' ', b)",
    "substr(a, 1, 2)",
    "SUBSTRING(a FROM 2)",
    "substring(a, 2, 3)",
    "starts_with(a, 'x')",
    "ends_with(a, 'x')",
    "contains(a, 'x')",
    "to_date(a, 'd/m/yyyy')",
    "to_date(a)",
    "to_timestamp(a, 'yyyy-mm-dd HH:MM:SS')",
    "date_diff_days(DATE '2024-03-31', date_issued) > 30",
    "date_add_days(a, 7)",
    "year(a)",
    "month(a)",
    "day(a)",
    "EXTRACT(YEAR FROM a)",
    "format_date(a, 'dd/mm/yyyy')",
    "CASE WHEN late THEN quantity * item_retail_price ELSE 0 END",
    "user",
    "a -- trailing comment",
    "a /* block */ + 1",
];

#[test]
fn corpus_round_trips() {
    for src in CORPUS {
        let e = parse(src).unwrap_or_else(|err| panic!("`{src}` should parse: {err}"));
        let sql = e.to_sql();
        let again = parse(&sql)
            .unwrap_or_else(|err| panic!("canonical `{sql}` (from `{src}`) should parse: {err}"));
        assert_eq!(again, e, "`{src}` -> `{sql}`");
        assert_eq!(again.to_sql(), sql, "canonical text is a fixed point");
    }
}

#[test]
fn every_function_is_in_the_corpus() {
    for f in Func::ALL {
        let found = CORPUS.iter().any(|src| {
            parse(src).map(|e| {
                let mut hit = false;
                e.walk(&mut |n| hit |= matches!(n, Expr::Function { name, .. } if name == f));
                hit
            }) == Ok(true)
        });
        assert!(found, "{} has no round-trip example", f.name());
    }
}

#[test]
fn canonical_text() {
    let c = |src: &str| parse(src).unwrap().to_sql();
    assert_eq!(c("a+b*c"), "(a + (b * c))");
    assert_eq!(c("a != b"), "(a <> b)");
    assert_eq!(c("x::INT"), "CAST(x AS int64)");
    assert_eq!(c("\"my col\" IS NOT NULL"), "(\"my col\" IS NOT NULL)");
    assert_eq!(c("\"date\""), "\"date\"");
    assert_eq!(c("substring(s, 1, 2)"), "substr(s, 1, 2)");
    assert_eq!(c("TRIM(s)"), "trim(s)");
    assert_eq!(c("- 5"), "-5");
    assert_eq!(c("-(5.5)"), "(-(5.5))");
    assert_eq!(c("-(-0)"), "(-(0))");
    assert_eq!(c("1.50"), "1.5");
    assert_eq!(c("DATE '2024-01-02'"), "DATE '2024-01-02'");
    assert_eq!(
        c("TIMESTAMP '2024-01-02T03:04:05'"),
        "TIMESTAMP '2024-01-02 03:04:05'"
    );
    assert_eq!(c("CASE a WHEN 1 THEN 2 END"), "CASE a WHEN 1 THEN 2 END");
    assert_eq!(c("a NOT BETWEEN 1 AND 2"), "(a NOT BETWEEN 1 AND 2)");
    assert_eq!(c("'it''s'"), "'it''s'");
    // Formatting differences disappear.
    assert_eq!(c("  a   +\n b "), c("(a+b)"));
}

#[test]
fn literals_parse_to_the_right_types() {
    let lit = |src: &str| match parse(src).unwrap() {
        Expr::Literal(l) => l,
        other => panic!("`{src}` gave {other:?}"),
    };
    assert_eq!(lit("42"), Literal::Int(42));
    assert_eq!(lit("-42"), Literal::Int(-42));
    assert_eq!(lit("4.0"), Literal::Float(4.0));
    assert_eq!(lit("'x'"), Literal::String("x".into()));
    assert_eq!(lit("TRUE"), Literal::Bool(true));
    assert_eq!(lit("NULL"), Literal::Null);
    assert_eq!(
        lit("DATE '2024-02-29'"),
        Literal::Date(chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
    );
    assert!(matches!(
        lit("TIMESTAMP '2024-02-29 01:02:03'"),
        Literal::Timestamp(_)
    ));
    assert_eq!(lit("-9223372036854775808"), Literal::Int(i64::MIN));
}

#[test]
fn constructed_expressions_render_parseably() {
    // Not produced by the parser, but to_sql must still give valid SQL.
    let odd = [
        Expr::Literal(Literal::Float(f64::NAN)),
        Expr::Literal(Literal::Float(f64::INFINITY)),
        Expr::Unary {
            op: crate::UnaryOp::Neg,
            expr: Box::new(Expr::Literal(Literal::Int(-5))),
        },
        Expr::Column(String::new()),
        Expr::Column("a\"b".into()),
    ];
    for e in odd {
        let sql = e.to_sql();
        assert!(parse(&sql).is_ok(), "`{sql}` should parse");
    }
}

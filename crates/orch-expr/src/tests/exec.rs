//! Execution on small frames with hand-computed expectations. Row 3 of `frame()` is all
//! NULL, so every expectation also pins NULL handling.

use super::*;
use polars::prelude as pl;

const N: Option<bool> = None;

#[test]
fn arithmetic() {
    let df = frame();
    assert_eq!(ints(&df, "i + j"), [Some(3), Some(-4), None, Some(10)]);
    assert_eq!(ints(&df, "i - j"), [Some(-1), Some(-10), None, Some(10)]);
    assert_eq!(ints(&df, "i * j"), [Some(2), Some(-21), None, Some(0)]);
    assert_eq!(ints(&df, "-i"), [Some(-1), Some(7), None, Some(-10)]);
    assert_eq!(
        floats(&df, "f * 2"),
        [Some(3.0), Some(-5.0), None, Some(0.0)]
    );
    assert_eq!(
        floats(&df, "i + f"),
        [Some(2.5), Some(-9.5), None, Some(10.0)]
    );
    assert_eq!(floats(&df, "-f"), [Some(-1.5), Some(2.5), None, Some(-0.0)]);
    assert_eq!(ints(&df, "1 + NULL"), [None; 4]);
    assert_eq!(ints(&df, "2 + 3 * i"), [Some(5), Some(-19), None, Some(32)]);
    assert_eq!(
        ints(&df, "(2 + 3) * i"),
        [Some(5), Some(-35), None, Some(50)]
    );
}

#[test]
fn division_is_true_division_and_null_on_zero() {
    let df = frame();
    let q = floats(&df, "i / j");
    assert_eq!(q[0], Some(0.5));
    assert!((q[1].unwrap() + 7.0 / 3.0).abs() < 1e-12);
    assert_eq!(&q[2..], [None, None]);
    assert_eq!(floats(&one_row(), "7 / 2"), [Some(3.5)]);
    assert_eq!(floats(&one_row(), "1.0 / 0"), [None]);
    assert_eq!(floats(&df, "f / 0.0"), [None; 4]);
}

#[test]
fn remainder_takes_the_sign_of_the_dividend() {
    let df = frame();
    assert_eq!(ints(&df, "i % j"), [Some(1), Some(-1), None, None]);
    assert_eq!(ints(&df, "i % -3"), [Some(1), Some(-1), None, Some(1)]);
    assert_eq!(ints(&df, "i % 3"), [Some(1), Some(-1), None, Some(1)]);
    assert_eq!(
        floats(&df, "f % 1"),
        [Some(0.5), Some(-0.5), None, Some(0.0)]
    );
}

#[test]
fn comparisons() {
    let df = frame();
    assert_eq!(
        bools(&df, "i > j"),
        [Some(false), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i = 1.0"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "i <> 1"),
        [Some(false), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i != 1"),
        [Some(false), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i <= 1"),
        [Some(true), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "i >= 10"),
        [Some(false), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i < 0"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s = 'Hello'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s < 'b'"),
        [Some(true), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "b = TRUE"),
        [Some(true), Some(false), N, Some(true)]
    );
    // Comparisons with NULL are NULL.
    assert_eq!(bools(&df, "i = NULL"), [N; 4]);
    assert_eq!(bools(&one_row(), "NULL = NULL"), [N]);
}

#[test]
fn dates_compare_with_iso_string_literals() {
    let df = frame();
    assert_eq!(
        bools(&df, "d > '2024-01-01'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "'2024-01-01' < d"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "d = DATE '2023-12-31'"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "ts > d"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "ts >= '2023-12-31'"),
        [Some(true), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "ts < '2024-02-28 23:30:01'"),
        [Some(true), Some(true), N, Some(true)]
    );
}

#[test]
fn three_valued_logic() {
    let df = frame();
    assert_eq!(bools(&df, "b AND NULL"), [N, Some(false), N, N]);
    assert_eq!(bools(&df, "b OR NULL"), [Some(true), N, N, Some(true)]);
    assert_eq!(
        bools(&df, "NOT b"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "b AND i > 0"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i > 0 OR j > 2"),
        [Some(true), Some(true), N, Some(true)]
    );
    assert_eq!(bools(&one_row(), "NULL AND FALSE"), [Some(false)]);
    assert_eq!(bools(&one_row(), "NULL OR TRUE"), [Some(true)]);
    assert_eq!(bools(&one_row(), "NOT NULL"), [N]);
}

#[test]
fn string_concatenation_propagates_null() {
    let df = frame();
    assert_eq!(
        strs(&df, "s || '!'"),
        v(&[Some("Hello!"), Some(" pad !"), None, Some("a\r\n\r\nb\nc!")])
    );
    assert_eq!(
        strs(&df, "'n' || i"),
        v(&[Some("n1"), Some("n-7"), None, Some("n10")])
    );
    assert_eq!(
        strs(&df, "i || '-' || j || '-' || b"),
        v(&[
            Some("1-2-true"),
            Some("-7-3-false"),
            None,
            Some("10-0-true")
        ])
    );
    assert_eq!(
        strs(&df, "f || ''"),
        v(&[Some("1.5"), Some("-2.5"), None, Some("0.0")])
    );
    assert_eq!(
        strs(&df, "d || ''"),
        v(&[
            Some("2024-02-28"),
            Some("2023-12-31"),
            None,
            Some("2020-03-01")
        ])
    );
    assert_eq!(strs(&one_row(), "'x' || NULL"), v(&[None]));
}

#[test]
fn is_null() {
    let df = frame();
    assert_eq!(
        bools(&df, "i IS NULL"),
        [Some(false), Some(false), Some(true), Some(false)]
    );
    assert_eq!(
        bools(&df, "s IS NOT NULL"),
        [Some(true), Some(true), Some(false), Some(true)]
    );
    assert_eq!(bools(&one_row(), "NULL IS NULL"), [Some(true)]);
}

#[test]
fn in_lists() {
    let df = frame();
    assert_eq!(
        bools(&df, "i IN (1, 10)"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(bools(&df, "i IN (1, NULL)"), [Some(true), N, N, N]);
    assert_eq!(
        bools(&df, "i NOT IN (1, 10)"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(bools(&df, "i NOT IN (1, NULL)"), [Some(false), N, N, N]);
    assert_eq!(
        bools(&df, "i IN (1.0, 2.5)"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s IN ('Hello', lower('PAD'))"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "d IN ('2024-02-28', '2020-03-01')"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "ts IN (TIMESTAMP '2023-12-31 00:00:00')"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "i IN (j, 10)"),
        [Some(false), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "b IN (TRUE)"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(bools(&df, "i IN (NULL)"), [N; 4]);
}

#[test]
fn between() {
    let df = frame();
    assert_eq!(
        bools(&df, "i BETWEEN 0 AND 5"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "i NOT BETWEEN 0 AND 5"),
        [Some(false), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "d BETWEEN '2024-01-01' AND DATE '2024-12-31'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "f BETWEEN -3 AND 1.5"),
        [Some(true), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "i BETWEEN j AND 10"),
        [Some(false), Some(false), N, Some(true)]
    );
}

#[test]
fn like_and_ilike() {
    let df = frame();
    assert_eq!(
        bools(&df, "s LIKE 'He%'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s LIKE '%llo'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s LIKE '%pa%'"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s LIKE 'H_llo'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s LIKE 'Hello'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s LIKE 'hello'"),
        [Some(false), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s ILIKE 'hE%'"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "s NOT LIKE 'He%'"),
        [Some(false), Some(true), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "s NOT ILIKE '%PAD%'"),
        [Some(true), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "s LIKE 'a%c'"),
        [Some(false), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "s LIKE '%'"),
        [Some(true), Some(true), N, Some(true)]
    );
    // Regex metacharacters in patterns are literal.
    let one = one_row();
    assert_eq!(bools(&one, "'a.b' LIKE 'a_b'"), [Some(true)]);
    assert_eq!(bools(&one, "'a.b' LIKE '_.b'"), [Some(true)]);
    assert_eq!(bools(&one, "'axb' LIKE '_.b'"), [Some(false)]);
    assert_eq!(bools(&one, "'axb' LIKE 'a.b'"), [Some(false)]);
    assert_eq!(bools(&one, "'a+b' LIKE 'a+%'"), [Some(true)]);
    assert_eq!(bools(&one, "'(x)' LIKE '(%)'"), [Some(true)]);
    assert_eq!(bools(&one, "'x' LIKE NULL"), [N]);
}

#[test]
fn case_expressions() {
    let df = frame();
    assert_eq!(
        strs(&df, "CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' END"),
        v(&[Some("pos"), Some("neg"), None, Some("pos")])
    );
    // Without ELSE, no match gives NULL.
    assert_eq!(
        strs(&df, "CASE WHEN i > 5 THEN 'big' END"),
        v(&[None, None, None, Some("big")])
    );
    assert_eq!(
        strs(
            &df,
            "CASE i WHEN 1 THEN 'one' WHEN 10 THEN 'ten' ELSE 'other' END"
        ),
        v(&[Some("one"), Some("other"), Some("other"), Some("ten")])
    );
    // int64 and float64 branches meet at float64; a NULL condition falls through.
    assert_eq!(
        floats(&df, "CASE WHEN b THEN i * f ELSE 0 END"),
        [Some(1.5), Some(0.0), Some(0.0), Some(0.0)]
    );
    assert_eq!(
        ints(&df, "CASE d WHEN '2024-02-28' THEN 1 ELSE 0 END"),
        [Some(1), Some(0), Some(0), Some(0)]
    );
    assert_eq!(
        ints(&df, "CASE WHEN b THEN NULL ELSE i END"),
        [None, Some(-7), None, None]
    );
}

#[test]
fn casts() {
    let df = frame();
    let one = one_row();
    assert_eq!(
        strs(&df, "CAST(i AS string)"),
        v(&[Some("1"), Some("-7"), None, Some("10")])
    );
    assert_eq!(ints(&one, "CAST('12' AS int64)"), [Some(12)]);
    assert_eq!(
        ints(&df, "CAST(f AS int64)"),
        [Some(1), Some(-2), None, Some(0)]
    );
    assert_eq!(ints(&one, "TRY_CAST('x' AS int64)"), [None]);
    let err = try_eval(&one, "CAST('x' AS int64)").unwrap_err();
    assert!(err.starts_with("polars:"), "{err}");
    assert_eq!(
        floats(&df, "i::float64"),
        [Some(1.0), Some(-7.0), None, Some(10.0)]
    );
    assert_eq!(floats(&one, "CAST('2.5' AS double)"), [Some(2.5)]);
    assert_eq!(
        strs(&df, "CAST(d AS string)"),
        v(&[
            Some("2024-02-28"),
            Some("2023-12-31"),
            None,
            Some("2020-03-01")
        ])
    );
    assert_eq!(
        texts(&df, "CAST(ts AS date)"),
        v(&[
            Some("2024-02-28"),
            Some("2023-12-31"),
            None,
            Some("2020-03-01")
        ])
    );
    assert_eq!(
        texts(&one, "CAST('2024-01-31' AS date)"),
        v(&[Some("2024-01-31")])
    );
    assert_eq!(texts(&one, "TRY_CAST('2024-13-01' AS date)"), v(&[None]));
    assert!(try_eval(&one, "CAST('2024-13-01' AS date)").is_err());
    assert_eq!(bools(&one, "CAST('true' AS bool)"), [Some(true)]);
    assert_eq!(bools(&one, "CAST(' Yes ' AS boolean)"), [Some(true)]);
    assert_eq!(bools(&one, "CAST('0' AS bool)"), [Some(false)]);
    assert_eq!(bools(&one, "TRY_CAST('maybe' AS bool)"), [N]);
    assert_eq!(
        ints(&df, "CAST(b AS int64)"),
        [Some(1), Some(0), None, Some(1)]
    );
    assert_eq!(
        bools(&df, "CAST(i AS bool)"),
        [Some(true), Some(true), N, Some(true)]
    );
    assert_eq!(ints(&one, "CAST(NULL AS int64)"), [None]);
    assert_eq!(
        strs(&df, "CAST(ts AS string)")[0].as_deref(),
        Some("2024-02-28 23:30:00.000000")
    );
    assert_eq!(strs(&df, "CAST(b AS string)")[1].as_deref(), Some("false"));
    // int64 arithmetic wraps around on overflow (documented).
    assert_eq!(ints(&one, "9223372036854775807 + 1"), [Some(i64::MIN)]);
    assert_eq!(
        texts(&one, "CAST('2024-01-31 10:00:00' AS datetime)"),
        v(&[Some("2024-01-31 10:00:00.000000")])
    );
    assert_eq!(
        texts(&df, "CAST(d AS timestamp)"),
        v(&[
            Some("2024-02-28 00:00:00.000000"),
            Some("2023-12-31 00:00:00.000000"),
            None,
            Some("2020-03-01 00:00:00.000000")
        ])
    );
}

#[test]
fn conditional_functions() {
    let df = frame();
    assert_eq!(
        ints(&df, "coalesce(i, j, 0)"),
        [Some(1), Some(-7), Some(0), Some(10)]
    );
    assert_eq!(
        floats(&df, "coalesce(f, i)"),
        [Some(1.5), Some(-2.5), None, Some(0.0)]
    );
    assert_eq!(
        strs(&df, "coalesce(s, 'none')")[2],
        Some("none".to_string())
    );
    assert_eq!(
        texts(&df, "coalesce(d, '2000-01-01')")[2],
        Some("2000-01-01".to_string())
    );
    assert_eq!(ints(&df, "nullif(i, 1)"), [None, Some(-7), None, Some(10)]);
    assert_eq!(
        strs(&df, "nullif(s, 'Hello')"),
        v(&[None, Some(" pad "), None, Some("a\r\n\r\nb\nc")])
    );
    assert_eq!(
        strs(&df, "if(b, 'y', 'n')"),
        v(&[Some("y"), Some("n"), Some("n"), Some("y")])
    );
    assert_eq!(
        floats(&df, "if(i > 0, i, f)"),
        [Some(1.0), Some(-2.5), None, Some(10.0)]
    );
    assert_eq!(
        ints(&df, "IF(i > 0, 1, 0)"),
        [Some(1), Some(0), Some(0), Some(1)]
    );
}

#[test]
fn numeric_functions() {
    let df = frame();
    let one = one_row();
    assert_eq!(ints(&df, "abs(i)"), [Some(1), Some(7), None, Some(10)]);
    assert_eq!(
        floats(&df, "abs(f)"),
        [Some(1.5), Some(2.5), None, Some(0.0)]
    );
    // Half away from zero, as SQL engines round.
    assert_eq!(
        floats(&df, "round(f)"),
        [Some(2.0), Some(-3.0), None, Some(0.0)]
    );
    assert_eq!(floats(&one, "round(1.23456, 2)"), [Some(1.23)]);
    assert_eq!(floats(&one, "round(0.125, 2)"), [Some(0.13)]);
    assert_eq!(ints(&one, "round(1234, -2)"), [Some(1200)]);
    assert_eq!(ints(&one, "round(1250, -2)"), [Some(1300)]);
    assert_eq!(ints(&one, "round(-1250, -2)"), [Some(-1300)]);
    assert_eq!(floats(&one, "round(1250.5, -2)"), [Some(1300.0)]);
    assert_eq!(
        ints(&df, "round(i, 1)"),
        [Some(1), Some(-7), None, Some(10)]
    );
    assert_eq!(ints(&df, "floor(f)"), [Some(1), Some(-3), None, Some(0)]);
    assert_eq!(ints(&df, "ceil(f)"), [Some(2), Some(-2), None, Some(0)]);
    assert_eq!(ints(&df, "floor(i)"), [Some(1), Some(-7), None, Some(10)]);
    assert_eq!(ints(&one, "floor(7 / 2)"), [Some(3)]);
    assert_eq!(ints(&df, "least(i, j)"), [Some(1), Some(-7), None, Some(0)]);
    assert_eq!(
        ints(&df, "greatest(i, j, 0)"),
        [Some(2), Some(3), Some(0), Some(10)]
    );
    assert_eq!(
        floats(&df, "least(i, f)"),
        [Some(1.0), Some(-7.0), None, Some(0.0)]
    );
    assert_eq!(
        texts(&df, "least(d, '2024-01-01')"),
        v(&[
            Some("2024-01-01"),
            Some("2023-12-31"),
            Some("2024-01-01"),
            Some("2020-03-01")
        ])
    );
}

#[test]
fn string_functions() {
    let df = frame();
    let one = one_row();
    assert_eq!(
        strs(&df, "lower(s)"),
        v(&[Some("hello"), Some(" pad "), None, Some("a\r\n\r\nb\nc")])
    );
    assert_eq!(strs(&df, "UPPER(s)")[0], Some("HELLO".to_string()));
    assert_eq!(
        strs(&df, "trim(s)"),
        v(&[Some("Hello"), Some("pad"), None, Some("a\r\n\r\nb\nc")])
    );
    assert_eq!(strs(&df, "ltrim(s)")[1], Some("pad ".to_string()));
    assert_eq!(strs(&df, "rtrim(s)")[1], Some(" pad".to_string()));
    assert_eq!(ints(&df, "length(s)"), [Some(5), Some(5), None, Some(8)]);
    assert_eq!(ints(&one, "length('héllo')"), [Some(5)]);
    assert_eq!(
        strs(&one, "replace('a.b.c', '.', '-')"),
        v(&[Some("a-b-c")])
    );
    assert_eq!(strs(&one, "replace('abc', 'b', '$0')"), v(&[Some("a$0c")]));
    assert_eq!(
        strs(&df, "replace(s, 'l', 'L')")[0],
        Some("HeLLo".to_string())
    );
    assert_eq!(
        strs(&df, "replace(s, '', 'x')")[0],
        Some("Hello".to_string())
    );
    assert_eq!(
        strs(&df, r"regexp_replace(s, '[\r\n]+', ' ')"),
        v(&[Some("Hello"), Some(" pad "), None, Some("a b c")])
    );
    assert_eq!(
        strs(
            &one,
            r"regexp_replace('2024-01-31', '(\d+)-(\d+)-(\d+)', '$3/$2/$1')"
        ),
        v(&[Some("31/01/2024")])
    );
    assert_eq!(
        strs(&one, "regexp_replace('aaa', 'a', 'b')"),
        v(&[Some("bbb")])
    );
    assert_eq!(
        bools(&df, "regexp_like(s, '^H')"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, r"regexp_like(s, 'b\nc')"),
        [Some(false), Some(false), N, Some(true)]
    );
    // concat treats NULL as empty; || does not.
    assert_eq!(
        strs(&df, "concat(s, '-', i)"),
        v(&[
            Some("Hello-1"),
            Some(" pad --7"),
            Some("-"),
            Some("a\r\n\r\nb\nc-10")
        ])
    );
    assert_eq!(strs(&one, "concat(NULL, NULL)"), v(&[Some("")]));
    assert_eq!(
        strs(&one, "concat('a', 1, TRUE, 2.5, DATE '2024-01-02')"),
        v(&[Some("a1true2.52024-01-02")])
    );
    assert_eq!(
        bools(&df, "starts_with(s, 'He')"),
        [Some(true), Some(false), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "ends_with(s, 'c')"),
        [Some(false), Some(false), N, Some(true)]
    );
    assert_eq!(
        bools(&df, "contains(s, 'pa')"),
        [Some(false), Some(true), N, Some(false)]
    );
    assert_eq!(
        bools(&df, "contains(s, '.')"),
        [Some(false), Some(false), N, Some(false)]
    );
}

#[test]
fn substr_is_one_based() {
    let df = frame();
    let one = one_row();
    let s1 = |src: &str| strs(&one, src).remove(0);
    assert_eq!(s1("substr('hello', 2, 3)").as_deref(), Some("ell"));
    assert_eq!(s1("substr('hello', 2)").as_deref(), Some("ello"));
    assert_eq!(s1("substr('hello', 1, 1)").as_deref(), Some("h"));
    assert_eq!(s1("substr('hello', 0, 2)").as_deref(), Some("he"));
    assert_eq!(s1("substr('hello', -3)").as_deref(), Some("llo"));
    assert_eq!(s1("substr('hello', -3, 2)").as_deref(), Some("ll"));
    assert_eq!(s1("substr('hello', 1, -1)").as_deref(), Some(""));
    assert_eq!(s1("substr('hello', 10)").as_deref(), Some(""));
    assert_eq!(s1("SUBSTRING('hello' FROM 2 FOR 2)").as_deref(), Some("el"));
    assert_eq!(s1("substring('héllo', 2, 2)").as_deref(), Some("él"));
    assert_eq!(s1("substr('hello', 1, NULL)"), None);
    assert_eq!(s1("substr('hello', NULL)"), None);
    assert_eq!(
        strs(&df, "substr(s, j)"),
        v(&[Some("ello"), Some("ad "), None, Some("a\r\n\r\nb\nc")])
    );
    assert_eq!(
        strs(&df, "substr(s, 1, j)"),
        v(&[Some("He"), Some(" pa"), None, Some("")])
    );
}

#[test]
fn to_date_reads_unpadded_days_and_months() {
    let one = one_row();
    let d1 = |src: &str| texts(&one, src).remove(0);
    assert_eq!(
        d1("to_date('6/11/2018', 'd/m/yyyy')").as_deref(),
        Some("2018-11-06")
    );
    assert_eq!(
        d1("to_date('06/11/2018', 'd/m/yyyy')").as_deref(),
        Some("2018-11-06")
    );
    assert_eq!(
        d1("to_date('6/11/2018', 'dd/mm/yyyy')").as_deref(),
        Some("2018-11-06")
    );
    assert_eq!(
        d1("to_date('6/11/2018', '%d/%m/%Y')").as_deref(),
        Some("2018-11-06")
    );
    assert_eq!(
        d1("to_date('11/6/18', 'm/d/yy')").as_deref(),
        Some("2018-11-06")
    );
    assert_eq!(d1("to_date('2018-11-06')").as_deref(), Some("2018-11-06"));
    assert_eq!(
        d1("to_date('20181106', 'yyyymmdd')").as_deref(),
        Some("2018-11-06")
    );
    // Not a date, or not matching the format: NULL.
    assert_eq!(d1("to_date('31/02/2018', 'dd/mm/yyyy')"), None);
    assert_eq!(d1("to_date('garbage', 'dd/mm/yyyy')"), None);
    assert_eq!(d1("to_date('2018-11-06 extra', 'yyyy-mm-dd')"), None);
    assert_eq!(d1("to_date(NULL, 'yyyy-mm-dd')"), None);

    // A column mixing padded and unpadded values (polars' fast parser needs padding and
    // falls back per value; this pins that the fallback works).
    let df = pl::DataFrame::new_infer_height(vec![pl::Series::new(
        "raw".into(),
        [
            Some("6/11/2018"),
            Some("16/1/2019"),
            Some("06/11/2018"),
            Some("x"),
            None,
            Some("1/1/2000"),
        ],
    )
    .into()])
    .unwrap();
    let expected = v(&[
        Some("2018-11-06"),
        Some("2019-01-16"),
        Some("2018-11-06"),
        None,
        None,
        Some("2000-01-01"),
    ]);
    assert_eq!(texts(&df, "to_date(raw, 'd/m/yyyy')"), expected);
    assert_eq!(texts(&df, "to_date(raw, '%d/%m/%Y')"), expected);
}

#[test]
fn to_timestamp_parses() {
    let one = one_row();
    assert_eq!(
        texts(&one, "to_timestamp('2024-01-31 10:05:00')"),
        v(&[Some("2024-01-31 10:05:00.000000")])
    );
    assert_eq!(
        texts(&one, "to_timestamp('31/1/2024 9:05', 'd/m/yyyy H:MM')"),
        v(&[Some("2024-01-31 09:05:00.000000")])
    );
    assert_eq!(texts(&one, "to_timestamp('nope')"), v(&[None]));
}

#[test]
fn date_arithmetic() {
    let df = frame();
    let one = one_row();
    let i1 = |src: &str| ints(&one, src)[0];
    // Leap years: 2024 has a 29 February, 2023 does not.
    assert_eq!(
        i1("date_diff_days(DATE '2024-03-01', DATE '2024-02-28')"),
        Some(2)
    );
    assert_eq!(
        i1("date_diff_days(DATE '2023-03-01', DATE '2023-02-28')"),
        Some(1)
    );
    assert_eq!(
        i1("date_diff_days(DATE '2025-01-01', DATE '2024-01-01')"),
        Some(366)
    );
    assert_eq!(
        i1("date_diff_days(DATE '2024-01-01', DATE '2025-01-01')"),
        Some(-366)
    );
    assert_eq!(i1("date_diff_days('2024-03-01', '2024-02-01')"), Some(29));
    assert_eq!(
        i1("date_diff_days(TIMESTAMP '2024-03-01 00:30:00', TIMESTAMP '2024-02-29 23:59:00')"),
        Some(1)
    );
    assert_eq!(
        ints(&df, "date_diff_days('2024-03-01', d)"),
        [Some(2), Some(61), None, Some(1461)]
    );
    assert_eq!(
        ints(&df, "date_diff_days(ts, d)"),
        [Some(0), Some(0), None, Some(0)]
    );
    assert_eq!(
        bools(&df, "date_diff_days(DATE '2024-03-31', d) > 30"),
        [Some(true), Some(true), N, Some(true)]
    );

    assert_eq!(
        texts(&one, "date_add_days(DATE '2024-02-28', 1)"),
        v(&[Some("2024-02-29")])
    );
    assert_eq!(
        texts(&one, "date_add_days('2024-12-31', 1)"),
        v(&[Some("2025-01-01")])
    );
    assert_eq!(
        texts(&df, "date_add_days(d, -1)"),
        v(&[
            Some("2024-02-27"),
            Some("2023-12-30"),
            None,
            Some("2020-02-29")
        ])
    );
    assert_eq!(
        texts(&df, "date_add_days(d, j)"),
        v(&[
            Some("2024-03-01"),
            Some("2024-01-03"),
            None,
            Some("2020-03-01")
        ])
    );
    assert_eq!(
        texts(&df, "date_add_days(ts, 1)"),
        v(&[
            Some("2024-02-29 23:30:00.000000"),
            Some("2024-01-01 00:00:00.000000"),
            None,
            Some("2020-03-02 12:00:01.000000")
        ])
    );
}

#[test]
fn date_parts_and_formatting() {
    let df = frame();
    let one = one_row();
    assert_eq!(
        ints(&df, "year(d)"),
        [Some(2024), Some(2023), None, Some(2020)]
    );
    assert_eq!(ints(&df, "month(d)"), [Some(2), Some(12), None, Some(3)]);
    assert_eq!(ints(&df, "day(d)"), [Some(28), Some(31), None, Some(1)]);
    assert_eq!(
        ints(&df, "year(ts)"),
        [Some(2024), Some(2023), None, Some(2020)]
    );
    assert_eq!(
        ints(&df, "EXTRACT(MONTH FROM ts)"),
        [Some(2), Some(12), None, Some(3)]
    );
    assert_eq!(ints(&one, "day('2024-02-29')"), [Some(29)]);
    assert_eq!(
        strs(&one, "format_date(DATE '2018-11-06', 'd/m/yyyy')"),
        v(&[Some("6/11/2018")])
    );
    assert_eq!(
        strs(&one, "format_date(DATE '2018-11-06', 'dd/mm/yyyy')"),
        v(&[Some("06/11/2018")])
    );
    assert_eq!(
        strs(&df, "format_date(ts, 'yyyy-mm-dd HH:MM')"),
        v(&[
            Some("2024-02-28 23:30"),
            Some("2023-12-31 00:00"),
            None,
            Some("2020-03-01 12:00")
        ])
    );
    assert_eq!(
        strs(&df, "format_date(d, '%Y%m%d')"),
        v(&[Some("20240228"), Some("20231231"), None, Some("20200301")])
    );
}

#[test]
fn pipeline_examples() {
    let df = pl::DataFrame::new_infer_height(vec![
        pl::Series::new(
            "company_address".into(),
            [Some("1 Main St\r\nSpringfield"), None],
        )
        .into(),
        date_series("date_issued", &[Some("2024-01-01"), Some("2024-03-15")]),
        pl::Series::new("late".into(), [Some(true), Some(false)]).into(),
        pl::Series::new("quantity".into(), [Some(3i64), Some(2)]).into(),
        pl::Series::new("item_retail_price".into(), [Some(2.5f64), Some(4.0)]).into(),
    ])
    .unwrap();
    assert_eq!(
        strs(&df, r"regexp_replace(company_address, '[\r\n]+', ' ')"),
        v(&[Some("1 Main St Springfield"), None])
    );
    assert_eq!(
        bools(&df, "date_diff_days(DATE '2024-03-31', date_issued) > 30"),
        [Some(true), Some(false)]
    );
    assert_eq!(
        floats(
            &df,
            "CASE WHEN late THEN quantity * item_retail_price ELSE 0 END"
        ),
        [Some(7.5), Some(0.0)]
    );
}

#[test]
fn quoted_and_odd_column_names() {
    let df = pl::DataFrame::new_infer_height(vec![
        pl::Series::new("my col".into(), [1i64, 2]).into(),
        pl::Series::new("Date".into(), [3i64, 4]).into(),
        pl::Series::new("we\"ird".into(), [5i64, 6]).into(),
    ])
    .unwrap();
    assert_eq!(
        ints(&df, "\"my col\" + \"Date\" + \"we\"\"ird\""),
        [Some(9), Some(12)]
    );
}

#[test]
fn strftime_from_patterns_parses_in_polars_directly() {
    // The load step hands `datefmt::to_strftime` output straight to polars; the padding
    // flags (`%-d`) must not stop polars from reading padded or unpadded values.
    use polars::prelude::{col, IntoLazy, StrptimeOptions};
    let df = pl::DataFrame::new_infer_height(vec![pl::Series::new(
        "raw".into(),
        [
            Some("6/11/2018"),
            Some("16/1/2019"),
            Some("06/11/2018"),
            None,
        ],
    )
    .into()])
    .unwrap();
    for fmt in [
        crate::datefmt::to_strftime("d/m/yyyy").unwrap(),
        crate::datefmt::to_strftime("dd/mm/yyyy").unwrap(),
    ] {
        let out = df
            .clone()
            .lazy()
            .select([col("raw").str().to_date(StrptimeOptions {
                format: Some(fmt.as_str().into()),
                strict: true,
                exact: true,
                cache: true,
            })])
            .collect()
            .unwrap_or_else(|e| panic!("{fmt}: {e}"));
        let s = out
            .column("raw")
            .unwrap()
            .as_materialized_series()
            .cast(&pl::DataType::String)
            .unwrap();
        let got: Vec<Option<String>> = s
            .str()
            .unwrap()
            .iter()
            .map(|o| o.map(str::to_string))
            .collect();
        assert_eq!(
            got,
            v(&[
                Some("2018-11-06"),
                Some("2019-01-16"),
                Some("2018-11-06"),
                None
            ]),
            "{fmt}"
        );
    }
}

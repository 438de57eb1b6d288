//! No input may panic: random token soups, mutated valid expressions and random
//! well-formed expressions go through parse, check, to_sql and to_polars (and, for the
//! well-typed ones, execution).

use polars::prelude::IntoLazy;

use super::*;
use crate::tests::roundtrip::CORPUS;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "i",
    "j",
    "f",
    "s",
    "b",
    "d",
    "ts",
    "\"s\"",
    "nope",
    "1",
    "0",
    "-3",
    "2.5",
    "1e400",
    "99999999999999999999",
    "'x'",
    "'2024-02-29'",
    "'6/11/2018'",
    "''",
    "'%'",
    "'['",
    "NULL",
    "TRUE",
    "FALSE",
    "DATE '2024-01-01'",
    "DATE 'x'",
    "TIMESTAMP '2024-01-01 00:00:00'",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "IN",
    "BETWEEN",
    "LIKE",
    "ILIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "TRY_CAST",
    "AS",
    "int64",
    "string",
    "date",
    "::",
    "(",
    ")",
    "(",
    ")",
    ",",
    ",",
    "coalesce",
    "nullif",
    "if",
    "abs",
    "round",
    "floor",
    "ceil",
    "least",
    "greatest",
    "lower",
    "upper",
    "trim",
    "length",
    "replace",
    "regexp_replace",
    "regexp_like",
    "concat",
    "substr",
    "substring",
    "starts_with",
    "contains",
    "to_date",
    "to_timestamp",
    "date_diff_days",
    "date_add_days",
    "year",
    "month",
    "day",
    "format_date",
    "now",
    "sum",
    "count",
    "*",
    "${as_of}",
    "$1",
    "?",
    ";",
    "[",
    "]",
    "{",
    "}",
    ".",
    "@",
    "#",
    "--",
    "/*",
    "*/",
    "'",
    "\"",
    "`",
    "\\",
    "é",
    "日本",
    "\u{0}",
    "\n",
    "\t",
    " ",
    "FROM",
    "FOR",
    "LEADING",
    "EXTRACT",
    "YEAR",
    "SELECT",
    "ARRAY",
    "INTERVAL",
    "OVER",
    "DISTINCT",
    "ESCAPE",
    "E'x'",
    "N'x'",
    "$$x$$",
    "X'00'",
];

fn soup(rng: &mut Rng) -> String {
    let n = 1 + rng.below(14);
    let mut s = String::new();
    for _ in 0..n {
        let token: &&str = rng.pick(TOKENS);
        s.push_str(token);
        if rng.below(3) > 0 {
            s.push(' ');
        }
    }
    s
}

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let pos = if chars.is_empty() {
            0
        } else {
            rng.below(chars.len() + 1)
        };
        match rng.below(3) {
            0 if pos < chars.len() => {
                chars.remove(pos);
            }
            1 => {
                let t: Vec<char> = (*rng.pick(TOKENS)).chars().collect();
                chars.splice(pos..pos, t);
            }
            _ => {
                let c = char::from_u32(rng.below(0x3000) as u32).unwrap_or('?');
                chars.insert(pos.min(chars.len()), c);
            }
        }
    }
    chars.into_iter().collect()
}

/// A random expression that is syntactically valid (types are random too).
fn gen_expr(rng: &mut Rng, depth: usize) -> String {
    const LEAVES: &[&str] = &[
        "i",
        "j",
        "f",
        "s",
        "b",
        "d",
        "ts",
        "1",
        "-2",
        "0",
        "2.5",
        "'x'",
        "'2024-02-29'",
        "NULL",
        "TRUE",
        "DATE '2024-01-31'",
        "TIMESTAMP '2024-01-31 10:00:00'",
        "'6/11/2018'",
    ];
    if depth == 0 || rng.below(4) == 0 {
        return rng.pick(LEAVES).to_string();
    }
    let mut sub = || gen_expr(rng, depth - 1);
    let (a, b, c) = (sub(), sub(), sub());
    match rng.below(14) {
        0 => format!("({a} {} {b})", rng.pick(&["+", "-", "*", "/", "%", "||"])),
        1 => format!("({a} {} {b})", rng.pick(&["=", "<>", "<", "<=", ">", ">="])),
        2 => format!("({a} {} {b})", rng.pick(&["AND", "OR"])),
        3 => format!("(NOT {a})"),
        4 => format!("(-{a})"),
        5 => format!("({a} IS {}NULL)", rng.pick(&["", "NOT "])),
        6 => format!("({a} {}IN ({b}, {c}))", rng.pick(&["", "NOT "])),
        7 => format!("({a} {}BETWEEN {b} AND {c})", rng.pick(&["", "NOT "])),
        8 => format!(
            "({a} {} {})",
            rng.pick(&["LIKE", "ILIKE", "NOT LIKE"]),
            rng.pick(&["'x%'", "'%'", "'_a%b'", "NULL"])
        ),
        9 => format!("CASE WHEN {a} THEN {b} ELSE {c} END"),
        10 => format!("CASE {a} WHEN {b} THEN {c} END"),
        11 => format!(
            "{}({a} AS {})",
            rng.pick(&["CAST", "TRY_CAST"]),
            rng.pick(&["int64", "float64", "string", "date", "datetime", "bool"])
        ),
        12 => {
            let f = *rng.pick(&[
                "coalesce",
                "nullif",
                "if",
                "abs",
                "round",
                "floor",
                "ceil",
                "least",
                "greatest",
                "lower",
                "upper",
                "trim",
                "ltrim",
                "rtrim",
                "length",
                "concat",
                "substr",
                "starts_with",
                "ends_with",
                "contains",
                "date_diff_days",
                "date_add_days",
                "year",
                "month",
                "day",
                "to_date",
                "to_timestamp",
            ]);
            let n = 1 + rng.below(3);
            let args = [a, b, c][..n].join(", ");
            format!("{f}({args})")
        }
        _ => {
            let f = *rng.pick(&[
                "replace(",
                "regexp_replace(",
                "regexp_like(",
                "format_date(",
                "to_date(",
            ]);
            match f {
                "replace(" => format!("replace({a}, 'x', 'y')"),
                "regexp_replace(" => format!("regexp_replace({a}, '[a-z]+', '$0!')"),
                "regexp_like(" => format!("regexp_like({a}, '^x')"),
                "format_date(" => format!("format_date({a}, 'd/m/yyyy')"),
                _ => format!("to_date({a}, 'd/m/yyyy')"),
            }
        }
    }
}

/// Everything a caller may do with text; must never panic.
fn exercise(src: &str, schema: &Schema) -> Option<crate::Expr> {
    let e = parse(src).ok()?;
    let sql = e.to_sql();
    let again = parse(&sql)
        .unwrap_or_else(|err| panic!("canonical `{sql}` of `{src:?}` does not parse: {err}"));
    assert_eq!(again, e, "round trip of `{src:?}` via `{sql}`");
    let _ = e.columns();
    let checked = e.check(schema);
    let lowered = e.to_polars(schema);
    assert_eq!(
        checked.is_ok(),
        lowered.is_ok(),
        "check and to_polars disagree on `{src}`: {lowered:?}"
    );
    checked.ok().map(|_| e)
}

#[test]
fn garbage_never_panics() {
    let df = frame();
    let schema = frame_schema(&df);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let src = soup(&mut rng);
        parsed += usize::from(exercise(&src, &schema).is_some());
    }
    for _ in 0..20_000 {
        let base = rng.pick(CORPUS);
        let src = mutate(&mut rng, base);
        exercise(&src, &schema);
    }
    // Random bytes interpreted as text (lossy), including control characters.
    for _ in 0..5_000 {
        let n = rng.below(40);
        let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        exercise(&String::from_utf8_lossy(&bytes), &schema);
    }
    assert!(parsed > 0, "the soup should sometimes be valid");
}

#[test]
fn well_formed_random_expressions_run() {
    let df = frame();
    let schema = frame_schema(&df);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut ran = 0;
    for _ in 0..3_000 {
        let src = gen_expr(&mut rng, 4);
        let Some(e) = exercise(&src, &schema) else {
            continue;
        };
        let t = e.check(&schema).expect("checked above");
        let pe = e.to_polars(&schema).expect("lowered above");
        // Runtime errors are allowed (e.g. a strict CAST of bad text); panics and type
        // disagreements are not.
        if let Ok(out) = df.clone().lazy().select([pe.alias("out")]).collect() {
            let got = out.column("out").expect("column").dtype().clone();
            if t != DataType::Null {
                assert_eq!(got, to_polars_dtype(&t), "dtype of `{src}`");
            }
            ran += 1;
        }
    }
    assert!(ran > 200, "only {ran} random expressions ran");
}

#[test]
fn deep_and_long_inputs_are_refused_not_overflowed() {
    let schema = schema(&[("a", DataType::Int64)]);
    let deep = format!("{}a{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(parse(&deep).is_err());
    let chain = vec!["a"; 5_000].join(" + ");
    assert!(parse(&chain).is_err());
    let nots = format!("{}TRUE", "NOT ".repeat(5_000));
    assert!(parse(&nots).is_err());
    let fns = format!("{}a{}", "abs(".repeat(300), ")".repeat(300));
    assert!(parse(&fns).is_err());
    // Long but flat is fine.
    let list = (0..3_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let e = parse(&format!("a IN ({list})")).expect("long IN list");
    assert!(e.check(&schema).is_ok());
    // Near the limits, everything still works, including polars' own passes (this runs on
    // a test thread with the default 2 MiB stack).
    let df = frame();
    let chain = vec!["i"; 250].join(" + ");
    assert_eq!(
        ints(&df, &chain),
        [Some(250), Some(-1750), None, Some(2500)]
    );
    let nested = format!("{}i{}", "abs(".repeat(40), ")".repeat(40));
    assert_eq!(ints(&df, &nested), [Some(1), Some(7), None, Some(10)]);
    let cases = format!(
        "{}0{}",
        "CASE WHEN i > 0 THEN 1 ELSE ".repeat(30),
        " END".repeat(30)
    );
    assert_eq!(ints(&df, &cases), [Some(1), Some(0), Some(0), Some(1)]);
    let _ = schema;
}

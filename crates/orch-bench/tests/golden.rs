//! The baseline against the golden files of the independent DuckDB reference
//! (tests/expected/), and the Parquet schema it writes.

use std::path::{Path, PathBuf};

use orch_bench::{compute, parse_date, write, Options, LATE_PAYMENT_COLUMNS, PRODUCT_MIX_COLUMNS};
use polars::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("orch-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn read_text(path: &Path) -> DataFrame {
    LazyCsvReader::new(PlRefPath::new(path.to_str().unwrap()))
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_missing_is_null(false)
        .finish()
        .unwrap()
        .collect()
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
        _ => false,
    }
}

fn assert_csv_eq(actual: &Path, expected: &Path) {
    let a = read_text(actual);
    let e = read_text(expected);
    assert_eq!(
        a.get_column_names(),
        e.get_column_names(),
        "{}",
        actual.display()
    );
    assert_eq!(a.height(), e.height(), "{}", actual.display());
    for (ca, ce) in a.columns().iter().zip(e.columns()) {
        let sa = ca.str().unwrap();
        let se = ce.str().unwrap();
        for (i, (x, y)) in sa.iter().zip(se.iter()).enumerate() {
            let (x, y) = (x.unwrap_or(""), y.unwrap_or(""));
            assert!(
                same_cell(x, y),
                "{} row {i} column {}: {x:?} vs expected {y:?}",
                actual.display(),
                ca.name()
            );
        }
    }
}

fn check(data: &str, as_of: &str, term: i64, expected: &str) {
    let root = root();
    for (engine, tag) in [(Engine::InMemory, "mem"), (Engine::Streaming, "stream")] {
        let out = out_dir(&format!("{tag}-{}", expected.replace(['/', '=', ','], "_")));
        let opts = Options {
            input_dir: root.join(data),
            output_dir: out.clone(),
            as_of_days: parse_date(as_of).unwrap(),
            payment_term_days: term,
            engine,
        };
        let mut res = compute(&opts).unwrap();
        write(&mut res, &out).unwrap();
        for name in ["late_payment", "product_mix"] {
            assert_csv_eq(
                &out.join(format!("{name}.csv")),
                &root
                    .join("tests/expected")
                    .join(expected)
                    .join(format!("{name}.csv")),
            );
            assert!(out.join(format!("{name}.parquet")).is_file());
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn bundled_2021_03_01() {
    check("data", "2021-03-01", 30, "bundled/as_of=2021-03-01");
}

#[test]
fn bundled_2020_06_15() {
    check("data", "2020-06-15", 30, "bundled/as_of=2020-06-15");
}

#[test]
fn bundled_term_45() {
    check("data", "2021-03-01", 45, "bundled/as_of=2021-03-01,term=45");
}

#[test]
fn edge_cases() {
    check("tests/data/edge", "2024-03-31", 30, "edge/as_of=2024-03-31");
}

#[test]
fn output_schema() {
    let root = root();
    let opts = Options {
        input_dir: root.join("data"),
        output_dir: out_dir("schema"),
        as_of_days: parse_date("2021-03-01").unwrap(),
        payment_term_days: 30,
        engine: Engine::InMemory,
    };
    let res = compute(&opts).unwrap();
    use DataType::*;
    let late: Vec<(&str, DataType)> = res
        .late_payment
        .columns()
        .iter()
        .map(|c| (c.name().as_str(), c.dtype().clone()))
        .collect();
    let expected_types = [
        Int64, String, String, String, String, String, Date, Int64, Int64, Int64, Float64,
    ];
    assert_eq!(
        late.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        LATE_PAYMENT_COLUMNS
    );
    assert_eq!(
        late.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
        expected_types
    );
    let mix: Vec<_> = res
        .product_mix
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    assert_eq!(
        mix.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        PRODUCT_MIX_COLUMNS
    );
    assert_eq!(
        mix.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
        [Int64, String, Int64, List(Box::new(String))]
    );
}

#[test]
fn dates() {
    assert_eq!(parse_date("1970-01-01").unwrap(), 0);
    assert_eq!(parse_date("2021-03-01").unwrap(), 18687);
    assert_eq!(parse_date("2000-02-29").unwrap(), 11016);
    assert_eq!(parse_date("1969-12-31").unwrap(), -1);
    assert!(parse_date("2021-02-29").is_err());
    assert!(parse_date("2021-3-1").is_err());
    assert!(parse_date("2021-13-01").is_err());
}

//! Tests: parsing and canonical SQL, type checking, execution on small frames, docs, and
//! a no-panic property test.

mod check;
mod docs;
mod exec;
mod fuzz;
mod roundtrip;

use orch_spec::{DataType, Schema};
use polars::prelude as pl;
use polars::prelude::{IntoLazy, NamedFrom};

use crate::{from_polars_dtype, parse, to_polars_dtype};

/// A schema from (name, type) pairs.
pub(crate) fn schema(cols: &[(&str, DataType)]) -> Schema {
    cols.iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

pub(crate) fn date_series(name: &str, values: &[Option<&str>]) -> pl::Column {
    let days: Vec<Option<i32>> = values
        .iter()
        .map(|v| {
            v.map(|s| {
                let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date");
                d.signed_duration_since(chrono::NaiveDate::default())
                    .num_days() as i32
            })
        })
        .collect();
    pl::Series::new(name.into(), days)
        .cast(&pl::DataType::Date)
        .expect("date cast")
        .into()
}

pub(crate) fn datetime_series(name: &str, values: &[Option<&str>]) -> pl::Column {
    let micros: Vec<Option<i64>> = values
        .iter()
        .map(|v| {
            v.map(|s| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                    .expect("test timestamp")
                    .and_utc()
                    .timestamp_micros()
            })
        })
        .collect();
    pl::Series::new(name.into(), micros)
        .cast(&pl::DataType::Datetime(pl::TimeUnit::Microseconds, None))
        .expect("datetime cast")
        .into()
}

/// The frame most execution tests run on. Row 3 is all NULL.
pub(crate) fn frame() -> pl::DataFrame {
    pl::DataFrame::new_infer_height(vec![
        pl::Series::new("i".into(), [Some(1i64), Some(-7), None, Some(10)]).into(),
        pl::Series::new("j".into(), [Some(2i64), Some(3), None, Some(0)]).into(),
        pl::Series::new("f".into(), [Some(1.5f64), Some(-2.5), None, Some(0.0)]).into(),
        pl::Series::new(
            "s".into(),
            [Some("Hello"), Some(" pad "), None, Some("a\r\n\r\nb\nc")],
        )
        .into(),
        pl::Series::new("b".into(), [Some(true), Some(false), None, Some(true)]).into(),
        date_series(
            "d",
            &[
                Some("2024-02-28"),
                Some("2023-12-31"),
                None,
                Some("2020-03-01"),
            ],
        ),
        datetime_series(
            "ts",
            &[
                Some("2024-02-28 23:30:00"),
                Some("2023-12-31 00:00:00"),
                None,
                Some("2020-03-01 12:00:01"),
            ],
        ),
    ])
    .expect("test frame")
}

pub(crate) fn frame_schema(df: &pl::DataFrame) -> Schema {
    df.schema()
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                from_polars_dtype(t).expect("supported test dtype"),
            )
        })
        .collect()
}

/// Parses, checks and runs `src` on `df`; asserts the result's polars type matches `check`.
pub(crate) fn try_eval(df: &pl::DataFrame, src: &str) -> Result<pl::Series, String> {
    let schema = frame_schema(df);
    let e = parse(src).map_err(|e| format!("parse: {e}"))?;
    let t = e.check(&schema).map_err(|es| format!("check: {es:?}"))?;
    let pe = e
        .to_polars(&schema)
        .map_err(|e| format!("to_polars: {e}"))?;
    let out = df
        .clone()
        .lazy()
        // with_column broadcasts literal-only expressions to the frame's height.
        .with_column(pe.alias("out"))
        .select([pl::col("out")])
        .collect()
        .map_err(|e| format!("polars: {e}"))?;
    let s = out
        .column("out")
        .map_err(|e| e.to_string())?
        .as_materialized_series()
        .clone();
    if t != DataType::Null {
        assert_eq!(
            s.dtype(),
            &to_polars_dtype(&t),
            "dtype of `{src}` (checked as {t})"
        );
    }
    Ok(s)
}

pub(crate) fn eval(df: &pl::DataFrame, src: &str) -> pl::Series {
    try_eval(df, src).unwrap_or_else(|e| panic!("`{src}` failed: {e}"))
}

pub(crate) fn ints(df: &pl::DataFrame, src: &str) -> Vec<Option<i64>> {
    eval(df, src).i64().expect("int64 result").iter().collect()
}

pub(crate) fn floats(df: &pl::DataFrame, src: &str) -> Vec<Option<f64>> {
    eval(df, src)
        .f64()
        .expect("float64 result")
        .iter()
        .collect()
}

pub(crate) fn bools(df: &pl::DataFrame, src: &str) -> Vec<Option<bool>> {
    eval(df, src).bool().expect("bool result").iter().collect()
}

pub(crate) fn strs(df: &pl::DataFrame, src: &str) -> Vec<Option<String>> {
    eval(df, src)
        .str()
        .expect("string result")
        .iter()
        .map(|o| o.map(str::to_string))
        .collect()
}

/// Dates and datetimes rendered as text, for readable expectations.
pub(crate) fn texts(df: &pl::DataFrame, src: &str) -> Vec<Option<String>> {
    let s = eval(df, src);
    let s = s.cast(&pl::DataType::String).expect("cast to string");
    s.str()
        .expect("string")
        .iter()
        .map(|o| o.map(str::to_string))
        .collect()
}

/// Helper for literal expectations: `v(&[Some("a"), None])`.
pub(crate) fn v(items: &[Option<&str>]) -> Vec<Option<String>> {
    items.iter().map(|o| o.map(str::to_string)).collect()
}

/// A one-row frame, for expressions over literals only.
pub(crate) fn one_row() -> pl::DataFrame {
    pl::DataFrame::new_infer_height(vec![pl::Series::new("x".into(), [1i64]).into()])
        .expect("frame")
}

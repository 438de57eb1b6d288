//! Shared helpers for the end-to-end tests: run the real binary, compare CSV tables.
#![allow(dead_code)]

use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (two levels above this crate).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A private copy of the bundled data set (`data/`), so a test can edit it.
pub fn bundled_data_copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for f in [
        "accounts.csv",
        "invoices.csv",
        "invoice_line_items.csv",
        "skus.csv",
    ] {
        std::fs::copy(repo().join("data").join(f), d.path().join(f)).unwrap();
    }
    d
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    c.current_dir(repo());
    c.env_remove("RUST_LOG");
    c
}

/// Runs `orchestrator ARGS` from the repository root.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .output()
        .expect("failed to start orchestrator")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The status word (`ran`, `cached`, ...) the run summary's table gives a step.
pub fn status_of(summary: &str, step: &str) -> String {
    summary
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_default()
        .to_string()
}

/// Reads a CSV file as text cells (no type inference: we compare what is written).
pub fn read_csv_text(path: &Path) -> DataFrame {
    let file_schema = {
        let mut lf = LazyCsvReader::new(PlRefPath::new(path.to_str().unwrap()))
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .finish()
            .unwrap();
        lf.collect_schema().unwrap()
    };
    let _ = file_schema;
    LazyCsvReader::new(PlRefPath::new(path.to_str().unwrap()))
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_missing_is_null(false)
        .finish()
        .unwrap()
        .collect()
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Compares two CSV files cell by cell: same header, same rows in the same order; cells
/// that both parse as numbers are compared with a relative tolerance of 1e-9 (float sums
/// differ in the last bits with summation order), everything else exactly.
pub fn assert_csv_eq(actual: &Path, expected: &Path) {
    let a = read_csv_text(actual);
    let e = read_csv_text(expected);
    let an: Vec<_> = a.get_column_names().iter().map(|s| s.to_string()).collect();
    let en: Vec<_> = e.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        an,
        en,
        "columns differ: {} vs {}",
        actual.display(),
        expected.display()
    );
    assert_eq!(
        a.height(),
        e.height(),
        "row counts differ: {} vs {}",
        actual.display(),
        expected.display()
    );
    for name in &en {
        let ac = a.column(name).unwrap().str().unwrap().clone();
        let ec = e.column(name).unwrap().str().unwrap().clone();
        for (row, (x, y)) in ac.iter().zip(ec.iter()).enumerate() {
            let x = x.unwrap_or("");
            let y = y.unwrap_or("");
            if x == y {
                continue;
            }
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(fx), Ok(fy)) => {
                    let tol = 1e-9 * fx.abs().max(fy.abs()).max(1.0);
                    assert!(
                        (fx - fy).abs() <= tol,
                        "{}: row {row} column `{name}`: {x} != {y} (expected, from {})",
                        actual.display(),
                        expected.display()
                    );
                }
                _ => panic!(
                    "{}: row {row} column `{name}`: `{x}` != `{y}` (expected, from {})",
                    actual.display(),
                    expected.display()
                ),
            }
        }
    }
}

/// Appends lines (each ended by a line break) to a file, as a daily export would.
pub fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

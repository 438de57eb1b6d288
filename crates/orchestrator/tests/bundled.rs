//! The two bundled pipelines on the bundled data and on the hand-made edge data set, against
//! expected outputs computed independently of this code base: by DuckDB SQL written from the
//! contract (tests/reference/duckdb_reference.py, cross-checked by a pure-Python script) and,
//! for the edge set, by hand (tests/expected/edge/*/HAND_COMPUTED.md).

mod common;

use common::*;
use polars::prelude::*;
use std::path::Path;

/// `orchestrator run FILES... --param input_dir=DATA --param output_dir=OUT --param ...`,
/// from the repository root.
fn run_files(files: &[&str], data: &str, out: &Path, params: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(files.iter().map(|f| f.to_string()));
    let dirs = [
        format!("input_dir={data}"),
        format!("output_dir={}", out.display()),
    ];
    for p in dirs
        .iter()
        .map(String::as_str)
        .chain(params.iter().copied())
    {
        args.push("--param".into());
        args.push(p.to_string());
    }
    bin().args(&args).output().unwrap()
}

fn run_bundled(pipeline: &str, data: &str, params: &[&str], out: &Path) {
    let o = run_files(&[&format!("pipelines/{pipeline}.yaml")], data, out, params);
    assert_eq!(code(&o), 0, "{pipeline} failed: {}", stderr(&o));
}

fn check(data: &str, expected_dir: &str, params: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    for p in ["late_payment", "product_mix"] {
        run_bundled(p, data, params, out.path());
        let expected = repo().join(expected_dir).join(format!("{p}.csv"));
        assert_csv_eq(&out.path().join(format!("{p}.csv")), &expected);
        check_parquet_matches_csv(&out.path().join(format!("{p}.parquet")), &expected, p);
    }
}

/// The Parquet output has the contract's types and the same rows as the expected CSV.
fn check_parquet_matches_csv(parquet: &Path, expected_csv: &Path, pipeline: &str) {
    let df = LazyFrame::scan_parquet(
        PlRefPath::new(parquet.to_str().unwrap()),
        Default::default(),
    )
    .unwrap()
    .collect()
    .unwrap();
    let expected = read_csv_text(expected_csv);
    assert_eq!(df.height(), expected.height());
    let types: Vec<(String, polars::prelude::DataType)> = df
        .schema()
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    use polars::prelude::DataType as T;
    let want: Vec<(&str, T)> = if pipeline == "late_payment" {
        vec![
            ("account_id", T::Int64),
            ("company_name", T::String),
            ("company_address", T::String),
            ("contact_person", T::String),
            ("contact_phone", T::String),
            ("gender", T::String),
            ("joining_date", T::Date),
            ("total_invoices", T::Int64),
            ("total_late_invoices", T::Int64),
            ("total_days_since_issue", T::Int64),
            ("late_invoice_amount", T::Float64),
        ]
    } else {
        vec![
            ("account_id", T::Int64),
            ("company_name", T::String),
            ("sku_count", T::Int64),
            ("sku_types_purchased", T::List(Box::new(T::String))),
        ]
    };
    let want: Vec<(String, T)> = want.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    assert_eq!(types, want, "{} schema", parquet.display());
    // Same account ids in the same order as the expected file.
    let ids: Vec<String> = df
        .column("account_id")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    let eids: Vec<String> = expected
        .column("account_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    assert_eq!(ids, eids);
    if pipeline == "product_mix" {
        // The list column holds the same names as the CSV's joined text.
        let lists = df
            .column("sku_types_purchased")
            .unwrap()
            .list()
            .unwrap()
            .clone();
        let texts = expected
            .column("sku_types_purchased")
            .unwrap()
            .str()
            .unwrap()
            .clone();
        for (i, t) in texts.iter().enumerate() {
            let l = lists.get_as_series(i).unwrap();
            let names: Vec<String> = l
                .str()
                .unwrap()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect();
            assert_eq!(names.join(","), t.unwrap());
        }
    }
}

#[test]
fn bundled_data_as_of_2021_03_01() {
    // Some invoices are issued after as_of (527) and the newest ones are not yet late.
    check(
        "data",
        "tests/expected/bundled/as_of=2021-03-01",
        &["as_of=2021-03-01"],
    );
}

#[test]
fn bundled_data_as_of_2020_06_15() {
    // Before most invoices were issued (7,723 come later).
    check(
        "data",
        "tests/expected/bundled/as_of=2020-06-15",
        &["as_of=2020-06-15"],
    );
}

#[test]
fn bundled_data_with_a_45_day_term() {
    check(
        "data",
        "tests/expected/bundled/as_of=2021-03-01,term=45",
        &["as_of=2021-03-01", "payment_term_days=45"],
    );
}

/// Both pipelines in one `run` (one process, one after the other), as the README runs them.
#[test]
fn edge_data_set() {
    // Unknown SKUs and accounts, invoices without line items, the 30/31-day boundary,
    // CRLF and blank lines in addresses, shared item names: see HAND_COMPUTED.md.
    let out = tempfile::tempdir().unwrap();
    let both = ["pipelines/late_payment.yaml", "pipelines/product_mix.yaml"];
    let o = run_files(&both, "tests/data/edge", out.path(), &["as_of=2024-03-31"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for p in ["late_payment", "product_mix"] {
        assert!(
            stdout(&o).contains(&format!("pipeline `{p}`: ok")),
            "{}",
            stdout(&o)
        );
        assert_csv_eq(
            &out.path().join(format!("{p}.csv")),
            &repo().join(format!("tests/expected/edge/as_of=2024-03-31/{p}.csv")),
        );
    }
}

/// Every file is checked before anything runs; a failed run stops the ones after it.
#[test]
fn several_pipelines_are_all_checked_first_and_stop_at_a_failure() {
    let out = tempfile::tempdir().unwrap();
    let (edge, as_of) = ("tests/data/edge", &["as_of=2024-03-31"]);
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(repo().join("pipelines/product_mix.yaml")).unwrap();
    std::fs::write(&broken, text.replace("input: purchases", "input: purchase")).unwrap();
    let files = [
        "pipelines/late_payment.yaml",
        broken.to_str().unwrap(),
        "pipelines/missing.yaml",
    ];
    let o = run_files(&files, edge, out.path(), as_of);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("purchase") && err.contains("broken.yaml"),
        "{err}"
    );
    assert!(err.contains("pipelines/missing.yaml"), "{err}");
    assert!(!out.path().join("late_payment.csv").exists(), "nothing ran");
    // Two pipelines of one name would share their records in the state folder.
    let copy = dir.path().join("copy.yaml");
    std::fs::copy(repo().join("pipelines/late_payment.yaml"), &copy).unwrap();
    let files = ["pipelines/late_payment.yaml", copy.to_str().unwrap()];
    let o = run_files(&files, edge, out.path(), as_of);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("are both named `late_payment`"),
        "{}",
        stderr(&o)
    );
    assert!(!out.path().join("late_payment.csv").exists(), "nothing ran");
    // A run that fails (no invoices file) stops the pipelines after it.
    let data = tempfile::tempdir().unwrap();
    for f in ["accounts.csv", "invoice_line_items.csv", "skus.csv"] {
        std::fs::copy(repo().join("tests/data/edge").join(f), data.path().join(f)).unwrap();
    }
    let both = ["pipelines/late_payment.yaml", "pipelines/product_mix.yaml"];
    let o = run_files(&both, &data.path().display().to_string(), out.path(), as_of);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("not run (after this failure): pipelines/product_mix.yaml"),
        "{err}"
    );
    assert!(!out.path().join("product_mix.csv").exists());
}

/// A SKU id listed twice would price its line items twice (and give them two names); a SKU
/// without a price would count as 0. Both bundled pipelines stop instead, outputs kept.
#[test]
fn a_duplicate_or_unpriced_sku_stops_both_pipelines() {
    let data = bundled_data_copy();
    let d = data.path().display().to_string();
    let out = tempfile::tempdir().unwrap();
    for p in ["late_payment", "product_mix"] {
        run_bundled(p, &d, &["as_of=2021-03-01"], out.path());
    }
    let skus = data.path().join("skus.csv");
    let original = std::fs::read_to_string(&skus).unwrap();
    let first_id = original.lines().nth(1).unwrap().split(',').next().unwrap();
    let cases = [
        (
            format!("{first_id},Another name,listed twice,1.0,100.0"),
            "check `unique(item_id)` failed: 2 rows",
        ),
        (
            "NEW-SKU,Unpriced,no price,1.0,".to_string(),
            "check `not_null(item_id, item_retail_price)` failed: 1 row",
        ),
    ];
    for (row, message) in cases {
        std::fs::write(&skus, &original).unwrap();
        append_lines(&skus, &[row]);
        for p in ["late_payment", "product_mix"] {
            let before = std::fs::read(out.path().join(format!("{p}.csv"))).unwrap();
            let file = format!("pipelines/{p}.yaml");
            let o = run_files(&[&file], &d, out.path(), &["as_of=2021-03-01"]);
            assert_eq!(code(&o), 1, "{p}: {}", stderr(&o));
            assert!(stderr(&o).contains(message), "{p}: {}", stderr(&o));
            let after = std::fs::read(out.path().join(format!("{p}.csv"))).unwrap();
            assert_eq!(before, after, "{p}: the output must be kept");
        }
    }
}

#[test]
fn a_header_only_extract_stops_the_run_and_keeps_outputs() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    run_bundled(
        "late_payment",
        &data.path().display().to_string(),
        &["as_of=2021-03-01"],
        out.path(),
    );
    let before = std::fs::read(out.path().join("late_payment.csv")).unwrap();
    // The upstream extract came out empty: only its header.
    std::fs::write(
        data.path().join("invoices.csv"),
        "invoice_id,account_id,date_issued\n",
    )
    .unwrap();
    let o = run_files(
        &["pipelines/late_payment.yaml"],
        &data.path().display().to_string(),
        out.path(),
        &["as_of=2021-03-02"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invoices_csv_has_rows"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(out.path().join("late_payment.csv")).unwrap(),
        before
    );
}

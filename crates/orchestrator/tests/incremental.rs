//! Incremental equals full: after each change in a sequence (appends with late-arriving
//! invoices and line items for old invoices, an address change, a price change, as_of moving
//! forward and back, an edited row), the incremental run's outputs equal a `--full-refresh`
//! run's on the same data, byte for byte.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Runs both pipelines incrementally into `inc` and with --full-refresh into `full`, and
/// compares; returns the incremental run's summaries.
fn run_and_compare(data: &Path, inc: &Path, full: &Path, as_of: &str, step: &str) -> String {
    let mut summaries = String::new();
    for p in ["late_payment", "product_mix"] {
        let pipeline = format!("pipelines/{p}.yaml");
        let i = format!("input_dir={}", data.display());
        let a = format!("as_of={as_of}");
        let oi = format!("output_dir={}", inc.display());
        let of = format!("output_dir={}", full.display());
        let r = run(&["run", &pipeline, "-p", &a, "-p", &i, "-p", &oi]);
        assert_eq!(code(&r), 0, "{step}: {}", stderr(&r));
        summaries.push_str(&stdout(&r));
        let f = run(&[
            "run",
            &pipeline,
            "-p",
            &a,
            "-p",
            &i,
            "-p",
            &of,
            "--full-refresh",
        ]);
        assert_eq!(code(&f), 0, "{step}: {}", stderr(&f));
        let x = std::fs::read(inc.join(format!("{p}.csv"))).unwrap();
        let y = std::fs::read(full.join(format!("{p}.csv"))).unwrap();
        assert!(
            x == y,
            "{step}: {p}.csv: incremental differs from full refresh"
        );
        let read = |dir: &Path| {
            let path = dir.join(format!("{p}.parquet"));
            polars::prelude::LazyFrame::scan_parquet(
                polars::prelude::PlRefPath::new(path.to_str().unwrap()),
                Default::default(),
            )
            .unwrap()
            .collect()
            .unwrap()
        };
        assert!(
            read(inc).equals_missing(&read(full)),
            "{step}: {p}.parquet differs"
        );
    }
    summaries
}

#[test]
fn incremental_runs_equal_full_refreshes_through_a_sequence_of_changes() {
    let data = tempfile::tempdir().unwrap();
    for f in [
        "accounts.csv",
        "invoices.csv",
        "invoice_line_items.csv",
        "skus.csv",
    ] {
        std::fs::copy(repo().join("data").join(f), data.path().join(f)).unwrap();
    }
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let s = run_and_compare(d, inc.path(), full.path(), "2021-03-01", "first run");
    assert!(s.contains("full read (first run)"), "{s}");

    // New invoices after the last id: new dates, and two late-arriving ones with old dates;
    // their line items, plus line items for invoices seen before.
    append(
        &d.join("invoices.csv"),
        &[
            "10254,1,2021-03-20".into(),
            "10255,2,2021-03-21".into(),
            "10256,3,2020-05-01".into(),
            "10257,200,2020-12-31".into(),
        ],
    );
    append(
        &d.join("invoice_line_items.csv"),
        &[
            "10254,1-60559-539-X,2".into(),
            "10255,0-254-97850-9,1".into(),
            "10256,1-60559-539-X,4".into(),
            "10257,1-944086-93-5,3".into(),
            "1,0-254-97850-9,2".into(),
            "5000,1-944086-93-5,1".into(),
        ],
    );
    let s = run_and_compare(d, inc.path(), full.path(), "2021-03-25", "append");
    assert!(
        s.contains("appended: 4 new rows"),
        "only the new invoices are read:\n{s}"
    );
    assert!(
        s.contains("appended: 6 new rows"),
        "only the new line items are read:\n{s}"
    );

    // A dimension changes: an address and a price.
    replace_in(
        &d.join("accounts.csv"),
        "58987 Crystal Terrace",
        "1 New Street\r\n\r\nSuite 5",
    );
    run_and_compare(d, inc.path(), full.path(), "2021-03-25", "address change");
    let skus = std::fs::read_to_string(d.join("skus.csv")).unwrap();
    let line = skus
        .lines()
        .find(|l| l.starts_with("1-60559-539-X"))
        .unwrap()
        .to_string();
    let mut fields: Vec<&str> = line.split(',').collect();
    fields[4] = "99.5";
    replace_in(&d.join("skus.csv"), &line, &fields.join(","));
    run_and_compare(d, inc.path(), full.path(), "2021-03-25", "price change");

    // as_of moves back (a backfill) and forward again, with nothing else changed.
    run_and_compare(d, inc.path(), full.path(), "2020-11-30", "as_of back");
    run_and_compare(d, inc.path(), full.path(), "2021-04-30", "as_of forward");

    // More appends, then an edit of a row already read: the source is read in full again.
    append(&d.join("invoices.csv"), &["10258,4,2021-04-01".into()]);
    append(
        &d.join("invoice_line_items.csv"),
        &["10258,1-60559-539-X,1".into()],
    );
    run_and_compare(d, inc.path(), full.path(), "2021-04-30", "second append");
    replace_in(
        &d.join("invoices.csv"),
        "\n2,1,2020-03-19\n",
        "\n2,1,2020-03-20\n",
    );
    let s = run_and_compare(d, inc.path(), full.path(), "2021-04-30", "edited row");
    assert!(
        s.contains("full read (rows already read were changed or removed)"),
        "{s}"
    );

    // A file whose last line has no line break: that row counts (many writers omit it).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("invoices.csv"))
        .unwrap();
    write!(f, "10259,5,2021-04-02").unwrap();
    drop(f);
    let s = run_and_compare(d, inc.path(), full.path(), "2021-04-30", "no final newline");
    assert!(s.contains("appended: 1 new rows"), "{s}");
    // Its break and more rows arrive later: only the new row is read.
    append(
        &d.join("invoices.csv"),
        &["".into(), "10260,6,2021-04-03".into()],
    );
    let s = run_and_compare(d, inc.path(), full.path(), "2021-04-30", "break arrives");
    assert!(s.contains("appended: 1 new rows"), "{s}");
    // A last line that was still being written and then grew (quantity 1 became 12) is
    // read again in full.
    let items = d.join("invoice_line_items.csv");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&items)
        .unwrap();
    write!(f, "10260,1-60559-539-X,1").unwrap();
    drop(f);
    run_and_compare(
        d,
        inc.path(),
        full.path(),
        "2021-04-30",
        "partial last line",
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&items)
        .unwrap();
    writeln!(f, "2").unwrap();
    drop(f);
    let s = run_and_compare(
        d,
        inc.path(),
        full.path(),
        "2021-04-30",
        "extended last line",
    );
    assert!(
        s.contains("full read (the last line read was extended)"),
        "{s}"
    );
}

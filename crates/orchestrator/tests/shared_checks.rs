//! Data checks shared between pipelines of one state folder: a check (same step id, same
//! checks, same input data) that one pipeline ran on every row is not run again by the
//! next; its warnings are repeated, and different data or different checks are checked.

mod common;
use common::*;
use std::path::Path;

fn run_pipeline(pipeline: &Path, data: &Path, out: &Path) -> std::process::Output {
    run(&[
        "run",
        pipeline.to_str().unwrap(),
        "--param",
        "as_of=2021-03-01",
        "--param",
        &format!("input_dir={}", data.display()),
        "--param",
        &format!("output_dir={}", out.display()),
    ])
}

fn bundled(name: &str) -> std::path::PathBuf {
    repo().join("pipelines").join(name)
}

/// Adds a line item whose SKU is unknown: the `relationships` check (severity `warn`) of
/// `checked_line_items` reports it.
fn add_unknown_sku(data: &Path) {
    let f = data.join("invoice_line_items.csv");
    let text = std::fs::read_to_string(&f).unwrap();
    let invoice = text.lines().nth(1).unwrap().split(',').next().unwrap();
    append_lines(&f, &[format!("{invoice},NO-SUCH-SKU,3")]);
}

#[test]
fn a_check_run_by_another_pipeline_on_the_same_data_is_not_run_again() {
    let data = bundled_data_copy();
    add_unknown_sku(data.path());
    let out = tempfile::tempdir().unwrap();

    let first = run_pipeline(&bundled("late_payment.yaml"), data.path(), out.path());
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let warned = |o: &std::process::Output| {
        stdout(o)
            .lines()
            .chain(stderr(o).lines())
            .filter(|l| l.contains("checked_line_items") && l.contains("NO-SUCH-SKU"))
            .count()
    };
    assert!(
        warned(&first) > 0,
        "late_payment must warn about the unknown SKU:\n{}",
        stdout(&first)
    );
    assert_eq!(status_of(&stdout(&first), "checked_line_items"), "ran");

    // product_mix has the same checks on the same data: not run again, warnings repeated.
    let second = run_pipeline(&bundled("product_mix.yaml"), data.path(), out.path());
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let summary = stdout(&second);
    for step in [
        "checked_invoices",
        "checked_line_items",
        "checked_dimensions",
    ] {
        assert_eq!(status_of(&summary, step), "cached", "{step}:\n{summary}");
    }
    assert!(
        summary.contains("checked exactly this data in an earlier run"),
        "{summary}"
    );
    assert!(
        warned(&second) > 0,
        "the warning must be repeated:\n{summary}"
    );

    // The result is the one product_mix computes on its own.
    let alone = tempfile::tempdir().unwrap();
    let o = run_pipeline(&bundled("product_mix.yaml"), data.path(), alone.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(status_of(&stdout(&o), "checked_line_items"), "ran");
    assert_eq!(
        std::fs::read(out.path().join("product_mix.csv")).unwrap(),
        std::fs::read(alone.path().join("product_mix.csv")).unwrap()
    );

    // A rerun of product_mix keeps knowing (its own record says so) and still warns.
    let third = run_pipeline(&bundled("product_mix.yaml"), data.path(), out.path());
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert_eq!(status_of(&stdout(&third), "checked_line_items"), "cached");
    assert!(warned(&third) > 0, "{}", stdout(&third));
}

#[test]
fn different_data_or_different_checks_are_checked_again() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let first = run_pipeline(&bundled("late_payment.yaml"), data.path(), out.path());
    assert_eq!(code(&first), 0, "{}", stderr(&first));

    // The same step id with one more check (an error no line item passes): its fingerprint
    // differs, so the check runs and stops the run.
    let dir = tempfile::tempdir().unwrap();
    let stricter = dir.path().join("product_mix.yaml");
    let yaml = std::fs::read_to_string(bundled("product_mix.yaml")).unwrap();
    let marker = "      - {not_null: [invoice_id, item_id, quantity]}\n";
    assert!(yaml.contains(marker));
    std::fs::write(
        &stricter,
        yaml.replace(
            marker,
            &format!("{marker}      - {{expression: \"quantity > 1000000\", name: absurd}}\n"),
        ),
    )
    .unwrap();
    let o = run_pipeline(&stricter, data.path(), out.path());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stderr(&o).contains("absurd"), "{}", stderr(&o));

    // The same checks on data that changed since: checked again, and the new problem (a
    // NULL quantity, an error) stops the run.
    let f = data.path().join("invoice_line_items.csv");
    let text = std::fs::read_to_string(&f).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cols: Vec<&str> = lines[1].split(',').collect();
    lines[1] = format!("{},{},", cols[0], cols[1]);
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let o = run_pipeline(&bundled("product_mix.yaml"), data.path(), out.path());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stderr(&o).contains("not_null"), "{}", stderr(&o));
}

/// A check skipped because another pipeline checked the data keeps that run's row count:
/// the next incremental run of `row_count` adds the appended rows to it.
#[test]
fn a_skipped_check_keeps_the_row_count_for_the_next_incremental_run() {
    let data = bundled_data_copy();
    let invoices = data.path().join("invoices.csv");
    let n = std::fs::read_to_string(&invoices).unwrap().lines().count() - 1;
    // Both pipelines allow one more invoice than there are.
    let dir = tempfile::tempdir().unwrap();
    let old = "{row_count: {min: 1}, name: invoices_csv_has_rows}";
    let new = format!(
        "{{row_count: {{min: 1, max: {}}}, name: invoices_csv_has_rows}}",
        n + 1
    );
    let mut copies = Vec::new();
    for name in ["late_payment.yaml", "product_mix.yaml"] {
        let yaml = std::fs::read_to_string(bundled(name)).unwrap();
        assert!(yaml.contains(old), "{name}");
        let p = dir.path().join(name);
        std::fs::write(&p, yaml.replace(old, &new)).unwrap();
        copies.push(p);
    }
    let out = tempfile::tempdir().unwrap();
    for p in &copies {
        let o = run_pipeline(p, data.path(), out.path());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // Two more invoices: one more than allowed. product_mix checks only the new rows now,
    // counting the rows late_payment saw before them.
    append_lines(
        &invoices,
        &[
            "99999991,1,2021-02-01".into(),
            "99999992,1,2021-02-02".into(),
        ],
    );
    let o = run_pipeline(&copies[1], data.path(), out.path());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!("has {} rows", n + 2)),
        "{}",
        stderr(&o)
    );
}

/// A check read by several steps is materialised anyway: it checks again as it goes (and
/// says nothing about an earlier run), while its single-reader neighbours are skipped.
#[test]
fn a_check_read_by_several_steps_checks_again() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let first = run_pipeline(&bundled("late_payment.yaml"), data.path(), out.path());
    assert_eq!(code(&first), 0, "{}", stderr(&first));

    let yaml = std::fs::read_to_string(bundled("late_payment.yaml")).unwrap();
    assert!(yaml.contains("name: late_payment\n"));
    let two = yaml.replace("name: late_payment\n", "name: two_readers\n")
        + "\n  - {id: again, type: filter, input: checked_invoices, where: \"invoice_id > 0\"}\n"
        + "  - {id: write_again, type: write, input: again, path: \"${output_dir}/again.csv\"}\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two_readers.yaml");
    std::fs::write(&p, two).unwrap();
    let o = run_pipeline(&p, data.path(), out.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let summary = stdout(&o);
    assert_eq!(status_of(&summary, "checked_invoices"), "ran", "{summary}");
    assert!(
        !summary.contains("step `checked_invoices`: checked exactly"),
        "{summary}"
    );
    assert_eq!(
        status_of(&summary, "checked_line_items"),
        "cached",
        "{summary}"
    );
    assert!(
        summary.contains("step `checked_line_items`: checked exactly"),
        "{summary}"
    );
}

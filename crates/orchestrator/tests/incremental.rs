//! Incremental equals full: after each change in a sequence (appends with late-arriving
//! invoices and line items for old invoices, an address change, a price change, as_of moving
//! forward and back, an edited row), the incremental run's outputs equal a `--full-refresh`
//! run's on the same data, byte for byte (on this small data; at scale, a floating sum
//! merged from stored state may differ from a full recompute in its last bits, because
//! the additions happen in another order).

mod common;

use common::*;
use std::io::Write;
use std::path::Path;

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
    let data = bundled_data_copy();
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let d = data.path();
    let s = run_and_compare(d, inc.path(), full.path(), "2021-03-01", "first run");
    assert!(s.contains("full read (first run)"), "{s}");

    // New invoices after the last id: new dates, and two late-arriving ones with old dates;
    // their line items, plus line items for invoices seen before.
    append_lines(
        &d.join("invoices.csv"),
        &[
            "10254,1,2021-03-20".into(),
            "10255,2,2021-03-21".into(),
            "10256,3,2020-05-01".into(),
            "10257,200,2020-12-31".into(),
        ],
    );
    append_lines(
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
    append_lines(&d.join("invoices.csv"), &["10258,4,2021-04-01".into()]);
    append_lines(
        &d.join("invoice_line_items.csv"),
        &["10258,1-60559-539-X,1".into()],
    );
    let s = run_and_compare(d, inc.path(), full.path(), "2021-04-30", "second append");
    // Only the new rows went through the joins, and the aggregations merged them into their
    // stored state: late_payment's per-invoice amounts, product_mix's per-account lists.
    assert!(
        s.matches("merged the appended rows into its stored state")
            .count()
            == 2,
        "{s}"
    );
    assert!(
        s.contains("step `purchases`: incremental: computed for the appended rows only"),
        "{s}"
    );
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
    append_lines(
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

/// Every mergeable aggregation (count, sum, min, max, mean, count_distinct,
/// sorted_distinct_list), fed through a union, a left join and an inner join whose both
/// sides gain rows, equals a full recompute after each append.
#[test]
fn merged_aggregations_equal_a_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("a.csv"),
        "id,grp,v,tag\n1,x,1.5,p\n2,x,2.5,q\n3,y,,p\n1,,0.5,n\n",
    )
    .unwrap();
    std::fs::write(d.join("b.csv"), "id,grp,v,tag\n10,y,4,r\n").unwrap();
    std::fs::write(d.join("c.csv"), "id,w\n1,10\n2,20\n").unwrap();
    std::fs::write(d.join("g.csv"), "grp,label\nx,ex\ny,why\n").unwrap();
    let pipeline = r#"
name: merge
params:
  input_dir: {type: path, default: data}
  output_dir: {type: path, default: output}
steps:
  - {id: a, type: load, path: "${input_dir}/a.csv", incremental: append,
     schema: {id: int64, grp: string, v: float64, tag: string}}
  - {id: b, type: load, path: "${input_dir}/b.csv", incremental: append,
     schema: {id: int64, grp: string, v: float64, tag: string}}
  - {id: c, type: load, path: "${input_dir}/c.csv", incremental: append,
     schema: {id: int64, w: int64}}
  - {id: g, type: load, path: "${input_dir}/g.csv", schema: {grp: string, label: string}}
  - id: a_checked
    type: check
    input: a
    checks:
      - {unique: id, severity: warn}
      - {row_count: {min: 3, max: 8}, severity: warn}
  - {id: ab, type: union, inputs: [a_checked, b]}
  - {id: labelled, type: join, inputs: [ab, g], how: left, on: grp}
  - {id: weighted, type: join, inputs: [labelled, c], how: inner, on: id}
  - {id: big, type: filter, input: weighted, where: "w >= 10"}
  - id: per_group
    type: aggregate
    input: big
    group_by: [grp, label]
    aggregations:
      n: {count: "*"}
      n_v: {count: v}
      total: {sum: v * w}
      lo: {min: v}
      hi: {max: tag}
      avg: {mean: v}
      tags: {count_distinct: tag}
      tag_list: {sorted_distinct_list: tag}
      ids: {count_distinct: id}
  - id: overall
    type: aggregate
    input: big
    aggregations:
      rows: {count: "*"}
      avg_w: {mean: w}
      all_tags: {sorted_distinct_list: tag}
  - {id: sorted, type: sort, input: per_group, by: [grp]}
  - {id: out, type: write, input: sorted, path: "${output_dir}/per_group.csv"}
  - {id: out2, type: write, input: overall, path: "${output_dir}/overall.csv"}
"#;
    std::fs::write(d.join("merge.yaml"), pipeline).unwrap();
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let go = |step: &str| -> String {
        let outs = ["per_group.csv", "overall.csv"];
        let dirs = (inc.path(), full.path());
        let (r, f) = inc_and_full(&d.join("merge.yaml"), d, dirs, &outs, step);
        // Data checks of new rows report what a check of every row reports.
        let warned = |o: &std::process::Output| -> Vec<String> {
            let mut w: Vec<String> = stdout(o)
                .lines()
                .chain(
                    stderr(o)
                        .lines()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(|l| l.as_str()),
                )
                .filter(|l| l.contains("check `"))
                // The counts, not the sample rows (new rows' checks show only the key).
                .map(|l| {
                    let from = &l[l.find("check `").unwrap()..];
                    from.split("; first").next().unwrap().to_string()
                })
                .collect();
            w.sort();
            w.dedup();
            w
        };
        assert_eq!(warned(&r), warned(&f), "{step}: warnings");
        stdout(&r)
    };
    go("first run");
    // New rows on every incremental source: new groups, new tags, a null, rows for ids
    // whose weight arrives only now (both sides of the inner join gain rows), a row of the
    // group whose key is null (merged with its stored row, not kept beside it).
    append_lines(
        &d.join("a.csv"),
        &[
            "4,z,7,s".into(),
            "5,x,,t".into(),
            "2,x,1,p".into(),
            "2,,1,m".into(),
        ],
    );
    append_lines(&d.join("b.csv"), &["11,y,3,q".into()]);
    append_lines(
        &d.join("c.csv"),
        &["3,30".into(), "4,5".into(), "5,50".into(), "11,10".into()],
    );
    let s = go("append");
    assert!(
        s.contains("is not unique"),
        "the duplicate id 2 is reported:\n{s}"
    );
    assert!(s.contains("step `per_group`: incremental: merged"), "{s}");
    assert!(s.contains("step `overall`: incremental: merged"), "{s}");
    assert!(
        s.contains("step `weighted`: incremental: computed for the appended rows only"),
        "{s}"
    );
    // Rows that only feed the left side, then only the right side.
    append_lines(&d.join("a.csv"), &["6,y,2,u".into()]);
    go("left only");
    append_lines(&d.join("c.csv"), &["6,60".into(), "10,1".into()]);
    let s = go("right only");
    assert!(s.contains("merged"), "{s}");
    // A dimension change (a label): the left join cannot merge, everything after it is
    // recomputed, and says why.
    std::fs::write(d.join("g.csv"), "grp,label\nx,ex\ny,wye\nz,zed\n").unwrap();
    append_lines(&d.join("a.csv"), &["7,z,1,v".into(), "8,z,1,v".into()]);
    let s = go("dimension change");
    assert!(s.contains("recomputed in full"), "{s}");
    append_lines(&d.join("b.csv"), &["12,z,9,w".into()]);
    go("after the change");
}

/// Two pipelines share source parts but not state: when one of them re-read an edited file
/// and more rows arrived before the other runs, the other must not take "the rows after the
/// shared parts" for what its own state lacks (it rebuilds, and equals a full refresh).
#[test]
fn shared_parts_never_stand_in_for_a_pipelines_own_progress() {
    let data = bundled_data_copy();
    let d = data.path();
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let i = format!("input_dir={}", d.display());
    let oi = format!("output_dir={}", inc.path().display());
    let of = format!("output_dir={}", full.path().display());
    let one = |p: &str, out: &str, extra: &[&str]| {
        let y = format!("pipelines/{p}.yaml");
        let mut args = vec!["run", &y, "-p", "as_of=2021-04-30", "-p", &i, "-p", out];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(code(&r), 0, "{p}: {}", stderr(&r));
        stdout(&r)
    };
    one("late_payment", &oi, &[]);
    one("product_mix", &oi, &[]);
    // An old invoice is re-dated after as_of (the prefix changes); only product_mix runs.
    replace_in(
        &d.join("invoices.csv"),
        "\n2,1,2020-03-19\n",
        "\n2,1,2022-03-19\n",
    );
    one("product_mix", &oi, &[]);
    // New rows arrive; now late_payment runs for the first time since the edit.
    append_lines(&d.join("invoices.csv"), &["10254,3,2021-03-20".into()]);
    append_lines(
        &d.join("invoice_line_items.csv"),
        &["10254,1-60559-539-X,2".into()],
    );
    let s = one("late_payment", &oi, &[]);
    // Its invoices are rebuilt (the line items, untouched before, still merge).
    assert!(!s.contains("step `checked_invoices`: incremental"), "{s}");
    one("late_payment", &of, &["--full-refresh"]);
    assert_eq!(
        std::fs::read_to_string(inc.path().join("late_payment.csv")).unwrap(),
        std::fs::read_to_string(full.path().join("late_payment.csv")).unwrap(),
        "late_payment after the edit"
    );
}

/// The first extract held only a header (no parts were stored): the rows appended later are
/// new rows against an empty past, checked and merged like any others.
#[test]
fn rows_appended_to_a_header_only_extract_merge_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.csv"), "id,v\n").unwrap();
    let pipeline = r#"
name: from_nothing
params:
  input_dir: {type: path, default: data}
  output_dir: {type: path, default: output}
steps:
  - {id: a, type: load, path: "${input_dir}/a.csv", incremental: append, schema: {id: int64, v: int64}}
  - id: checked
    type: check
    input: a
    checks:
      - {unique: id, severity: warn}
  - {id: totals, type: aggregate, input: checked, aggregations: {n: {count: "*"}, s: {sum: v}}}
  - {id: out, type: write, input: totals, path: "${output_dir}/totals.csv"}
"#;
    std::fs::write(d.join("p.yaml"), pipeline).unwrap();
    let y = d.join("p.yaml").display().to_string();
    let i = format!("input_dir={}", d.display());
    let o = format!("output_dir={}", d.join("out").display());
    let go = || {
        let r = run(&["run", &y, "-p", &i, "-p", &o]);
        assert_eq!(code(&r), 0, "{}", stderr(&r));
        (
            stdout(&r),
            std::fs::read_to_string(d.join("out/totals.csv")).unwrap(),
        )
    };
    assert_eq!(go().1, "n,s\n0,0\n");
    append_lines(
        &d.join("a.csv"),
        &["1,5".into(), "2,7".into(), "2,1".into()],
    );
    let (summary, totals) = go();
    assert_eq!(totals, "n,s\n3,13\n", "{summary}");
    assert!(summary.contains("merged the appended rows"), "{summary}");
    assert!(
        summary.contains("2 rows whose `id` is not unique"),
        "{summary}"
    );
}

/// Runs pipeline `y` on `data` incrementally into `inc` and with `--full-refresh` into
/// `full`, checks that both succeed and wrote the same `outputs`, byte for byte; returns
/// both runs.
fn inc_and_full(
    y: &Path,
    data: &Path,
    (inc, full): (&Path, &Path),
    outputs: &[&str],
    step: &str,
) -> (std::process::Output, std::process::Output) {
    let (y, i) = (
        y.display().to_string(),
        format!("input_dir={}", data.display()),
    );
    let oi = format!("output_dir={}", inc.display());
    let of = format!("output_dir={}", full.display());
    let r = run(&["run", &y, "-p", &i, "-p", &oi]);
    assert_eq!(code(&r), 0, "{step}: {}", stderr(&r));
    let f = run(&["run", &y, "-p", &i, "-p", &of, "--full-refresh"]);
    assert_eq!(code(&f), 0, "{step}: {}", stderr(&f));
    for out in outputs {
        let x = std::fs::read_to_string(inc.join(out)).unwrap();
        let y = std::fs::read_to_string(full.join(out)).unwrap();
        assert_eq!(x, y, "{step}: {out}");
    }
    (r, f)
}

/// Writes `p.yaml` in `dir`: a pipeline called `name` with the usual `input_dir` and
/// `output_dir` params and `steps` (a YAML list). Returns its path.
fn write_pipeline(dir: &Path, name: &str, steps: &str) -> std::path::PathBuf {
    let text = format!(
        "name: {name}\nparams:\n  input_dir: {{type: path, default: data}}\n  output_dir: {{type: path, default: output}}\nsteps:{steps}"
    );
    let path = dir.join("p.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A float sum merged from a stored state would lose polars' per-group compensation (Kahan):
/// 4.5 + 6.5 + 7.9, then 0.9 + 0.3 arriving later, sums to 20.099999999999998 that way but
/// to 20.1 (the exact decimal sum) in one pass. Groups the stored state has are recomputed
/// from all their rows, so the incremental result is the full recompute's, byte for byte.
/// The same holds for `first` (the first row of a stored group is an old row).
#[test]
fn float_sums_of_stored_groups_equal_a_full_recompute_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.csv"), "g,v\na,4.5\na,6.5\na,7.9\nb,1.0\n,2.0\n").unwrap();
    let y = write_pipeline(
        d,
        "fsum",
        r#"
  - {id: a, type: load, path: "${input_dir}/a.csv", incremental: append, schema: {g: string, v: float64}}
  - id: per_group
    type: aggregate
    input: a
    group_by: g
    aggregations:
      total: {sum: v}
      avg: {mean: v}
      n: {count: "*"}
      most: {max: v}
      first_v: {first: v}
  - id: overall
    type: aggregate
    input: a
    aggregations:
      total: {sum: v}
  - {id: sorted, type: sort, input: per_group, by: [g]}
  - {id: out, type: write, input: sorted, path: "${output_dir}/per_group.csv"}
  - {id: out2, type: write, input: overall, path: "${output_dir}/overall.csv"}
"#,
    );
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let go = |step: &str| -> (String, String) {
        let outs = ["per_group.csv", "overall.csv"];
        let dirs = (inc.path(), full.path());
        let (r, _) = inc_and_full(&y, d, dirs, &outs, step);
        let text = std::fs::read_to_string(inc.path().join("per_group.csv")).unwrap();
        (stdout(&r), text)
    };
    go("first run");
    // Rows for a stored group (a), the NULL group, and a new group (c).
    append_lines(
        &d.join("a.csv"),
        &[
            "a,0.9".into(),
            "a,0.3".into(),
            ",0.1".into(),
            "c,2.5".into(),
        ],
    );
    let (summary, text) = go("append");
    assert!(
        summary.contains("step `per_group`: incremental: merged"),
        "{summary}"
    );
    // 20.1 / 5 in floating point is 4.0200000000000005.
    assert!(
        text.contains("\na,20.1,4.0200000000000005,5,7.9,4.5\n"),
        "{text}"
    );
    assert!(text.contains("\nc,2.5,2.5,1,2.5,2.5\n"), "{text}");
    // Rows for new groups only: merged without reading old rows, still exact.
    append_lines(&d.join("a.csv"), &["d,0.7".into(), "d,0.1".into()]);
    go("new groups only");
}

/// Order-sensitive aggregations (float sums, `first`, global sums) after joins, where the
/// incremental path sees the rows in other batches than a full recompute: a join's output
/// follows its left input whichever side is larger, both sides of a join gain rows in one
/// run, and a global sum does not depend on how its input is chunked. Each case was a
/// last-bit or `first` difference from a full refresh (found by differential fuzzing);
/// the expected values are the exact decimal sums and the first line item in file order.
#[test]
fn order_sensitive_aggregations_after_joins_equal_a_full_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("inv.csv"), "invoice_id,account_id\n3,2\n1,1\n").unwrap();
    std::fs::write(
        d.join("li.csv"),
        "invoice_id,item,price\n3,C,13.0\n3,B,4.5\n3,A,0.3\n1,A,4.5\n1,B,13.0\n1,C,23.7\n",
    )
    .unwrap();
    // A dimension larger than the appended rows, in another order than the line items.
    std::fs::write(
        d.join("items.csv"),
        "item,label\nD,d\nC,c\nB,b\nA,a\nE,e\nF,f\n",
    )
    .unwrap();
    let y = write_pipeline(
        d,
        "order",
        r#"
  - {id: inv, type: load, path: "${input_dir}/inv.csv", incremental: append, schema: {invoice_id: int64, account_id: int64}}
  - {id: li, type: load, path: "${input_dir}/li.csv", incremental: append, schema: {invoice_id: int64, item: string, price: float64}}
  - {id: items, type: load, path: "${input_dir}/items.csv", schema: {item: string, label: string}}
  - {id: labelled, type: join, inputs: [li, items], how: inner, on: item}
  - id: per_invoice
    type: aggregate
    input: labelled
    group_by: invoice_id
    aggregations:
      first_label: {first: label}
      total: {sum: price}
  - {id: with_account, type: join, inputs: [inv, li], how: inner, on: invoice_id}
  - {id: per_account, type: aggregate, input: with_account, group_by: account_id, aggregations: {total: {sum: price}}}
  - {id: overall, type: aggregate, input: li, aggregations: {total: {sum: price}}}
  - {id: g, type: load, path: "${input_dir}/g.csv", incremental: append, schema: {v: float64}}
  - {id: g_total, type: aggregate, input: g, aggregations: {total: {sum: v}, avg: {mean: v}}}
  - {id: o4, type: write, input: g_total, path: "${output_dir}/g_total.csv"}
  - {id: s1, type: sort, input: per_invoice, by: [invoice_id]}
  - {id: s2, type: sort, input: per_account, by: [account_id]}
  - {id: o1, type: write, input: s1, path: "${output_dir}/per_invoice.csv"}
  - {id: o2, type: write, input: s2, path: "${output_dir}/per_account.csv"}
  - {id: o3, type: write, input: overall, path: "${output_dir}/overall.csv"}
"#,
    );
    // Summed chunk by chunk, stored part then new rows: 42.400000000000006.
    std::fs::write(d.join("g.csv"), "v\n4.5\n13.0\n23.7\n").unwrap();
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let outs = [
        "per_invoice.csv",
        "per_account.csv",
        "overall.csv",
        "g_total.csv",
    ];
    let read = |f: &str| std::fs::read_to_string(inc.path().join(f)).unwrap();
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "first run");
    assert!(
        read("per_invoice.csv").contains("\n3,c,"),
        "{}",
        read("per_invoice.csv")
    );
    // Late line items for invoice 3 (fewer rows than the dimension has), and a new
    // invoice of account 2 arriving with its line item (both join sides grow).
    append_lines(
        &d.join("li.csv"),
        &["3,D,0.9".into(), "3,A,0.3".into(), "0,E,0.1".into()],
    );
    append_lines(&d.join("inv.csv"), &["0,2".into()]);
    append_lines(&d.join("g.csv"), &["0.9".into(), "0.3".into()]);
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "append");
    // 13.0 + 4.5 + 0.3 + 0.9 + 0.3 = 19.0; account 2 adds invoice 0's 0.1.
    assert!(
        read("per_invoice.csv").contains("\n3,c,19.0\n"),
        "{}",
        read("per_invoice.csv")
    );
    assert!(
        read("per_account.csv").contains("\n2,19.1\n"),
        "{}",
        read("per_account.csv")
    );
    // All nine prices: 59.0 at first, then 0.9 + 0.3 + 0.1.
    assert_eq!(read("overall.csv"), "total\n60.3\n");
    assert_eq!(read("g_total.csv"), "total,avg\n42.4,8.48\n");
}

/// Keys polars knows to be sorted (a stored part read back, a column of one value) made it
/// sum groups by slices, another way than the gathered groups of a full recompute: a NULL
/// group and a one-account join gave other last bits incrementally (found by fuzzing). The
/// expected values are Python's `math.fsum` of the same floats (divided by 3 for the mean).
#[test]
fn sums_do_not_depend_on_what_polars_knows_about_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("x.csv"), "g,v\n,23.7\n,1e-3\n").unwrap();
    std::fs::write(d.join("inv.csv"), "invoice_id,account_id\n3,2\n").unwrap();
    std::fs::write(
        d.join("li.csv"),
        "invoice_id,tag,price\n3,q,13.0\n3,r,4.5\n3,s,0.3\n0,t,0.1\n",
    )
    .unwrap();
    let y = write_pipeline(
        d,
        "sorted_keys",
        r#"
  - {id: x, type: load, path: "${input_dir}/x.csv", incremental: append, schema: {g: int64, v: float64}}
  - {id: by_g, type: aggregate, input: x, group_by: g, aggregations: {s: {sum: v}, m: {mean: v}}}
  - {id: inv, type: load, path: "${input_dir}/inv.csv", incremental: append, schema: {invoice_id: int64, account_id: int64}}
  - {id: li, type: load, path: "${input_dir}/li.csv", incremental: append, schema: {invoice_id: int64, tag: string, price: float64}}
  - {id: j, type: join, inputs: [inv, li], how: inner, on: invoice_id}
  - {id: by_account, type: aggregate, input: j, group_by: account_id, aggregations: {f: {first: tag}, s: {sum: price}}}
  - {id: o1, type: write, input: by_g, path: "${output_dir}/by_g.csv"}
  - {id: o2, type: write, input: by_account, path: "${output_dir}/by_account.csv"}
"#,
    );
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let outs = ["by_g.csv", "by_account.csv"];
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "first run");
    append_lines(&d.join("x.csv"), &[",0.3".into()]);
    // Invoice 0 of account 2 arrives; its line item was there already.
    append_lines(&d.join("inv.csv"), &["0,2".into()]);
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "append");
    let read = |f: &str| std::fs::read_to_string(inc.path().join(f)).unwrap();
    assert_eq!(
        read("by_g.csv"),
        "g,s,m\n,24.000999999999998,8.000333333333332\n"
    );
    assert_eq!(read("by_account.csv"), "account_id,f,s\n2,q,17.9\n");
}

/// An aggregate's rows come out sorted by its keys, so an aggregate over its output (`first`,
/// a float sum) gives the same result on every run (it varied between full refreshes when
/// polars handed groups out in no set order; found by fuzzing) and incrementally. Expected:
/// per invoice in invoice order 1e16, 0.3, 0.9 and 0.1 + 13.0 - 1e16 (= -9999999999999986.0
/// with Kahan summation), first 1e16, Kahan total 16.0 (a Python model of polars' sum).
#[test]
fn an_aggregate_over_an_aggregate_is_the_same_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("li.csv"),
        "account_id,invoice_id,price\n1,100,0.1\n1,100,13.0\n1,9,0.9\n",
    )
    .unwrap();
    let y = write_pipeline(
        d,
        "two_levels",
        r#"
  - {id: li, type: load, path: "${input_dir}/li.csv", incremental: append, schema: {account_id: int64, invoice_id: int64, price: float64}}
  - {id: per_inv, type: aggregate, input: li, group_by: [account_id, invoice_id], aggregations: {amt: {sum: price}}}
  - {id: per_acct, type: aggregate, input: per_inv, group_by: account_id, aggregations: {first_amt: {first: amt}, total: {sum: amt}}}
  - {id: w, type: write, input: per_acct, path: "${output_dir}/out.csv"}
  - {id: w2, type: write, input: per_inv, path: "${output_dir}/per_inv.csv"}
"#,
    );
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    inc_and_full(&y, d, (inc.path(), full.path()), &["out.csv"], "first run");
    append_lines(
        &d.join("li.csv"),
        &["1,100,-1e16".into(), "1,7,1e16".into(), "1,8,0.3".into()],
    );
    inc_and_full(&y, d, (inc.path(), full.path()), &["out.csv"], "append");
    let want = "account_id,first_amt,total\n1,1e+16,16.0\n";
    let read = |p: &Path| std::fs::read_to_string(p.join("out.csv")).unwrap();
    assert_eq!(read(inc.path()), want);
    // Written as it is, an aggregate's file is in key order too (incremental and full alike).
    for p in [inc.path(), full.path()] {
        assert_eq!(
            std::fs::read_to_string(p.join("per_inv.csv")).unwrap(),
            "account_id,invoice_id,amt\n1,7,1e+16\n1,8,0.3\n1,9,0.9\n1,100,-9999999999999986.0\n"
        );
    }
    // Full refreshes, again and again: the same file each time.
    for i in 0..4 {
        let (again, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        inc_and_full(&y, d, (again.path(), other.path()), &["out.csv"], "again");
        assert_eq!(read(other.path()), want, "full refresh {i}");
    }
}

/// When both sides of a join gain rows, the old left rows that can match a new right row
/// are found by the new rows' keys (an `is_in` filter on stored parts, then the exact key
/// combinations): an old row matching a new right row on every key joins it, one matching
/// on the first key only does not, and NULL keys match nothing. The expected rows are
/// worked out by hand.
#[test]
fn old_rows_meet_new_rows_of_the_other_join_side() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("l.csv"), "a,b,v\n1,x,10\n2,y,20\n,z,30\n3,q,40\n").unwrap();
    std::fs::write(d.join("r.csv"), "a,c\n1,cc\n").unwrap();
    std::fs::write(d.join("r2.csv"), "a,b,w\n1,x,s1\n").unwrap();
    let y = write_pipeline(
        d,
        "both_sides",
        r#"
  - {id: l, type: load, path: "${input_dir}/l.csv", incremental: append, schema: {a: int64, b: string, v: int64}}
  - {id: r, type: load, path: "${input_dir}/r.csv", incremental: append, schema: {a: int64, c: string}}
  - {id: r2, type: load, path: "${input_dir}/r2.csv", incremental: append, schema: {a: int64, b: string, w: string}}
  - {id: one_key, type: join, inputs: [l, r], how: inner, on: a}
  - {id: two_keys, type: join, inputs: [l, r2], how: inner, on: [a, b]}
  - {id: per_one, type: aggregate, input: one_key, group_by: a, aggregations: {n: {count: "*"}, total: {sum: v}}}
  - {id: per_two, type: aggregate, input: two_keys, group_by: a, aggregations: {n: {count: "*"}, total: {sum: v}}}
  - {id: s1, type: sort, input: per_one, by: [a]}
  - {id: s2, type: sort, input: per_two, by: [a]}
  - {id: o1, type: write, input: s1, path: "${output_dir}/per_one.csv"}
  - {id: o2, type: write, input: s2, path: "${output_dir}/per_two.csv"}
"#,
    );
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let outs = ["per_one.csv", "per_two.csv"];
    let read = |f: &str| std::fs::read_to_string(inc.path().join(f)).unwrap();
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "first run");
    // Both sides grow: new right rows for old left rows (2, the NULL row, 3), and a new left
    // row with its new right rows.
    append_lines(&d.join("l.csv"), &["4,w,50".into()]);
    append_lines(
        &d.join("r.csv"),
        &["2,dd".into(), ",ee".into(), "4,ff".into()],
    );
    append_lines(
        &d.join("r2.csv"),
        &[
            "2,x,s2".into(),
            "3,q,s3".into(),
            ",z,snull".into(),
            "4,w,s4".into(),
        ],
    );
    let (r, _) = inc_and_full(&y, d, (inc.path(), full.path()), &outs, "append");
    let summary = stdout(&r);
    // The aggregates merge the joins' new rows into their stored state: a new row the
    // joins missed would be missing from them.
    for step in ["one_key", "two_keys"] {
        assert!(
            summary.contains(&format!(
                "step `{step}`: incremental: computed for the appended rows only"
            )),
            "{step}: {summary}"
        );
    }
    for step in ["per_one", "per_two"] {
        assert!(
            summary.contains(&format!("step `{step}`: incremental: merged")),
            "{step}: {summary}"
        );
    }
    assert_eq!(read("per_one.csv"), "a,n,total\n1,1,10\n2,1,20\n4,1,50\n");
    assert_eq!(read("per_two.csv"), "a,n,total\n1,1,10\n3,1,40\n4,1,50\n");
}

/// A join of rows that only grow (invoices) with an aggregation that merged new rows (their
/// amounts, per invoice) changes only the rows whose key the merge touched: an invoice whose
/// first line items arrive gets its amount (left join), leaves the invoices without items
/// (anti join) and enters the matched ones (inner join). An aggregation over such a join
/// recomputes only the groups of the changed rows and still equals a full recompute
/// (expected values by hand: amounts are exact in binary).
#[test]
fn joins_with_merged_groups_recompute_only_the_groups_they_touch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("inv.csv"), "id,acct\n1,A\n2,A\n3,B\n4,C\n5,\n").unwrap();
    std::fs::write(
        d.join("items.csv"),
        "id,amount\n1,4.5\n1,6.5\n3,1.0\n99,2.0\n",
    )
    .unwrap();
    let y = write_pipeline(
        d,
        "updated_joins",
        r#"
  - {id: inv, type: load, path: "${input_dir}/inv.csv", incremental: append, schema: {id: int64, acct: string}}
  - {id: items, type: load, path: "${input_dir}/items.csv", incremental: append, schema: {id: int64, amount: float64}}
  - {id: amounts, type: aggregate, input: items, group_by: id, aggregations: {total: {sum: amount}, n: {count: "*"}}}
  - {id: with_amount, type: join, inputs: [inv, amounts], how: left, on: id}
  - {id: without, type: join, inputs: [inv, amounts], how: anti, on: id}
  - {id: matched, type: join, inputs: [inv, amounts], how: inner, on: id}
  - id: per_left
    type: aggregate
    input: with_amount
    group_by: acct
    aggregations: {invoices: {count: "*"}, total: {sum: "coalesce(total, 0.0)"}}
  - {id: per_anti, type: aggregate, input: without, group_by: acct, aggregations: {invoices: {count: "*"}}}
  - {id: per_inner, type: aggregate, input: matched, group_by: acct, aggregations: {total: {sum: total}, items: {sum: n}}}
  - {id: o1, type: write, input: per_left, path: "${output_dir}/left.csv"}
  - {id: o2, type: write, input: per_anti, path: "${output_dir}/anti.csv"}
  - {id: o3, type: write, input: per_inner, path: "${output_dir}/inner.csv"}
"#,
    );
    let (inc, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let outs = ["left.csv", "anti.csv", "inner.csv"];
    let read = |f: &str| std::fs::read_to_string(inc.path().join(f)).unwrap();
    let go = |step: &str| {
        let (r, _) = inc_and_full(&y, d, (inc.path(), full.path()), &outs, step);
        let summary = stdout(&r);
        for (join, agg) in [
            ("with_amount", "per_left"),
            ("without", "per_anti"),
            ("matched", "per_inner"),
        ] {
            assert!(
                summary.contains(&format!(
                    "step `{join}`: incremental: only rows whose `id` `amounts` merged changed"
                )),
                "{step}: {join}: {summary}"
            );
            assert!(
                summary.contains(&format!(
                    "step `{agg}`: incremental: recomputed the groups of the updated rows"
                )),
                "{step}: {agg}: {summary}"
            );
        }
    };
    inc_and_full(&y, d, (inc.path(), full.path()), &outs, "first run");
    assert_eq!(read("anti.csv"), "acct,invoices\n,1\nA,1\nC,1\n");
    // New invoices (6 with items, 7 without); first items for invoices 2 and 5 (whose
    // account is NULL), one more for invoice 1; items of an unknown invoice and of none.
    append_lines(&d.join("inv.csv"), &["6,B".into(), "7,D".into()]);
    append_lines(
        &d.join("items.csv"),
        &[
            "2,7.75".into(),
            "1,0.25".into(),
            "6,3.0".into(),
            "99,1.0".into(),
            ",5.0".into(),
            "5,0.5".into(),
        ],
    );
    go("append");
    assert_eq!(
        read("left.csv"),
        "acct,invoices,total\n,1,0.5\nA,2,19.0\nB,2,4.0\nC,1,0.0\nD,1,0.0\n"
    );
    assert_eq!(read("anti.csv"), "acct,invoices\nC,1\nD,1\n");
    assert_eq!(
        read("inner.csv"),
        "acct,total,items\n,0.5,1\nA,19.0,4\nB,4.0,2\n"
    );
    // Only the amounts grow (no new invoice): C's invoice gets its first item.
    append_lines(&d.join("items.csv"), &["4,2.0".into()]);
    go("items only");
    assert_eq!(read("anti.csv"), "acct,invoices\nD,1\n");
}

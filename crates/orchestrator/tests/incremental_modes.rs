//! The other incremental modes of `load`: `files` (a folder or glob of daily drops) and
//! `column` (rows above a high-water mark). The bundled pipelines are rewritten to read
//! invoices and line items in those modes; after each change in a sequence, the incremental
//! run's outputs must equal a `--full-refresh` run's (byte for byte) and the bundled
//! pipelines' outputs on the same rows kept as single files (an independent reading path:
//! one file, no parts, no state).

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A bundled pipeline with its two append sources rewritten by `edit`.
fn variant(dir: &Path, name: &str, edit: &dyn Fn(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(repo().join(format!("pipelines/{name}.yaml"))).unwrap();
    let out = edit(text);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, out).unwrap();
    path
}

fn replace(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not in the pipeline");
    text.replace(from, to)
}

/// Lines of a CSV file: (header, rows). Rows of the bundled files have no embedded breaks
/// (only accounts.csv has multi-line fields, and it is not split here).
fn csv_lines(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap();
    (header, lines.filter(|l| !l.is_empty()).collect())
}

fn write_csv(path: &Path, header: &str, rows: &[String]) {
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// A daily drop: file name, invoice rows, line item rows.
type DayDrop = (String, Vec<String>, Vec<String>);

struct Bench {
    data: tempfile::TempDir,
    pipelines: tempfile::TempDir,
    inc: tempfile::TempDir,
    full: tempfile::TempDir,
    reference: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            data: bundled_data_copy(),
            pipelines: tempfile::tempdir().unwrap(),
            inc: tempfile::tempdir().unwrap(),
            full: tempfile::tempdir().unwrap(),
            reference: tempfile::tempdir().unwrap(),
        }
    }

    fn d(&self) -> &Path {
        self.data.path()
    }

    /// Runs each pipeline incrementally and with --full-refresh, and the bundled pipeline on
    /// `single` (a data folder holding the same rows as single files); compares all three.
    /// Returns the incremental runs' summaries.
    fn check(&self, pipelines: &[(&str, PathBuf)], single: &Path, step: &str) -> String {
        let mut summaries = String::new();
        let as_of = "as_of=2021-04-30";
        for (name, p) in pipelines {
            let p = p.to_str().unwrap();
            let i = format!("input_dir={}", self.d().display());
            let oi = format!("output_dir={}", self.inc.path().display());
            let of = format!("output_dir={}", self.full.path().display());
            let r = run(&["run", p, "-p", as_of, "-p", &i, "-p", &oi]);
            assert_eq!(code(&r), 0, "{step}: {}", stderr(&r));
            summaries.push_str(&stdout(&r));
            let f = run(&["run", p, "-p", as_of, "-p", &i, "-p", &of, "--full-refresh"]);
            assert_eq!(code(&f), 0, "{step}: {}", stderr(&f));
            let bundled = format!("pipelines/{name}.yaml");
            let si = format!("input_dir={}", single.display());
            let or = format!("output_dir={}", self.reference.path().display());
            let b = run(&[
                "run",
                &bundled,
                "-p",
                as_of,
                "-p",
                &si,
                "-p",
                &or,
                "--full-refresh",
            ]);
            assert_eq!(code(&b), 0, "{step}: {}", stderr(&b));
            let file = format!("{name}.csv");
            let x = std::fs::read(self.inc.path().join(&file)).unwrap();
            let y = std::fs::read(self.full.path().join(&file)).unwrap();
            assert!(
                x == y,
                "{step}: {file}: incremental differs from full refresh"
            );
            assert_csv_eq(
                &self.inc.path().join(&file),
                &self.reference.path().join(&file),
            );
        }
        summaries
    }
}

#[test]
fn daily_drop_folders_read_only_new_files_and_equal_full_refreshes() {
    let b = Bench::new();
    let d = b.d();
    let to_files = |t: String| {
        let t = replace(
            t,
            "path: ${input_dir}/invoices.csv\n    incremental: append",
            "path: ${input_dir}/invoices/*.csv\n    incremental: files",
        );
        replace(
            t,
            "path: ${input_dir}/invoice_line_items.csv\n    incremental: append",
            "path: ${input_dir}/invoice_line_items/\n    format: csv\n    incremental: files",
        )
    };
    let pipelines = [
        (
            "late_payment",
            variant(b.pipelines.path(), "late_payment", &to_files),
        ),
        (
            "product_mix",
            variant(b.pipelines.path(), "product_mix", &to_files),
        ),
    ];
    let (ih, inv) = csv_lines(&d.join("invoices.csv"));
    let (lh, items) = csv_lines(&d.join("invoice_line_items.csv"));
    std::fs::create_dir(d.join("invoices")).unwrap();
    std::fs::create_dir(d.join("invoice_line_items")).unwrap();
    // The same rows as single files, for the bundled pipelines (the reference).
    let single = tempfile::tempdir().unwrap();
    for f in ["accounts.csv", "skus.csv"] {
        std::fs::copy(d.join(f), single.path().join(f)).unwrap();
    }
    let drops: std::cell::RefCell<Vec<DayDrop>> = Default::default();
    let sync_single = || {
        let (mut all_inv, mut all_items) = (Vec::new(), Vec::new());
        for (_, i, l) in drops.borrow().iter() {
            all_inv.extend(i.iter().cloned());
            all_items.extend(l.iter().cloned());
        }
        write_csv(&single.path().join("invoices.csv"), &ih, &all_inv);
        write_csv(
            &single.path().join("invoice_line_items.csv"),
            &lh,
            &all_items,
        );
    };
    let drop_day = |name: &str, inv: &[String], items: &[String]| {
        write_csv(&d.join("invoices").join(name), &ih, inv);
        write_csv(&d.join("invoice_line_items").join(name), &lh, items);
        let mut v = drops.borrow_mut();
        v.push((name.to_string(), inv.to_vec(), items.to_vec()));
        v.sort();
    };
    let (n, m) = (inv.len(), items.len());
    // Day 1: most rows. Line items are cut at another place than invoices, so later drops
    // carry line items for invoices read before.
    drop_day("day-01.csv", &inv[..n * 6 / 10], &items[..m * 5 / 10]);
    sync_single();
    let s = b.check(&pipelines, single.path(), "day 1");
    assert!(s.contains("full read (first run): 1 files"), "{s}");

    drop_day(
        "day-02.csv",
        &inv[n * 6 / 10..n * 8 / 10],
        &items[m * 5 / 10..m * 8 / 10],
    );
    sync_single();
    let s = b.check(&pipelines, single.path(), "day 2");
    assert!(
        s.contains("new files: 1 ("),
        "only the new drop is read:\n{s}"
    );
    assert!(
        s.matches("merged the appended rows into its stored state")
            .count()
            == 2,
        "{s}"
    );

    // Nothing new: no data work.
    let s = b.check(&pipelines, single.path(), "unchanged");
    assert!(s.contains("no new files"), "{s}");
    assert!(
        !s.contains(" ran "),
        "an unchanged rerun runs nothing:\n{s}"
    );

    // A header-only drop (a quiet day), and a drop with late-arriving invoices (old dates)
    // whose name sorts before the last one's.
    drop_day("day-02a.csv", &[], &[]);
    let mut late = inv[n * 8 / 10..].to_vec();
    late.push(format!("{},7,2019-06-01", n + 1000));
    let mut late_items = items[m * 8 / 10..].to_vec();
    late_items.push(format!("{},1-60559-539-X,3", n + 1000));
    drop_day("day-02b.csv", &late, &late_items);
    sync_single();
    let s = b.check(&pipelines, single.path(), "late drop");
    assert!(s.contains("new files: 2 ("), "{s}");

    // A drop read before is edited: everything is read again, and the run says which file.
    let day1 = d.join("invoices").join("day-01.csv");
    let text = std::fs::read_to_string(&day1).unwrap();
    let first = text.lines().nth(1).unwrap().to_string();
    let mut fields: Vec<&str> = first.split(',').collect();
    fields[2] = "2018-01-01";
    let edited = fields.join(",");
    std::fs::write(&day1, text.replacen(&first, &edited, 1)).unwrap();
    drops.borrow_mut()[0].1[0] = edited;
    sync_single();
    let s = b.check(&pipelines, single.path(), "edited drop");
    assert!(s.contains("day-01.csv` changed since it was read"), "{s}");

    // A drop disappears: read again without it.
    std::fs::remove_file(d.join("invoices").join("day-02.csv")).unwrap();
    std::fs::remove_file(d.join("invoice_line_items").join("day-02.csv")).unwrap();
    drops.borrow_mut().retain(|(n, _, _)| n != "day-02.csv");
    sync_single();
    let s = b.check(&pipelines, single.path(), "removed drop");
    assert!(s.contains("day-02.csv` was read before and is gone"), "{s}");
}

#[test]
fn a_high_water_column_reads_rows_above_the_mark_and_equals_full_refreshes() {
    let b = Bench::new();
    let d = b.d();
    let to_column = |t: String| {
        replace(
            t,
            "path: ${input_dir}/invoices.csv\n    incremental: append",
            "path: ${input_dir}/invoices.csv\n    incremental: {column: invoice_id}",
        )
    };
    let pipelines = [
        (
            "late_payment",
            variant(b.pipelines.path(), "late_payment", &to_column),
        ),
        (
            "product_mix",
            variant(b.pipelines.path(), "product_mix", &to_column),
        ),
    ];
    let (ih, inv) = csv_lines(&d.join("invoices.csv"));
    let id = |r: &String| r.split(',').next().unwrap().parse::<i64>().unwrap();
    let date = |r: &String| r.split(',').nth(2).unwrap().to_string();
    // The extract is rewritten each day, sorted by date (not by id): new rows land anywhere
    // in the file, so only the mark can tell them.
    let extract = |rows: &mut Vec<String>| {
        rows.sort_by_key(|r| (date(r), id(r)));
        write_csv(&d.join("invoices.csv"), &ih, rows);
    };
    let n = inv.len() as i64;
    // Day 1: invoices up to 70% of the ids, except one (it arrives late, below the mark).
    let gap = n / 3;
    let mut rows: Vec<String> = inv
        .iter()
        .filter(|r| id(r) <= n * 7 / 10 && id(r) != gap)
        .cloned()
        .collect();
    extract(&mut rows);
    let s = b.check(&pipelines, d, "day 1");
    assert!(s.contains("full read (first run)"), "{s}");

    // Day 2: the next ids, interleaved by date with the old ones.
    rows.extend(
        inv.iter()
            .filter(|r| id(r) > n * 7 / 10 && id(r) <= n * 9 / 10)
            .cloned(),
    );
    extract(&mut rows);
    let s = b.check(&pipelines, d, "day 2");
    let expected = inv
        .iter()
        .filter(|r| id(r) > n * 7 / 10 && id(r) <= n * 9 / 10)
        .count();
    assert!(
        s.contains(&format!(
            "{expected} new rows above the mark (`invoice_id` now up to {})",
            n * 9 / 10
        )),
        "{s}"
    );
    assert!(
        s.matches("merged the appended rows into its stored state")
            .count()
            == 2,
        "{s}"
    );

    // Unchanged: not even parsed.
    let s = b.check(&pipelines, d, "unchanged");
    assert!(s.contains("step `invoices`: unchanged"), "{s}");

    // The missing invoice arrives late, below the mark, with the rest: read in full again.
    rows.extend(
        inv.iter()
            .filter(|r| id(r) == gap || id(r) > n * 9 / 10)
            .cloned(),
    );
    extract(&mut rows);
    let s = b.check(&pipelines, d, "late row below the mark");
    assert!(s.contains("a row arrived late or was removed"), "{s}");
}

#[test]
fn a_date_mark_keeps_rows_of_later_days_and_rereads_on_a_same_day_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("p.yaml"),
        "name: t
params:
  output_dir: {type: path, default: out}
steps:
  - id: events
    type: load
    path: ${input_dir}/events.csv
    incremental: {column: day}
    schema: {id: int64, day: date, amount: float64}
  - id: per_day
    type: aggregate
    input: events
    group_by: day
    aggregations:
      n: {count: '*'}
      total: {sum: amount}
  - id: sorted
    type: sort
    input: per_day
    by: day
  - {id: out, type: write, input: sorted, path: '${output_dir}/per_day.csv'}
",
    )
    .unwrap();
    let events = d.join("events.csv");
    let go = |body: &str, out: &str, extra: &[&str]| {
        std::fs::write(&events, format!("id,day,amount\n{body}")).unwrap();
        let mut args = vec![
            "run".to_string(),
            d.join("p.yaml").display().to_string(),
            "-p".into(),
            format!("input_dir={}", d.display()),
            "-p".into(),
            format!("output_dir={}", d.join(out).display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let o = run(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        (
            stdout(&o),
            std::fs::read_to_string(d.join(out).join("per_day.csv")).unwrap(),
        )
    };
    let day1 = "1,2024-01-01,1.5\n2,2024-01-02,2.0\n";
    let (s, out) = go(day1, "inc", &[]);
    assert!(s.contains("full read (first run): 2 rows"), "{s}");
    // Computed by hand.
    assert_eq!(out, "day,n,total\n2024-01-01,1,1.5\n2024-01-02,1,2.0\n");
    let day2 = format!("{day1}3,2024-01-03,4.0\n4,2024-01-03,1.0\n");
    let (s, out) = go(&day2, "inc", &[]);
    assert!(
        s.contains("2 new rows above the mark (`day` now up to 2024-01-03)"),
        "{s}"
    );
    assert_eq!(
        out,
        "day,n,total\n2024-01-01,1,1.5\n2024-01-02,1,2.0\n2024-01-03,2,5.0\n"
    );
    // Another row of the mark's own day: not above the mark, so the count of rows at or
    // below it grows and the source is read in full (a strictly greater mark would miss it).
    let day3 = format!("{day2}5,2024-01-03,0.5\n");
    let (s, out) = go(&day3, "inc", &[]);
    assert!(s.contains("a row arrived late or was removed"), "{s}");
    assert_eq!(
        out,
        "day,n,total\n2024-01-01,1,1.5\n2024-01-02,1,2.0\n2024-01-03,3,5.5\n"
    );
    let (_, full) = go(&day3, "full", &["--full-refresh"]);
    assert_eq!(out, full);
}

#[test]
fn misused_incremental_modes_are_refused_at_validate_time() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "${input_dir}/invoices.csv",
            "column",
            &[
                "`incremental: column` needs the column's name",
                "{column: invoice_id}",
            ],
        ),
        (
            "${input_dir}/invoices.csv",
            "{column: invoice_idd}",
            &[
                "column `invoice_idd` is not in the schema",
                "did you mean `invoice_id`?",
            ],
        ),
        (
            "${input_dir}/invoices.csv",
            "files",
            &["`incremental: files` needs `path` to name a folder or a glob"],
        ),
        (
            "${input_dir}/*.csv",
            "append",
            &["names several files", "use `incremental: files`"],
        ),
        (
            "${input_dir}/invoices.csv",
            "apend",
            &["unknown value `apend`", "did you mean `append`?"],
        ),
    ];
    for (path, mode, expect) in cases {
        let yaml = format!(
            "name: t
steps:
  - id: invoices
    type: load
    path: {path}
    incremental: {mode}
    schema: {{invoice_id: int64, account_id: int64, date_issued: date}}
"
        );
        let p = dir.path().join("p.yaml");
        std::fs::write(&p, yaml).unwrap();
        let o = run(&["validate", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{mode}: {err}");
        for e in *expect {
            assert!(err.contains(e), "{mode}: stderr lacks `{e}`:\n{err}");
        }
        assert!(
            err.contains("p.yaml:6:"),
            "{mode}: the key is located:\n{err}"
        );
    }
}

/// Runs `p.yaml` in `dir` with `output_dir=dir/out`; returns (exit code, stdout + stderr).
fn run_in(dir: &Path) -> (i32, String) {
    let o = run(&[
        "run",
        dir.join("p.yaml").to_str().unwrap(),
        "-p",
        &format!("input_dir={}", dir.display()),
        "-p",
        &format!("output_dir={}", dir.join("out").display()),
    ]);
    (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn bad_rows_of_incremental_reads_are_located_in_the_users_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pipeline = |path: &str, mode: &str, policy: &str| {
        std::fs::write(
            d.join("p.yaml"),
            format!(
                "name: t
params:
  output_dir: {{type: path, default: out}}
steps:
  - id: inv
    type: load
    path: {path}
    incremental: {mode}
    on_bad_rows: {policy}
    schema: {{invoice_id: int64, account_id: int64}}
  - {{id: w, type: write, input: inv, path: '${{output_dir}}/inv.csv'}}
"
            ),
        )
        .unwrap();
    };
    // append: a bad row in an appended tail is reported at its line in the file itself (the
    // tail is parsed as a piece of its own).
    pipeline("${input_dir}/inv.csv", "append", "quarantine");
    let file = d.join("inv.csv");
    std::fs::write(&file, "invoice_id,account_id\n1,1\n2,x\n").unwrap();
    let (c, out) = run_in(d);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("quarantined 1 bad row of `"), "{out}");
    assert!(out.contains("inv.csv` into `"), "{out}");
    assert!(out.contains("line 3, column `account_id`"), "{out}");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"3,3\n4,\"y\nz\"\n5,5\n6,q\n").unwrap();
    drop(f);
    let (c, out) = run_in(d);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("appended: 2 new rows"), "{out}");
    assert!(
        !out.contains(".tail-"),
        "the temporary piece is not named:\n{out}"
    );
    // Line 5 holds a quoted field with a line break (lines 5-6); `q` is on line 8.
    let q = read_csv_text(&d.join("out/quarantine/inv.csv"));
    let lines: Vec<Option<&str>> = q.column("line").unwrap().str().unwrap().iter().collect();
    assert_eq!(lines, [Some("5"), Some("8")], "{q}");
    // With `fail`, the run stops and names the file and line.
    pipeline("${input_dir}/inv.csv", "append", "skip");
    assert_eq!(run_in(d).0, 0);
    pipeline("${input_dir}/inv.csv", "append", "fail");
    std::fs::write(&file, "invoice_id,account_id\n1,1\n").unwrap();
    assert_eq!(run_in(d).0, 0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"2,2\n3,oops\n").unwrap();
    drop(f);
    let (c, out) = run_in(d);
    assert_eq!(c, 1, "{out}");
    let at = format!("bad row in `{}` at line 4", file.display());
    assert!(out.contains(&at), "{out}");

    // files: each drop's bad rows are reported (none is lost to the next file's read) and
    // quarantined into a file named like the drop.
    std::fs::create_dir(d.join("drops")).unwrap();
    std::fs::write(d.join("drops/a.csv"), "invoice_id,account_id\n1,1\n2,x\n").unwrap();
    std::fs::write(d.join("drops/b.csv"), "invoice_id,account_id\n3,y\n").unwrap();
    std::fs::write(d.join("drops/c.csv"), "invoice_id,account_id\n4,4\n").unwrap();
    pipeline("${input_dir}/drops/*.csv", "files", "quarantine");
    let (c, out) = run_in(d);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("drops/a.csv` into `"), "{out}");
    assert!(out.contains("drops/b.csv` into `"), "{out}");
    let qa = std::fs::read_to_string(d.join("out/quarantine/inv/a.csv")).unwrap();
    let qb = std::fs::read_to_string(d.join("out/quarantine/inv/b.csv")).unwrap();
    assert!(qa.contains("\n3,account_id,x,"), "{qa}");
    assert!(qb.contains("\n2,account_id,y,"), "{qb}");
    let rows = std::fs::read_to_string(d.join("out/inv.csv")).unwrap();
    assert_eq!(rows, "invoice_id,account_id\n1,1\n4,4\n");
}

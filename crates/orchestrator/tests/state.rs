//! Reruns and state: unchanged reruns do no work and rewrite nothing, a changed source
//! invalidates exactly what depends on it, the state folder is locked, and the state
//! commands report and reset it.

mod common;

use common::*;
use std::path::Path;
use std::time::SystemTime;

fn run_lp(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let i = format!("input_dir={}", data.display());
    let o = format!("output_dir={}", out.display());
    let mut args = vec![
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-01",
        "-p",
        &i,
        "-p",
        &o,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn unchanged_rerun_is_all_cached_and_rewrites_nothing() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let first = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert_eq!(status_of(&stdout(&first), "write_csv"), "ran");
    let csv = out.path().join("late_payment.csv");
    let (t_csv, t_pq) = (mtime(&csv), mtime(&out.path().join("late_payment.parquet")));
    let bytes = std::fs::read(&csv).unwrap();

    // Touching the inputs without changing them is not a change: fingerprints use content.
    for f in std::fs::read_dir(data.path()).unwrap() {
        let p = f.unwrap().path();
        let content = std::fs::read(&p).unwrap();
        std::fs::write(&p, content).unwrap();
    }
    let second = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let summary = stdout(&second);
    for line in summary
        .lines()
        .skip(2)
        .filter(|l| !l.trim_start().starts_with("wrote") && !l.trim_start().starts_with("note:"))
    {
        assert_eq!(
            line.split_whitespace().nth(2),
            Some("cached"),
            "every step is cached:\n{summary}"
        );
    }
    assert_eq!(mtime(&csv), t_csv, "the CSV was not rewritten");
    assert_eq!(
        mtime(&out.path().join("late_payment.parquet")),
        t_pq,
        "the Parquet was not rewritten"
    );
    assert_eq!(std::fs::read(&csv).unwrap(), bytes);
    assert!(
        summary.contains("appended: 0 new rows"),
        "the append sources read nothing:\n{summary}"
    );
    assert!(
        summary.contains("appended: 0 new rows"),
        "the append sources read nothing:\n{summary}"
    );
}

/// Rewrites `path` with `edit` applied, keeping its size and setting its modification time
/// back to what it was: only the status-change time (ctime) tells that it was written.
fn edit_keeping_size_and_mtime(path: &Path, edit: impl Fn(&str) -> String) {
    let before = std::fs::read_to_string(path).unwrap();
    let t = mtime(path);
    let after = edit(&before);
    assert_eq!(before.len(), after.len(), "the edit keeps the size");
    assert_ne!(before, after);
    std::fs::write(path, after).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
    assert_eq!(mtime(path), t);
}

#[test]
fn files_not_written_since_are_not_hashed_again_and_a_hidden_edit_is_still_seen() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    // Files written just before they are hashed are hashed again next time (a write in the
    // same clock tick would not show in their status): let them settle (100 ms on file
    // systems with sub-second times, 2 s on coarse ones).
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let summary = stdout(&o);
    assert!(
        summary.contains("step `invoices`: appended: 0 new rows (not written since the last run)"),
        "an unchanged append source is not even hashed:\n{summary}"
    );
    assert_eq!(status_of(&summary, "write_csv"), "cached", "{summary}");
    let before = std::fs::read_to_string(out.path().join("late_payment.csv")).unwrap();

    // A price edited in place, same size, mtime set back: the content hash still decides.
    let skus = data.path().join("skus.csv");
    edit_keeping_size_and_mtime(&skus, |t| {
        let line = t.lines().nth(1).unwrap();
        let mut f: Vec<String> = line.split(',').map(String::from).collect();
        let last = f[4].pop().unwrap();
        f[4].push(if last == '1' { '2' } else { '1' });
        t.replacen(line, &f.join(","), 1)
    });
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(status_of(&stdout(&o), "write_csv"), "ran", "{}", stdout(&o));
    let after = std::fs::read_to_string(out.path().join("late_payment.csv")).unwrap();
    assert_ne!(before, after, "the edited price counts");

    // The same for a row of an append source: read in full again.
    let invoices = data.path().join("invoices.csv");
    edit_keeping_size_and_mtime(&invoices, |t| {
        t.replacen("\n2,1,2020-03-19\n", "\n2,1,2020-03-18\n", 1)
    });
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("full read (rows already read were changed or removed)"),
        "{}",
        stdout(&o)
    );
    let full = tempfile::tempdir().unwrap();
    assert_eq!(
        code(&run_lp(data.path(), full.path(), &["--full-refresh"])),
        0
    );
    assert_eq!(
        std::fs::read(out.path().join("late_payment.csv")).unwrap(),
        std::fs::read(full.path().join("late_payment.csv")).unwrap()
    );
}

#[test]
fn a_changed_source_invalidates_what_depends_on_it() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let before = std::fs::read_to_string(out.path().join("late_payment.csv")).unwrap();

    // Double every retail price: same size class of file, new content.
    let skus = data.path().join("skus.csv");
    let text = std::fs::read_to_string(&skus).unwrap();
    let mut lines = text.lines();
    let mut new = format!("{}\n", lines.next().unwrap());
    for l in lines {
        let mut f: Vec<String> = l.split(',').map(String::from).collect();
        let p: f64 = f[4].parse().unwrap();
        f[4] = format!("{}", p * 2.0);
        new.push_str(&f.join(","));
        new.push('\n');
    }
    std::fs::write(&skus, new).unwrap();
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(status_of(&stdout(&o), "write_csv"), "ran", "{}", stdout(&o));
    let after = std::fs::read_to_string(out.path().join("late_payment.csv")).unwrap();
    assert_ne!(before, after, "the amounts changed");
    // Amounts doubled, counts unchanged: check one account by hand-parsing the CSV.
    let amount = |text: &str| -> f64 {
        text.lines()
            .nth(1)
            .unwrap()
            .rsplit(',')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let ratio = amount(&after) / amount(&before);
    assert!((ratio - 2.0).abs() < 1e-9, "ratio {ratio}");
}

#[test]
fn a_cached_step_is_reused_when_only_as_of_changes() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let i = format!("input_dir={}", data.path().display());
    let o = format!("output_dir={}", out.path().display());
    let r = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-05",
        "-p",
        &i,
        "-p",
        &o,
    ]);
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let s = stdout(&r);
    assert_eq!(
        status_of(&s, "invoice_amounts"),
        "cached",
        "as_of-independent work is reused:\n{s}"
    );
    assert_eq!(status_of(&s, "write_csv"), "ran", "{s}");
    // The result equals a full refresh of the same params.
    let fresh = tempfile::tempdir().unwrap();
    let f = format!("output_dir={}", fresh.path().display());
    let r2 = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-05",
        "-p",
        &i,
        "-p",
        &f,
        "--full-refresh",
    ]);
    assert_eq!(code(&r2), 0, "{}", stderr(&r2));
    assert_csv_eq(
        &out.path().join("late_payment.csv"),
        &fresh.path().join("late_payment.csv"),
    );
}

#[test]
fn full_refresh_recomputes_everything() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let o = run_lp(data.path(), out.path(), &["--full-refresh"]);
    assert_eq!(code(&o), 0);
    let s = stdout(&o);
    assert_eq!(status_of(&s, "late_payment"), "ran", "{s}");
    assert_eq!(status_of(&s, "write_csv"), "ran", "{s}");
}

#[test]
fn a_second_run_on_the_same_state_fails_at_once_naming_the_holder() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join(".orchestrator");
    let lock = orch_state::StateLock::acquire(&state).unwrap();
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("another run is using the state folder"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(
        !out.path().join("late_payment.csv").exists(),
        "nothing was written"
    );
    drop(lock);
    // A lock left by a process that is gone does not block: the OS released it.
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn status_history_reset_and_prune() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let o = format!("output_dir={}", out.path().display());
    let i = format!("input_dir={}", data.path().display());
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);

    let h = run(&["history", "pipelines/late_payment.yaml", "-p", &o, "-p", &i]);
    assert_eq!(code(&h), 0, "{}", stderr(&h));
    let text = stdout(&h);
    assert_eq!(text.lines().count(), 3, "a header and two runs:\n{text}");
    assert!(text.contains("as_of=2021-03-01"), "{text}");

    let s = run(&["status", "pipelines/late_payment.yaml", "-p", &o, "-p", &i]);
    let text = stdout(&s);
    assert!(text.contains("last run #2 ok"), "{text}");
    assert!(text.contains("late_payment.csv"), "{text}");

    let r = run(&[
        "state",
        "reset",
        "pipelines/late_payment.yaml",
        "-p",
        &o,
        "-p",
        &i,
        "--step",
        "write_csv",
    ]);
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let again = run_lp(data.path(), out.path(), &[]);
    let summary = stdout(&again);
    assert_eq!(status_of(&summary, "write_csv"), "ran", "{summary}");
    assert_eq!(status_of(&summary, "write_parquet"), "cached", "{summary}");

    let bad = run(&[
        "state",
        "reset",
        "pipelines/late_payment.yaml",
        "-p",
        &o,
        "--step",
        "nope",
    ]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("has no step `nope`"));

    // A stray file in the cache folder is not referenced by any record: prune removes it.
    let stray = out.path().join(".orchestrator/cache/0000.parquet");
    std::fs::write(&stray, b"x").unwrap();
    let p = run(&["cache", "prune", "pipelines/late_payment.yaml", "-p", &o]);
    assert_eq!(code(&p), 0, "{}", stderr(&p));
    assert!(!stray.exists());
    assert!(stdout(&p).contains("removed 1"), "{}", stdout(&p));
    // What is referenced stays: the next run still reuses the cached step.
    let o2 = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-09",
        "-p",
        &i,
        "-p",
        &o,
    ]);
    assert_eq!(
        status_of(&stdout(&o2), "invoice_amounts"),
        "cached",
        "{}",
        stdout(&o2)
    );
}

/// The bundled pair reads the same append sources with the same options: the second
/// pipeline reuses the first one's parts (no second parse), and its outputs still equal a
/// run on a state folder of its own. Parts no record points at are pruned.
#[test]
fn pipelines_of_one_state_folder_share_source_parts() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let alone = tempfile::tempdir().unwrap();
    let i = format!("input_dir={}", data.path().display());
    let pm = |out: &Path| {
        let o = format!("output_dir={}", out.display());
        run(&[
            "run",
            "pipelines/product_mix.yaml",
            "-p",
            "as_of=2021-03-01",
            "-p",
            &i,
            "-p",
            &o,
        ])
    };
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let second = pm(out.path());
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let text = stdout(&second);
    assert!(
        text.contains("step `line_items`: appended: 0 new rows"),
        "product_mix should reuse late_payment's parts:\n{text}"
    );
    let own = pm(alone.path());
    assert!(
        stdout(&own).contains("full read (first run)"),
        "{}",
        stdout(&own)
    );
    for f in ["product_mix.csv", "product_mix.parquet"] {
        assert_eq!(
            std::fs::read(out.path().join(f)).unwrap(),
            std::fs::read(alone.path().join(f)).unwrap(),
            "{f}"
        );
    }
    // One folder per (file, options), one part each: nothing was written twice.
    let sources = out.path().join(".orchestrator/sources");
    let parts: Vec<_> = std::fs::read_dir(&sources)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");

    // A part no record points at is pruned; the referenced ones stay.
    let stray = sources.join("0123456789abcdef0123/part-x.parquet");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"x").unwrap();
    let o = format!("output_dir={}", out.path().display());
    let p = run(&["cache", "prune", "pipelines/late_payment.yaml", "-p", &o]);
    assert_eq!(code(&p), 0, "{}", stderr(&p));
    assert!(!stray.exists() && !stray.parent().unwrap().exists());
    assert!(parts.iter().all(|p| p.exists()));
    let again = pm(out.path());
    assert!(stdout(&again).contains("cached"), "{}", stdout(&again));
}

/// The files under `dir` (not recursive), sorted.
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A daily run replaces the aggregation states (they are named by fingerprint): the ones it
/// replaced are deleted once the new ones are recorded, so the state folder does not grow
/// every day; source parts that are still read stay.
#[test]
fn a_run_deletes_the_states_it_replaced() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    let first = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let cache = out.path().join(".orchestrator/cache");
    let before = files_in(&cache);
    assert!(!before.is_empty(), "late_payment keeps aggregation states");

    // One more invoice with a line item: every state changes.
    append_lines(
        &data.path().join("invoices.csv"),
        &["99999991,1,2021-02-01".into()],
    );
    let items = std::fs::read_to_string(data.path().join("invoice_line_items.csv")).unwrap();
    let sku = items.lines().nth(1).unwrap().split(',').nth(1).unwrap();
    append_lines(
        &data.path().join("invoice_line_items.csv"),
        &[format!("99999991,{sku},2")],
    );

    let second = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert!(
        stdout(&second).contains("merged the appended rows"),
        "{}",
        stdout(&second)
    );
    let after = files_in(&cache);
    assert_eq!(
        after.len(),
        before.len(),
        "one state per stateful step:\n{after:?}"
    );
    for f in &before {
        assert!(
            !after.contains(f),
            "{} was replaced but is still there",
            f.display()
        );
    }
    // Both parts of each appended source are still read: kept.
    for source in files_in(&out.path().join(".orchestrator/sources")) {
        assert_eq!(files_in(&source).len(), 2, "{}", source.display());
    }
    // Nothing left for `cache prune`.
    let o = format!("output_dir={}", out.path().display());
    let p = run(&["cache", "prune", "pipelines/late_payment.yaml", "-p", &o]);
    assert_eq!(code(&p), 0, "{}", stderr(&p));
    assert!(stdout(&p).contains("removed 0"), "{}", stdout(&p));
}

/// A run killed while staging leaves a temporary file beside an output; the next run
/// normally clears it when it stages that output again. An unchanged rerun, which keeps
/// the output and stages nothing, must clear it too (found by the crash test).
#[test]
fn an_unchanged_rerun_clears_temporary_files_of_killed_runs() {
    let data = bundled_data_copy();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(code(&run_lp(data.path(), out.path(), &[])), 0);
    let left = out.path().join(".late_payment.csv.k1lled.tmp");
    std::fs::write(&left, "half a file").unwrap();
    let o = run_lp(data.path(), out.path(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        status_of(&stdout(&o), "write_csv"),
        "cached",
        "{}",
        stdout(&o)
    );
    assert!(
        !left.exists(),
        "the killed run's temporary file is still there"
    );
}

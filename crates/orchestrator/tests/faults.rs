//! Faults end to end, with the real binary: an output folder that is not writable, a full
//! disk, a run that fails half-way, and a state folder that was deleted or damaged (the
//! database, a cached result, an incremental source's stored part). Every failing run must
//! exit 1 with a message that names the file and says what to do, leave every previous
//! output and all step records and stored files as they were, and leave no temporary file;
//! the next run after the fix must write exactly what a clean run writes. The table of
//! behaviours is docs/bad_input.md ("Faults").
//!
//! Tests may run as root, where `chmod` does not stop writes: the unwritable-folder test
//! then uses `chattr +i`, or, where that is not available, the fault-injection seam of
//! `orch_steps::storage` (`ORCHESTRATOR_FAULT_INJECT`). The half-way test blocks a folder
//! with a regular file, which stops root too. The full-disk test injects ENOSPC, and also
//! fills a real small tmpfs when one can be mounted.

#[path = "common/bad.rs"]
mod bad;
mod common;

use bad::{assert_has, Ran, Sandbox};
use common::status_of;
use orch_state::StepRecord;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An incremental source, a cached join with a `checks:` section, and two writes (the CSV
/// one in a folder named by a param, so a run can be pointed at a blocked folder).
const PIPELINE: &str = "name: faults
params:
  csv_dir: {type: string, default: csv}
steps:
  - id: items
    type: load
    path: ${input_dir}/items.csv
    incremental: append
    schema: {invoice_id: int64, item: string, quantity: int64}
  - id: skus
    type: load
    path: ${input_dir}/skus.csv
    schema: {item: string, price: float64}
  - id: priced
    type: join
    inputs: [items, skus]
    how: left
    on: item
    cache: true
    checks:
      - {not_null: [invoice_id]}
  - id: totals
    type: aggregate
    input: priced
    group_by: item
    aggregations:
      lines: {count: \"*\"}
      quantity: {sum: quantity}
      amount: {sum: quantity * price}
  - id: ordered
    type: sort
    input: totals
    by: item
  - id: write_csv
    type: write
    input: ordered
    path: ${output_dir}/${csv_dir}/totals.csv
  - id: write_parquet
    type: write
    input: ordered
    path: ${output_dir}/totals.parquet
";

const ITEMS: &str = "invoice_id,item,quantity\n1,Widget,4\n2,Gadget,3\n3,Bolt,2\n";
const MORE_ITEMS: &str = "4,Nut,7\n5,Widget,1\n";
const SKUS: &str = "item,price\nWidget,2.5\nGadget,4.0\nBolt,0.5\nNut,0.25\n";

fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write_pipeline(PIPELINE);
    sb.write_data("items.csv", ITEMS.as_bytes());
    sb.write_data("skus.csv", SKUS.as_bytes());
    sb
}

fn ok(sb: &Sandbox, what: &str, r: &Ran) {
    assert_eq!(r.code, 0, "{what}: exit code:\n{}", r.all());
    let _ = sb;
}

/// Appends rows to the incremental source: the next run has new work everywhere (a new
/// part, a new cached result, new outputs).
fn append_items(sb: &Sandbox, rows: &str) {
    let mut text = std::fs::read_to_string(sb.data("items.csv")).unwrap();
    text.push_str(rows);
    sb.write_data("items.csv", text.as_bytes());
}

fn state_dir(sb: &Sandbox) -> PathBuf {
    sb.out().join(".orchestrator")
}

/// The state as far as the next run is concerned: the step records, and every file under
/// the state folder (cached results, source parts) except the database and the lock.
#[derive(Debug, PartialEq)]
struct State {
    records: Vec<(String, StepRecord)>,
    files: BTreeMap<String, Vec<u8>>,
}

fn state(sb: &Sandbox) -> State {
    let dir = state_dir(sb);
    let records = {
        let store = orch_state::Store::open(&dir).expect("open the state");
        store.steps("faults").expect("read the step records")
    };
    let mut files = BTreeMap::new();
    collect(&dir, &dir, &mut files);
    files.retain(|k, _| k != "lock" && !k.starts_with("state.redb"));
    State { records, files }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            out.insert(rel, std::fs::read(&p).unwrap_or_default());
        }
    }
}

/// What a clean run (fresh output and state folders) writes for the sandbox's data.
fn clean_outputs(sb: &Sandbox) -> BTreeMap<String, Vec<u8>> {
    let fresh = Sandbox::new();
    fresh.write_pipeline(PIPELINE);
    for f in ["items.csv", "skus.csv"] {
        fresh.write_data(f, &std::fs::read(sb.data(f)).unwrap());
    }
    let r = fresh.run(&[]);
    assert_eq!(r.code, 0, "clean run:\n{}", r.all());
    fresh.outputs()
}

/// A failed run: exit 1, the expected text, no panic, outputs and state as before, no
/// temporary file.
fn assert_failed_cleanly(
    case: &str,
    sb: &Sandbox,
    r: &Ran,
    expect: &[&str],
    outputs: &BTreeMap<String, Vec<u8>>,
    before: &State,
) {
    assert_eq!(r.code, 1, "{case}: exit code:\n{}", r.all());
    assert_has(case, "stderr", &r.stderr, expect);
    assert_has(case, "stderr", &r.stderr, &["no output was changed"]);
    assert!(
        !r.all().contains("panicked") && !r.all().contains("internal error"),
        "{case}: {}",
        r.all()
    );
    assert_eq!(&sb.outputs(), outputs, "{case}: the outputs changed");
    assert_eq!(&state(sb), before, "{case}: the state changed");
    assert_eq!(
        sb.temp_files(),
        Vec::<PathBuf>::new(),
        "{case}: temporary files left"
    );
}

/// Recovery: the next run succeeds and writes what a clean run writes.
fn assert_recovers(case: &str, sb: &Sandbox, args: &[&str]) -> Ran {
    let r = sb.run(args);
    assert_eq!(r.code, 0, "{case}: the next run failed:\n{}", r.all());
    assert_eq!(
        sb.outputs(),
        clean_outputs(sb),
        "{case}: the next run differs from a clean run"
    );
    assert!(sb.temp_files().is_empty(), "{case}: temporary files left");
    r
}

// --- an output folder that is not writable ----------------------------------------------

/// How a folder was made unwritable; undone on drop.
enum Blocked {
    Chmod(PathBuf),
    Chattr(PathBuf),
}

impl Drop for Blocked {
    fn drop(&mut self) {
        match self {
            Blocked::Chmod(d) => set_mode(d, 0o755),
            Blocked::Chattr(d) => {
                let _ = Command::new("chattr").arg("-i").arg(&*d).status();
            }
        }
    }
}

fn set_mode(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether a file can still be created in `dir`.
fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Makes `dir` unwritable: `chmod 0555`, or, where that does not stop writes (root),
/// `chattr +i`. `None` if neither works here.
fn block(dir: &Path) -> Option<Blocked> {
    set_mode(dir, 0o555);
    let chmod = Blocked::Chmod(dir.to_path_buf());
    if !writable(dir) {
        return Some(chmod);
    }
    drop(chmod);
    let chattr = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if chattr {
        let b = Blocked::Chattr(dir.to_path_buf());
        if !writable(dir) {
            return Some(b);
        }
    }
    None
}

#[test]
fn an_output_folder_that_is_not_writable_fails_clearly_and_changes_nothing() {
    let sb = sandbox();
    ok(&sb, "good run", &sb.run(&[]));
    let (outputs, before) = (sb.outputs(), state(&sb));
    append_items(&sb, MORE_ITEMS);
    let out = sb.out().join("csv");
    let target = out.join("totals.csv").display().to_string();
    let blocked = block(&out);
    let inject = format!("eacces:{target}");
    let env: Vec<(&str, &str)> = match &blocked {
        Some(_) => Vec::new(),
        None => {
            eprintln!("note: neither chmod nor chattr stops writes here: injecting EACCES");
            vec![("ORCHESTRATOR_FAULT_INJECT", inject.as_str())]
        }
    };
    let r = sb.run_env(&env, &[]);
    let folder = format!(
        "cannot create `totals.csv` in the folder `{}`",
        out.display()
    );
    assert_failed_cleanly(
        "unwritable output folder",
        &sb,
        &r,
        &[
            "error: step `write_csv` failed",
            &folder,
            "help: the folder is not writable: check its permissions",
        ],
        &outputs,
        &before,
    );
    // The fix: make it writable again.
    drop(blocked);
    assert_recovers("unwritable output folder", &sb, &[]);
}

// --- a run that fails half-way -------------------------------------------------------------

#[test]
fn a_run_that_fails_half_way_changes_no_output_and_no_state() {
    let sb = sandbox();
    ok(&sb, "good run", &sb.run(&[]));
    let (outputs, before) = (sb.outputs(), state(&sb));
    append_items(&sb, MORE_ITEMS);
    // The CSV write goes to `out/blocked/`, but `out/blocked` is a regular file: creating the
    // folder fails (for root too). The Parquet write, run first (-j 1), succeeds and waits.
    let blocker = sb.out().join("blocked");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let mut outputs = outputs;
    outputs.insert("blocked".into(), b"not a folder".to_vec());
    let r = sb.run(&["--param", "csv_dir=blocked", "-j", "1"]);
    let named = format!("`{}` is a file, not a folder", blocker.display());
    assert_failed_cleanly(
        "half-way",
        &sb,
        &r,
        &[
            "error: step `write_csv` failed: cannot write `",
            "blocked/totals.csv`",
            &named,
            "help: move that file away, or write somewhere else",
        ],
        &outputs,
        &before,
    );
    assert_eq!(
        status_of(&r.stderr, "write_parquet"),
        "ran",
        "the other branch ran:\n{}",
        r.stderr
    );
    assert_eq!(status_of(&r.stderr, "write_csv"), "FAILED", "{}", r.stderr);
    // The fix: move the file away.
    std::fs::remove_file(&blocker).unwrap();
    let r = sb.run(&["--param", "csv_dir=blocked"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(sb.out().join("blocked/totals.csv").exists());
    std::fs::remove_dir_all(sb.out().join("blocked")).unwrap();
    assert_recovers("half-way", &sb, &[]);
}

// --- a full disk ---------------------------------------------------------------------------

#[test]
fn a_full_disk_fails_clearly_names_the_file_and_cleans_up() {
    // Every kind of file a run stages: the outputs, a cached result, a new source part.
    for (case, inject, names) in [
        (
            "the CSV output",
            "/out/csv/totals.csv",
            "/out/csv/totals.csv`",
        ),
        (
            "the Parquet output",
            "/out/totals.parquet",
            "/out/totals.parquet`",
        ),
        (
            "a cached result",
            ".orchestrator/cache/",
            "/out/.orchestrator/cache/",
        ),
        (
            "a new source part",
            ".orchestrator/sources/",
            "/out/.orchestrator/sources/",
        ),
    ] {
        let sb = sandbox();
        ok(&sb, case, &sb.run(&[]));
        let (outputs, before) = (sb.outputs(), state(&sb));
        append_items(&sb, MORE_ITEMS);
        let fault = format!("enospc:{inject}");
        let r = sb.run_env(&[("ORCHESTRATOR_FAULT_INJECT", &fault)], &[]);
        assert_failed_cleanly(
            case,
            &sb,
            &r,
            &[
                "cannot write `",
                names,
                "the disk is full: No space left on device",
                "help: the disk is full: free some space on it",
            ],
            &outputs,
            &before,
        );
        assert_recovers(case, &sb, &[]);
    }
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The same on a real, small file system (a 2 MiB tmpfs), where one can be mounted (root
/// with the right to mount); skipped otherwise. CSV and Parquet writers both hit it.
#[test]
fn a_real_full_disk_fails_clearly_and_the_run_after_freeing_space_recovers() {
    for format in ["csv", "parquet"] {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.out()).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(sb.out())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!(
                "note: cannot mount a tmpfs here (needs root and the right to mount): skipped"
            );
            return;
        }
        let _mount = Mount(sb.out());
        // Each row is written as it is read: the output is about as large as the input.
        sb.write_pipeline(&format!(
            "name: copy
steps:
  - id: rows
    type: load
    path: ${{input_dir}}/rows.csv
    schema: {{id: int64, text: string}}
  - id: write
    type: write
    input: rows
    path: ${{output_dir}}/rows.{format}
"
        ));
        sb.write_data("rows.csv", b"id,text\n1,a\n2,b\n");
        ok(&sb, format, &sb.run(&[]));
        let outputs = sb.outputs();
        // About 700 KB of rows that do not compress, with about 300 KB free.
        let mut big = String::from("id,text\n");
        let mut x: u64 = 7;
        for i in 0..10_000 {
            let mut text = String::new();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(&format!("{x:016x}"));
            }
            big.push_str(&format!("{i},{}\n", &text[..60]));
        }
        sb.write_data("rows.csv", big.as_bytes());
        let filler = sb.out().join("filler");
        let fill = free_bytes(&sb.out()).saturating_sub(300_000);
        std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
        let r = sb.run(&[]);
        let all = r.all();
        assert_eq!(r.code, 1, "{format}: exit code:\n{all}");
        let target = format!(
            "cannot write `{}`",
            sb.out().join(format!("rows.{format}")).display()
        );
        assert_has(
            format,
            "stderr",
            &r.stderr,
            &[
                &target,
                "the disk is full: No space left on device",
                "help: the disk is full: free some space on it",
                "no output was changed",
            ],
        );
        let mut now = sb.outputs();
        now.remove("filler");
        assert_eq!(now, outputs, "{format}: the previous output changed");
        assert!(sb.temp_files().is_empty(), "{format}: temporary files left");
        // Free the space: the same run now succeeds.
        std::fs::remove_file(&filler).unwrap();
        let r = sb.run(&[]);
        assert_eq!(r.code, 0, "{format}: {}", r.all());
        if format == "csv" {
            assert_eq!(
                std::fs::read(sb.out().join("rows.csv")).unwrap(),
                big.as_bytes()
            );
        }
        assert_eq!(status_of(&r.stdout, "write"), "ran", "{}", r.stdout);
    }
}

/// Free bytes on the file system of `p` (`df`).
fn free_bytes(p: &Path) -> u64 {
    let o = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

// --- the state folder ----------------------------------------------------------------------

#[test]
fn a_deleted_state_folder_is_a_fresh_start() {
    let sb = sandbox();
    ok(&sb, "first run", &sb.run(&[]));
    append_items(&sb, MORE_ITEMS);
    ok(&sb, "append run", &sb.run(&[]));
    std::fs::remove_dir_all(state_dir(&sb)).unwrap();
    append_items(&sb, "6,Bolt,9\n");
    let r = assert_recovers("deleted state folder", &sb, &[]);
    assert_has(
        "deleted state folder",
        "stdout",
        &r.stdout,
        &["note: step `items`: full read (first run)"],
    );
    // And it keeps state again: the next run is all cached.
    let r = sb.run(&[]);
    ok(&sb, "rerun", &r);
    assert_has("rerun", "stdout", &r.stdout, &["appended: 0 new rows"]);
}

#[test]
fn a_damaged_state_database_is_named_and_state_reset_recovers() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 2] = [
        ("garbage", |p| {
            std::fs::write(p, b"this is not a database").unwrap()
        }),
        ("truncated", |p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len / 2).unwrap();
        }),
    ];
    for (case, damage) in damages {
        for fix in ["state reset", "delete the folder"] {
            let case = format!("{case}, then {fix}");
            let sb = sandbox();
            ok(&sb, &case, &sb.run(&[]));
            let outputs = sb.outputs();
            let db = state_dir(&sb).join("state.redb");
            damage(&db);
            append_items(&sb, MORE_ITEMS);
            let r = sb.run(&[]);
            assert_eq!(r.code, 1, "{case}: exit code:\n{}", r.all());
            let named = format!("the state database `{}` is damaged", db.display());
            let reset = format!(
                "help: run `orchestrator state reset {}`",
                sb.path().join("p.yaml").display()
            );
            let folder = format!("or delete the folder `{}`", state_dir(&sb).display());
            assert_has(
                &case,
                "stderr",
                &r.stderr,
                &[&named, &reset, &folder, "no output was changed"],
            );
            assert_eq!(sb.outputs(), outputs, "{case}: the outputs changed");
            // `status` says the same.
            let s = sb.command(&["status"]);
            assert_eq!(s.code, 1, "{case}: {}", s.all());
            assert_has(&case, "status", &s.stderr, &[&named, "state reset"]);
            match fix {
                "state reset" => {
                    let r = sb.command(&["state", "reset"]);
                    assert_eq!(r.code, 0, "{case}: {}", r.all());
                    assert_has(
                        &case,
                        "state reset",
                        &r.stdout,
                        &[
                            "the state database was damaged: moved it to",
                            "started a new one",
                        ],
                    );
                }
                _ => std::fs::remove_dir_all(state_dir(&sb)).unwrap(),
            }
            assert_recovers(&case, &sb, &[]);
        }
    }
    // An empty (0-byte) database file is a new database: the run starts over.
    let sb = sandbox();
    ok(&sb, "empty database", &sb.run(&[]));
    std::fs::write(state_dir(&sb).join("state.redb"), b"").unwrap();
    append_items(&sb, MORE_ITEMS);
    assert_recovers("empty database", &sb, &[]);
}

/// A Parquet file of the same shape as `file` (a file the sandbox's state keeps) but other
/// content: the same pipeline run on other data.
fn same_shape_other_content(sb: &Sandbox, under: &str) -> Vec<u8> {
    let other = Sandbox::new();
    other.write_pipeline(PIPELINE);
    other.write_data(
        "items.csv",
        b"invoice_id,item,quantity\n1,Widget,40\n2,Gadget,30\n3,Bolt,20\n",
    );
    other.write_data(
        "skus.csv",
        b"item,price\nWidget,25\nGadget,40\nBolt,5\nNut,2.5\n",
    );
    ok(sb, "other data", &other.run(&[]));
    let files = state(&other).files;
    files
        .into_iter()
        .find(|(k, _)| k.starts_with(under))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no file under {under}"))
}

fn stored_file(sb: &Sandbox, under: &str) -> PathBuf {
    let files = state(sb).files;
    let rel = files
        .keys()
        .find(|k| k.starts_with(under))
        .unwrap_or_else(|| panic!("no file under {under}: {:?}", files.keys()));
    state_dir(sb).join(rel)
}

#[test]
fn a_damaged_cached_result_is_rebuilt_not_read() {
    for case in DAMAGES {
        let sb = sandbox();
        ok(&sb, case, &sb.run(&[]));
        // The join's cached result (the aggregate below keeps its own state file there too).
        let cached = state(&sb)
            .records
            .iter()
            .find(|(id, _)| id == "priced")
            .and_then(|(_, r)| r.cache_file.clone())
            .map(PathBuf::from)
            .expect("`priced` has a cached result");
        damage(&sb, &cached, case, "cache/");
        // The aggregate below keeps mergeable state, from which the output could be rebuilt
        // without reading the join: remove it, so the run needs the join's result.
        let totals_state = state(&sb)
            .records
            .iter()
            .find(|(id, _)| id == "totals")
            .and_then(|(_, r)| r.cache_file.clone());
        if let Some(f) = totals_state {
            std::fs::remove_file(f).unwrap();
        }
        // The CSV output is gone: the run must recompute it, from the cached join if it were
        // trusted.
        std::fs::remove_file(sb.out().join("csv/totals.csv")).unwrap();
        let r = assert_recovers(case, &sb, &[]);
        let warned = format!("the cached result `{}`", cached.display());
        assert_has(
            case,
            "stderr",
            &r.stderr,
            &[&warned, "computing the step again"],
        );
        assert_eq!(
            status_of(&r.stdout, "priced"),
            "ran",
            "{case}: the join was computed again:\n{}",
            r.stdout
        );
    }
}

/// Damages a stored file in place.
fn damage(sb: &Sandbox, file: &Path, case: &str, under: &str) {
    match case {
        "truncated" => {
            let len = std::fs::metadata(file).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(len / 2).unwrap();
        }
        "one byte changed" => {
            let mut bytes = std::fs::read(file).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
            std::fs::write(file, bytes).unwrap();
        }
        _ => std::fs::write(file, same_shape_other_content(sb, under)).unwrap(),
    }
}

const DAMAGES: [&str; 3] = [
    "truncated",
    "one byte changed",
    "overwritten with other data",
];

#[test]
fn a_damaged_source_part_is_read_again_in_full() {
    for case in DAMAGES {
        let sb = sandbox();
        ok(&sb, case, &sb.run(&[]));
        let part = stored_file(&sb, "sources/");
        damage(&sb, &part, case, "sources/");
        // New rows: the run reads the stored parts and the new bytes.
        append_items(&sb, MORE_ITEMS);
        let r = assert_recovers(case, &sb, &[]);
        let note = format!(
            "note: step `items`: full read (a stored part is damaged: `{}`",
            part.display()
        );
        assert_has(case, "stdout", &r.stdout, &[&note]);
        // The rebuilt part is trusted again: the next append reads only the new bytes.
        append_items(&sb, "6,Bolt,9\n");
        let r = assert_recovers(case, &sb, &[]);
        assert_has(case, "stdout", &r.stdout, &["appended: 1 new rows"]);
    }
}

//! Golden pipeline tests, in the spirit of Vector's behaviour tests: every folder under
//! `tests/golden/` holds a `pipeline.yaml`, its `input/` files, optional `params` (one
//! `name=value` per line) and `expected/` files. The harness runs the pipeline with
//! `input_dir` = the case's `input/` and `output_dir` = a temporary folder, then compares
//! every expected file with the output of the same name. Expected files are written by
//! hand from the case's inputs (each case's README says how), never copied from a run.

mod common;

use common::*;
use std::path::Path;

fn run_case(dir: &Path) -> Result<(), String> {
    let out = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "run".into(),
        dir.join("pipeline.yaml").display().to_string(),
        "--param".into(),
        format!("input_dir={}", dir.join("input").display()),
        "--param".into(),
        format!("output_dir={}", out.path().display()),
    ];
    if let Ok(text) = std::fs::read_to_string(dir.join("params")) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            args.push("--param".into());
            args.push(line.to_string());
        }
    }
    let o = bin().args(&args).output().unwrap();
    if code(&o) != 0 {
        return Err(format!("exit {}: {}", code(&o), stderr(&o)));
    }
    let expected = dir.join("expected");
    let mut n = 0;
    for entry in std::fs::read_dir(&expected).map_err(|e| e.to_string())? {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        let actual = out.path().join(path.file_name().unwrap());
        if !actual.exists() {
            return Err(format!("missing output {}", actual.display()));
        }
        let r = std::panic::catch_unwind(|| assert_csv_eq(&actual, &path));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(msg);
        }
        n += 1;
    }
    if n == 0 {
        return Err("no expected/*.csv files".into());
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let root = repo().join("tests/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("pipeline.yaml").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 5,
        "expected golden cases under {}",
        root.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = run_case(case) {
            failures.push(format!(
                "{}: {e}",
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

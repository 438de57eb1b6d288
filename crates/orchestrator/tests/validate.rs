//! `orchestrator validate`: one case per kind of mistake. Each asserts the exit code, the
//! message, the `file:line:col` location and the hint, so the error output is a contract.

mod common;

use common::*;

const LOAD: &str = "  - id: invoices
    type: load
    path: ${input_dir}/invoices.csv
    schema:
      invoice_id: int64
      account_id: int64
      date_issued: date
";

struct Case {
    name: &'static str,
    yaml: String,
    args: &'static [&'static str],
    /// Substrings that must all appear in stderr.
    expect: &'static [&'static str],
}

fn case(name: &'static str, steps: &str, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        yaml: format!("name: t\nsteps:\n{LOAD}{steps}"),
        args: &[],
        expect,
    }
}

fn check(c: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, &c.yaml).unwrap();
    let mut args = vec!["validate", path.to_str().unwrap()];
    args.extend_from_slice(c.args);
    let o = run(&args);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "case `{}`: exit code; stderr:\n{err}", c.name);
    for e in c.expect {
        assert!(
            err.contains(e),
            "case `{}`: stderr lacks `{e}`:\n{err}",
            c.name
        );
    }
    assert!(err.contains("nothing was run"), "case `{}`:\n{err}", c.name);
}

#[test]
fn each_kind_of_mistake_is_reported_with_location_and_hint() {
    let cases = vec![
        case(
            "unknown step option",
            "  - id: f\n    type: filter\n    input: invoices\n    wher: invoice_id > 1\n",
            &["unknown key `wher` in step `f`", "p.yaml:13:5", "did you mean `where`?"],
        ),
        case(
            "unknown step type",
            "  - id: f\n    type: fitler\n    input: invoices\n",
            &["unknown step type `fitler`", "p.yaml:11:11", "did you mean `filter`?"],
        ),
        case(
            "unknown input id",
            "  - id: f\n    type: filter\n    input: invoice\n    where: invoice_id > 1\n",
            &["reads the unknown input `invoice`", "p.yaml:12:12", "did you mean `invoices`?"],
        ),
        case(
            "duplicate ids",
            "  - id: invoices\n    type: filter\n    input: invoices\n    where: invoice_id > 1\n",
            &["duplicate step id `invoices`", "p.yaml:10:9", "must be unique"],
        ),
        case(
            "cycle",
            "  - id: a\n    type: filter\n    input: c\n    where: invoice_id > 1\n  - id: b\n    type: filter\n    input: a\n    where: invoice_id > 1\n  - id: c\n    type: filter\n    input: b\n    where: invoice_id > 1\n",
            &["the steps form a cycle: a -> b -> c -> a", "p.yaml:10:9"],
        ),
        case(
            "unknown column",
            "  - id: f\n    type: filter\n    input: invoices\n    where: acount_id > 1\n",
            &[
                "column `acount_id` not found",
                "valid columns are `invoice_id`, `account_id`, `date_issued`",
                "p.yaml:13:12",
                "did you mean `account_id`?",
            ],
        ),
        case(
            "unknown column in a key list",
            "  - id: s\n    type: sort\n    input: invoices\n    by: [date_isued]\n",
            &["column `date_isued` not found", "p.yaml:13:10", "did you mean `date_issued`?"],
        ),
        case(
            "wrong option type",
            "  - id: s\n    type: sort\n    input: invoices\n    by: invoice_id\n    nulls_last: maybe\n",
            &["`nulls_last` must be true or false, got `maybe`", "p.yaml:14:17"],
        ),
        case(
            "wrong option shape",
            "  - id: d\n    type: derive\n    input: invoices\n    columns: [a, b]\n",
            &["`columns` must be a mapping, got a list", "p.yaml:13:14", "one `name: value` per line"],
        ),
        case(
            "missing required option",
            "  - id: j\n    type: join\n    inputs: [invoices, invoices]\n",
            &["a join needs its keys", "left_on"],
        ),
        case(
            "wrong number of inputs",
            "  - id: j\n    type: join\n    input: invoices\n    on: invoice_id\n",
            &["a `join` step takes exactly 2 inputs, but `j` has 1"],
        ),
        case(
            "expression syntax",
            "  - id: f\n    type: filter\n    input: invoices\n    where: invoice_id >\n",
            &["`where`:", "p.yaml:13:12", "SQL syntax"],
        ),
        case(
            "unknown function",
            "  - id: d\n    type: derive\n    input: invoices\n    columns:\n      x: uper(date_issued)\n",
            &["uper", "p.yaml:14:10", "did you mean `upper`?"],
        ),
        case(
            "type error in expression",
            "  - id: f\n    type: filter\n    input: invoices\n    where: invoice_id + 1\n",
            &["`where` must be a true/false expression, got int64"],
        ),
        case(
            "unknown param",
            "  - id: f\n    type: filter\n    input: invoices\n    where: date_issued <= DATE '${as_off}'\n",
            &["unknown param `${as_off}`", "p.yaml:13:12", "declare it under `params:`"],
        ),
        case(
            "clashing join columns",
            "  - id: j\n    type: join\n    inputs: [invoices, invoices]\n    on: invoice_id\n",
            &["both join inputs have the column(s) `account_id`, `date_issued`", "suffix"],
        ),
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn params_are_checked_before_anything_runs() {
    let with_param =
        "name: t\nparams:\n  as_of: {type: date}\n  term: {type: int, default: 30}\nsteps:\n";
    let yaml = format!("{with_param}{LOAD}");
    let cases = [
        Case {
            name: "missing param value",
            yaml: yaml.clone(),
            args: &[],
            expect: &["param `as_of` has no value", "p.yaml:3:3", "--param as_of="],
        },
        Case {
            name: "ill-typed param",
            yaml: yaml.clone(),
            args: &["--param", "as_of=2021-02-30", "--param", "term=thirty"],
            expect: &[
                "param `as_of`: expected a date as yyyy-mm-dd",
                "param `term`: expected a whole number, got `thirty`",
            ],
        },
        Case {
            name: "unknown param on the command line",
            yaml: yaml.clone(),
            args: &["--param", "as_of=2021-01-01", "--param", "trem=3"],
            expect: &[
                "--param `trem` is not a param of this pipeline",
                "did you mean `term`?",
            ],
        },
        Case {
            name: "bad param declaration",
            yaml: format!("name: t\nparams:\n  x: {{type: integr}}\nsteps:\n{LOAD}"),
            args: &[],
            expect: &[
                "`type` has the unknown value `integr`",
                "p.yaml:3:13",
                "did you mean `int`?",
            ],
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn broken_files_are_refused_clearly() {
    let cases = [
        Case {
            name: "yaml syntax",
            yaml: "name: t\nsteps: [\n".into(),
            args: &[],
            expect: &["invalid YAML", "p.yaml:"],
        },
        Case {
            name: "empty",
            yaml: "".into(),
            args: &[],
            expect: &["the pipeline file is empty"],
        },
        Case {
            name: "not a mapping",
            yaml: "- a\n- b\n".into(),
            args: &[],
            expect: &["the pipeline file must be a mapping"],
        },
        Case {
            name: "no steps key",
            yaml: "name: t\n".into(),
            args: &[],
            expect: &["missing the required key `steps`"],
        },
        Case {
            name: "unknown top-level key",
            yaml: format!("name: t\nstep: []\nsteps:\n{LOAD}"),
            args: &[],
            expect: &["unknown key `step`", "did you mean `steps`?"],
        },
        Case {
            name: "duplicate key",
            yaml: format!("name: t\nname: u\nsteps:\n{LOAD}"),
            args: &[],
            expect: &["duplicate key `name`", "p.yaml:2:1"],
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn every_error_is_reported_in_one_pass() {
    let yaml = format!(
        "name: t\nsteps:\n{LOAD}  - id: a\n    type: filter\n    input: invoices\n    where: nope > 1\n  - id: b\n    type: sortt\n    input: a\n  - id: c\n    type: select\n    input: zz\n    columns: [x]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, yaml).unwrap();
    let o = run(&["validate", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2);
    assert!(err.contains("column `nope` not found"), "{err}");
    assert!(err.contains("unknown step type `sortt`"), "{err}");
    assert!(err.contains("unknown input `zz`"), "{err}");
    assert!(err.contains("3 errors found"), "{err}");
}

#[test]
fn usage_errors_exit_2_and_good_pipelines_exit_0() {
    let o = run(&["validate", "does/not/exist.yaml"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read the pipeline file"));
    let o = run(&["run", "pipelines/late_payment.yaml", "--param", "as_of"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is not NAME=VALUE"));
    let o = run(&["frobnicate"]);
    assert_eq!(code(&o), 2);
    for p in ["pipelines/late_payment.yaml", "pipelines/product_mix.yaml"] {
        let o = run(&["validate", p]);
        assert_eq!(code(&o), 0, "{p}: {}", stderr(&o));
        assert!(stdout(&o).contains(": ok:"));
    }
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let o = run(&["graph", "pipelines/product_mix.yaml"]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(out.starts_with("flowchart LR"));
    assert!(out.contains("known_items --> purchases"));
    let o = run(&["graph", "pipelines/product_mix.yaml", "--format", "dot"]);
    assert!(stdout(&o).contains("\"counted_invoices\" -> \"purchases\";"));
}

#[test]
fn a_failed_run_exits_1_and_keeps_previous_outputs() {
    let out = tempfile::tempdir().unwrap();
    let out_param = format!("output_dir={}", out.path().display());
    let ok = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-01",
        "-p",
        &out_param,
    ]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let before = std::fs::read(out.path().join("late_payment.csv")).unwrap();
    // Inputs from a folder that lacks the files: the pipeline compiles, the run fails.
    let empty = tempfile::tempdir().unwrap();
    let in_param = format!("input_dir={}", empty.path().display());
    let bad = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-02",
        "-p",
        &out_param,
        "-p",
        &in_param,
    ]);
    assert_eq!(code(&bad), 1, "{}", stderr(&bad));
    let err = stderr(&bad);
    // Sources are read side by side, but the error is the first missing file in pipeline
    // order (`invoices` is the first source read before the plan), on every run.
    assert!(
        err.contains("not found") && err.contains("/invoices.csv"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.path().join("late_payment.csv")).unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn readme_walkthrough_pipeline_runs() {
    // The README's walk-through: a new dataset and pipeline reading late_payment's output.
    let out = tempfile::tempdir().unwrap();
    let out_param = format!("output_dir={}", out.path().display());
    let o = run(&[
        "run",
        "pipelines/late_payment.yaml",
        "-p",
        "as_of=2021-03-01",
        "-p",
        &out_param,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(&["run", "examples/late_by_region.yaml", "-p", &out_param]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(out.path().join("late_by_region.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "region,accounts,late_invoices,late_amount");
    // 200 accounts spread over 4 regions by (id * 7) % 4: 50 each.
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[1..].iter().all(|l| l.split(',').nth(1) == Some("50")),
        "{text}"
    );
}

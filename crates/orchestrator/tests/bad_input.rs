//! Bad input end to end: one case per kind of bad CSV file and per data check, each run with
//! the real binary on a small sandbox. Every case first runs a good version into the same
//! output folder; a failing case must then exit with the right code and a message naming
//! the file, line, column, value and a hint, leave the previous outputs byte for byte as they
//! were, and leave no temporary file. A case that is handled (skip, quarantine, BOM, CRLF,
//! empty files...) must give the right totals. The table of behaviours is docs/bad_input.md.

#[path = "common/bad.rs"]
mod bad;
mod common;

use bad::{assert_has, Sandbox};

/// The load under test: a multi-line quoted field in row 2, so rows and lines differ (the
/// last row, which the cases break, is on line 6).
const GOOD: &str = "invoice_id,item,quantity,date_issued
1,\"Widget, large\",4,2021-01-03
2,\"Gadget
(two lines)\",3,2021-01-04
3,Bolt,2,2021-01-05
4,Nut,1,2021-01-06
";

/// `GOOD` with its last line (line 6) replaced.
fn with_last_line(line: &[u8]) -> Vec<u8> {
    let mut out = GOOD.as_bytes()[..GOOD.find("4,Nut").unwrap()].to_vec();
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

const GOOD_TOTALS: &str = "rows,quantity,first_invoice,last_day\n4,10,1,2021-01-06\n";

fn pipeline(load_options: &str, quantity: &str) -> String {
    format!(
        "name: bad_input
steps:
  - id: items
    type: load
    path: ${{input_dir}}/items.csv
{load_options}    schema:
      invoice_id: int64
      item: string
      {quantity}: int64
      date_issued: date
  - id: totals
    type: aggregate
    input: items
    aggregations:
      rows: {{count: \"*\"}}
      quantity: {{sum: {quantity}}}
      first_invoice: {{min: invoice_id}}
      last_day: {{max: date_issued}}
  - id: write
    type: write
    input: totals
    path: ${{output_dir}}/totals.csv
"
    )
}

struct Case {
    name: &'static str,
    /// `items.csv` for the second run; `None` removes it.
    data: Option<Vec<u8>>,
    /// Extra `load` options, indented by four spaces.
    options: &'static str,
    /// The name the schema declares for the quantity column.
    quantity: &'static str,
    code: i32,
    /// Text that stdout and stderr together must contain.
    expect: Vec<&'static str>,
    /// The totals a successful second run writes.
    totals: Option<&'static str>,
    /// A file (relative to the output folder) and the exact content it must have.
    file: Option<(&'static str, &'static str)>,
}

impl Case {
    fn fails(name: &'static str, data: Vec<u8>, expect: Vec<&'static str>) -> Case {
        Case {
            name,
            data: Some(data),
            options: "",
            quantity: "quantity",
            code: 1,
            expect,
            totals: None,
            file: None,
        }
    }

    fn handled(name: &'static str, data: Vec<u8>, totals: &'static str) -> Case {
        Case {
            name,
            data: Some(data),
            options: "",
            quantity: "quantity",
            code: 0,
            expect: Vec::new(),
            totals: Some(totals),
            file: None,
        }
    }
}

fn check(c: &Case) {
    let sb = Sandbox::new();
    // 1. A good run into the output folder.
    sb.write_pipeline(&pipeline("", "quantity"));
    sb.write_data("items.csv", GOOD.as_bytes());
    let good = sb.run(&[]);
    assert_eq!(
        good.code,
        0,
        "case `{}`: good run failed:\n{}",
        c.name,
        good.all()
    );
    let before = sb.outputs();
    assert_eq!(
        String::from_utf8_lossy(&before["totals.csv"]),
        GOOD_TOTALS,
        "case `{}`: good totals",
        c.name
    );
    // 2. The bad run.
    sb.write_pipeline(&pipeline(c.options, c.quantity));
    match &c.data {
        Some(d) => sb.write_data("items.csv", d),
        None => sb.remove_data("items.csv"),
    }
    let r = sb.run(&[]);
    assert_eq!(
        r.code,
        c.code,
        "case `{}`: exit code; output:\n{}",
        c.name,
        r.all()
    );
    let all = r.all();
    assert_has(c.name, "the output", &all, &c.expect);
    assert!(
        !all.contains("panicked") && !all.contains("internal error"),
        "case `{}`: {all}",
        c.name
    );
    let after = sb.outputs();
    if c.code != 0 {
        assert!(
            all.contains("no output was changed"),
            "case `{}`: {all}",
            c.name
        );
        assert_eq!(
            before, after,
            "case `{}`: a failed run changed the outputs",
            c.name
        );
    }
    if let Some(t) = c.totals {
        assert_eq!(
            String::from_utf8_lossy(&after["totals.csv"]),
            t,
            "case `{}`: totals; output:\n{all}",
            c.name
        );
    }
    if let Some((path, content)) = c.file {
        let got = after.get(path).unwrap_or_else(|| {
            panic!(
                "case `{}`: no `{path}`; outputs: {:?}",
                c.name,
                after.keys()
            )
        });
        assert_eq!(
            String::from_utf8_lossy(got),
            content,
            "case `{}`: `{path}`",
            c.name
        );
    }
    assert_eq!(
        sb.temp_files(),
        Vec::<std::path::PathBuf>::new(),
        "case `{}`: temporary files left",
        c.name
    );
}

const HINT: &str = "set `on_bad_rows: skip` (drop and count bad rows) or `on_bad_rows: quarantine`";

#[test]
fn bad_csv_rows_stop_the_run_with_file_line_column_value_and_hint() {
    let cases = vec![
        Case::fails(
            "non-number in an int64 column",
            with_last_line(b"4,Nut,four,2021-01-06"),
            vec![
                "load `items`: bad row in `",
                "items.csv` at line 6, column `quantity`: `four` is not a valid int64",
                HINT,
            ],
        ),
        Case::fails(
            "impossible date",
            with_last_line(b"4,Nut,1,2021-02-30"),
            vec![
                "items.csv` at line 6, column `date_issued`: `2021-02-30` is not a valid date",
                HINT,
            ],
        ),
        Case::fails(
            "not a date",
            with_last_line(b"4,Nut,1,06/01/2021x"),
            vec![
                "at line 6, column `date_issued`: `06/01/2021x` is not a valid date",
                HINT,
            ],
        ),
        Case::fails(
            "too many fields",
            with_last_line(b"4,Nut,1,2021-01-06,extra"),
            vec![
                "items.csv` at line 6: 5 fields where the header has 4: unexpected `extra` after the last column `date_issued`",
                HINT,
            ],
        ),
        Case::fails(
            "too few fields (a truncated last line)",
            with_last_line(b"4,Nut"),
            vec![
                "items.csv` at line 6, column `quantity`: 2 fields where the header has 4: column `quantity` is missing",
                HINT,
            ],
        ),
        Case::fails(
            "unterminated quote",
            with_last_line(b"4,\"Nut,1,2021-01-06"),
            vec![
                "items.csv` at line 6, column `item`: unterminated quote: the quoted field `\"Nut,1,2021-01-06` is never closed",
                HINT,
            ],
        ),
        Case::fails(
            "a stray quote swallows the next line",
            {
                let mut d = with_last_line(b"4,\"Nut,1,2021-01-06");
                d.extend_from_slice(b"5,Bolt,2,\"2021-01-07\"\n");
                d
            },
            vec!["items.csv` at line 6, column `quantity`: 2 fields where the header has 4", HINT],
        ),
        Case::fails(
            "a quote inside an unquoted field",
            with_last_line(b"4,Nu\"t,1,2021-01-06"),
            vec![
                "items.csv` at line 6, column `item`: a quote inside an unquoted field: `Nu\"t`",
                "quote the whole field and write its quotes twice (`\"Nu\"\"t\"`)",
            ],
        ),
        Case::fails(
            "non-UTF-8 bytes",
            with_last_line(b"4,N\xfct,1,2021-01-06"),
            vec![
                "items.csv` at line 6, column `item`: invalid UTF-8 in `N\\xFCt`",
                "save the file as UTF-8",
                "iconv",
            ],
        ),
        Case::fails(
            "several bad rows: the first is named, all are counted",
            {
                let mut d = with_last_line(b"4,Nut,x,2021-01-06");
                d.extend_from_slice(b"5,Bolt,1,2021-01-07,extra\n6,Pin,y,2021-01-08\n");
                d
            },
            vec![
                "at line 6, column `quantity`: `x` is not a valid int64 (the first of 3 bad rows)",
            ],
        ),
        Case {
            name: "missing input file",
            data: None,
            options: "",
            quantity: "quantity",
            code: 1,
            expect: vec![
                "input file `",
                "items.csv` not found",
                "help: check `path` and the `input_dir` param",
            ],
            totals: None,
            file: None,
        },
        Case {
            name: "misspelled column in the schema",
            data: Some(GOOD.as_bytes().to_vec()),
            options: "",
            quantity: "quantiy",
            code: 1,
            expect: vec![
                "column `quantiy` not found in the header of `",
                "items.csv`",
                "did you mean `quantity`?",
                "valid columns are `invoice_id`, `item`, `quantity`, `date_issued`",
            ],
            totals: None,
            file: None,
        },
        Case {
            name: "column renamed in the file",
            data: Some(GOOD.replacen("quantity", "qty", 1).into_bytes()),
            options: "",
            quantity: "quantity",
            code: 1,
            expect: vec![
                "column `quantity` not found in the header of `",
                "valid columns are `invoice_id`, `item`, `qty`, `date_issued`",
            ],
            totals: None,
            file: None,
        },
        Case {
            name: "CR alone as line break (old Mac): one long header line",
            data: Some(GOOD.replace('\n', "\r").into_bytes()),
            options: "",
            quantity: "quantity",
            code: 1,
            expect: vec![
                "items.csv` ends its lines with CR alone (old Mac line breaks)",
                "convert the line breaks to LF or CRLF",
            ],
            totals: None,
            file: None,
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn odd_but_valid_files_are_read_correctly() {
    let crlf = GOOD.replace('\n', "\r\n").into_bytes();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(GOOD.as_bytes());
    let cases = vec![
        Case::handled("byte-order mark", bom, GOOD_TOTALS),
        Case::handled("CRLF line endings", crlf, GOOD_TOTALS),
        Case::handled(
            "no line break at the end",
            GOOD.trim_end().as_bytes().to_vec(),
            GOOD_TOTALS,
        ),
        Case::handled(
            "blank lines (not rows)",
            GOOD.replace("3,Bolt", "\n3,Bolt")
                .replace("4,Nut,1,2021-01-06\n", "4,Nut,1,2021-01-06\n\n")
                .into_bytes(),
            GOOD_TOTALS,
        ),
        Case::handled(
            "empty fields are NULL",
            with_last_line(b"4,,,2021-01-06"),
            "rows,quantity,first_invoice,last_day\n4,9,1,2021-01-06\n",
        ),
        Case::handled(
            "header only: 0 rows",
            b"invoice_id,item,quantity,date_issued\n".to_vec(),
            "rows,quantity,first_invoice,last_day\n0,0,,\n",
        ),
        Case {
            expect: vec!["is empty (0 bytes): read as 0 rows"],
            ..Case::handled(
                "empty file (0 bytes): 0 rows",
                Vec::new(),
                "rows,quantity,first_invoice,last_day\n0,0,,\n",
            )
        },
        Case {
            expect: vec![
                "has no header line (only blank lines or a byte-order mark): read as 0 rows",
            ],
            ..Case::handled(
                "only a blank line: 0 rows",
                b"\n".to_vec(),
                "rows,quantity,first_invoice,last_day\n0,0,,\n",
            )
        },
        Case {
            expect: vec![
                "has no header line (only blank lines or a byte-order mark): read as 0 rows",
            ],
            ..Case::handled(
                "only a byte-order mark: 0 rows",
                b"\xEF\xBB\xBF".to_vec(),
                "rows,quantity,first_invoice,last_day\n0,0,,\n",
            )
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn skip_and_quarantine_set_bad_rows_aside_and_report_them() {
    let bad = {
        let mut d = with_last_line(b"4,Nut,four,2021-01-06");
        d.extend_from_slice(b"5,Bolt,1,2021-01-07,extra\n6,Pin,2,2021-01-08\n");
        d
    };
    // Rows 1, 2, 3 and 6 are good: 4 rows, quantity 4 + 3 + 2 + 2.
    let totals = "rows,quantity,first_invoice,last_day\n4,11,1,2021-01-08\n";
    let cases = vec![
        Case {
            options: "    on_bad_rows: skip\n",
            expect: vec![
                "warning: step `items`: skipped 2 bad rows of `",
                "items.csv` (first: line 6, column `quantity`: `four` is not a valid int64)",
            ],
            ..Case::handled("skip", bad.clone(), totals)
        },
        Case {
            options: "    on_bad_rows: quarantine\n",
            expect: vec![
                "warning: step `items`: quarantined 2 bad rows of `",
                "quarantine/items.csv` (first: line 6, column `quantity`",
            ],
            file: Some((
                "quarantine/items.csv",
                "line,column,value,reason,row
6,quantity,four,`four` is not a valid int64,\"4,Nut,four,2021-01-06\"
7,,extra,5 fields where the header has 4: unexpected `extra` after the last column `date_issued`,\"5,Bolt,1,2021-01-07,extra\"
",
            )),
            ..Case::handled("quarantine", bad.clone(), totals)
        },
        Case {
            options: "    on_bad_rows: quarantine\n    quarantine_path: ${output_dir}/rejected/items_rejected.csv\n",
            file: Some((
                "rejected/items_rejected.csv",
                "line,column,value,reason,row\n6,quantity,four,`four` is not a valid int64,\"4,Nut,four,2021-01-06\"\n",
            )),
            ..Case::handled(
                "quarantine to a chosen path",
                with_last_line(b"4,Nut,four,2021-01-06"),
                "rows,quantity,first_invoice,last_day\n3,9,1,2021-01-05\n",
            )
        },
        Case {
            options: "    on_bad_rows: skip\n",
            expect: vec![
                "skipped 2 bad rows of `",
                "(first: line 6, column `quantity`: `four` is not a valid int64)",
            ],
            ..Case::handled(
                "skip a record whose quote closes on a later line",
                {
                    let mut d = with_last_line(b"4,Nut,four,2021-01-06");
                    d.extend_from_slice(b"5,\"Bolt,1,2021-01-07\n6,Pin,2,\"2021-01-08\"x,1,2021-01-08\n7,Cog,3,2021-01-09\n");
                    d
                },
                "rows,quantity,first_invoice,last_day\n4,12,1,2021-01-09\n",
            )
        },
        Case {
            options: "    on_bad_rows: quarantine\n",
            file: Some(("quarantine/items.csv", "line,column,value,reason,row\n")),
            ..Case::handled("quarantine with nothing bad", GOOD.as_bytes().to_vec(), GOOD_TOTALS)
        },
        Case {
            options: "    on_bad_rows: skip\n",
            expect: vec!["skipped 1 bad row of `", "line 6, column `item`: invalid UTF-8"],
            ..Case::handled(
                "skip non-UTF-8",
                with_last_line(b"4,N\xfct,1,2021-01-06"),
                "rows,quantity,first_invoice,last_day\n3,9,1,2021-01-05\n",
            )
        },
        Case {
            options: "    on_bad_rows: skip\n",
            expect: vec!["skipped 1 bad row of `", "line 6, column `item`: unterminated quote"],
            ..Case::handled(
                "skip an unterminated quote: reading resumes on the next line",
                {
                    let mut d = with_last_line(b"4,\"Nut,1,2021-01-06");
                    d.extend_from_slice(b"5,Bolt,5,2021-01-07\n");
                    d
                },
                "rows,quantity,first_invoice,last_day\n4,14,1,2021-01-07\n",
            )
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn bad_row_options_are_checked_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write_data("items.csv", GOOD.as_bytes());
    for (options, expect) in [
        (
            "    on_bad_rows: skipp\n",
            vec![
                "`on_bad_rows` has the unknown value `skipp`",
                "did you mean `skip`?",
            ],
        ),
        (
            "    quarantine_path: x.csv\n",
            vec!["`quarantine_path` is only used with `on_bad_rows: quarantine`"],
        ),
    ] {
        sb.write_pipeline(&pipeline(options, "quantity"));
        let r = sb.run(&[]);
        assert_eq!(r.code, 2, "{options}: {}", r.all());
        assert_has(options, "stderr", &r.stderr, &expect);
    }
}

// --- data checks ------------------------------------------------------------------------------

const SKUS: &str = "item,price\nWidget,2.5\nGadget,4.0\nBolt,0.5\nNut,0.25\n";
const CHECK_GOOD: &str = "invoice_id,item,quantity\n1,Widget,4\n2,Gadget,3\n3,Bolt,2\n4,Nut,1\n";

fn check_pipeline(check: &str, severity: &str) -> String {
    format!(
        "name: checks
steps:
  - id: items
    type: load
    path: ${{input_dir}}/items.csv
    schema: {{invoice_id: int64, item: string, quantity: int64}}
  - id: skus
    type: load
    path: ${{input_dir}}/skus.csv
    schema: {{item: string, price: float64}}
  - id: checked
    type: check
    inputs: [items, skus]
    checks:
      - {{relationships: {{column: item, to: skus, field: item}}, severity: warn}}
      - {check}
        severity: {severity}
  - id: totals
    type: aggregate
    input: checked
    aggregations:
      rows: {{count: \"*\"}}
      quantity: {{sum: quantity}}
  - id: write
    type: write
    input: totals
    path: ${{output_dir}}/totals.csv
"
    )
}

struct CheckCase {
    name: &'static str,
    /// The check (one YAML list item, without its `severity`).
    check: &'static str,
    /// items.csv that violates it (skus.csv for `relationships`).
    items: String,
    skus: &'static str,
    expect: &'static [&'static str],
}

#[test]
fn each_failing_check_stops_the_run_or_warns() {
    let cases = vec![
        CheckCase {
            name: "not_null",
            check: "not_null: [invoice_id, quantity]",
            items: format!("{CHECK_GOOD},Nut,1\n"),
            skus: SKUS,
            expect: &[
                "check `not_null(invoice_id, quantity)` failed: 1 row with NULL in `invoice_id` or `quantity`; first: (invoice_id=NULL, quantity=1, item=Nut)",
            ],
        },
        CheckCase {
            name: "unique",
            check: "unique: invoice_id",
            items: format!("{CHECK_GOOD}4,Bolt,2\n"),
            skus: SKUS,
            expect: &[
                "check `unique(invoice_id)` failed: 2 rows whose `invoice_id` is not unique; first: (invoice_id=4, item=Nut, quantity=1), (invoice_id=4, item=Bolt, quantity=2)",
            ],
        },
        CheckCase {
            name: "accepted_values",
            check: "accepted_values: {column: quantity, values: [1, 2, 3, 4]}",
            items: format!("{CHECK_GOOD}5,Nut,12\n"),
            skus: SKUS,
            expect: &[
                "check `accepted_values(quantity)` failed: 1 row whose `quantity` is not one of [1, 2, 3, 4]; first: (quantity=12, invoice_id=5, item=Nut)",
            ],
        },
        CheckCase {
            name: "row_count",
            check: "row_count: {min: 1, max: 4}",
            items: format!("{CHECK_GOOD}5,Nut,1\n"),
            skus: SKUS,
            expect: &["check `row_count` failed: `items` has 5 rows; expected between 1 and 4"],
        },
        CheckCase {
            name: "row_count on an empty extract",
            check: "row_count: {min: 1}",
            items: "invoice_id,item,quantity\n".into(),
            skus: SKUS,
            expect: &[
                "check `row_count` failed: `items` has 0 rows; expected at least 1: the source file `",
                "items.csv` has no data rows (only a header line)",
            ],
        },
        CheckCase {
            name: "expression",
            check: "expression: \"quantity >= 0\"\n        name: non_negative_quantity",
            items: format!("{CHECK_GOOD}5,Nut,-2\n"),
            skus: SKUS,
            expect: &[
                "check `non_negative_quantity` failed: 1 row where `(quantity >= 0)` is false; first: (quantity=-2, invoice_id=5, item=Nut)",
            ],
        },
        CheckCase {
            name: "relationships",
            check: "relationships: {column: item, to: skus}",
            items: format!("{CHECK_GOOD}5,Pin,1\n"),
            skus: SKUS,
            expect: &[
                "check `relationships(item -> skus.item)` failed: 1 row whose `item` is not in `skus.item`; first: (item=Pin, invoice_id=5, quantity=1)",
            ],
        },
    ];
    for c in &cases {
        for severity in ["error", "warn"] {
            let name = format!("{} ({severity})", c.name);
            let sb = Sandbox::new();
            // The first relationships check always passes: it only makes `skus` an input.
            // The good run never violates the case's check.
            sb.write_pipeline(&check_pipeline(c.check, "error"));
            sb.write_data("items.csv", CHECK_GOOD.as_bytes());
            sb.write_data("skus.csv", SKUS.as_bytes());
            let good = sb.run(&[]);
            assert_eq!(good.code, 0, "{name}: good run:\n{}", good.all());
            let before = sb.outputs();
            sb.write_pipeline(&check_pipeline(c.check, severity));
            sb.write_data("items.csv", c.items.as_bytes());
            sb.write_data("skus.csv", c.skus.as_bytes());
            let r = sb.run(&[]);
            let all = r.all();
            if severity == "error" {
                assert_eq!(r.code, 1, "{name}: exit code:\n{all}");
                assert_has(&name, "stderr", &r.stderr, c.expect);
                assert_has(
                    &name,
                    "stderr",
                    &r.stderr,
                    &[
                        "error: step `checked` failed: check step `checked`:",
                        "help: fix the data",
                        "`severity: warn`",
                        "no output was changed",
                    ],
                );
                assert_eq!(
                    before,
                    sb.outputs(),
                    "{name}: a failed check changed the outputs"
                );
            } else {
                assert_eq!(r.code, 0, "{name}: exit code:\n{all}");
                let expect: Vec<String> = c
                    .expect
                    .iter()
                    .enumerate()
                    .map(|(i, e)| match i {
                        0 => format!("warning: step `checked`: {e}"),
                        _ => e.to_string(),
                    })
                    .collect();
                let expect: Vec<&str> = expect.iter().map(|s| s.as_str()).collect();
                assert_has(&name, "stdout", &r.stdout, &expect);
                assert_ne!(
                    before,
                    sb.outputs(),
                    "{name}: a warning must not stop the run"
                );
            }
            assert!(sb.temp_files().is_empty(), "{name}: temporary files left");
        }
    }
}

#[test]
fn check_definitions_are_checked_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write_data("items.csv", CHECK_GOOD.as_bytes());
    sb.write_data("skus.csv", SKUS.as_bytes());
    let cases: &[(&str, &[&str])] = &[
        (
            "not_null: [invoce_id]",
            &["column `invoce_id` not found in the input `items`", "did you mean `invoice_id`?"],
        ),
        (
            "uniqe: invoice_id",
            &["unknown key `uniqe` in check 2 of step `checked`", "did you mean `unique`?"],
        ),
        (
            "accepted_values: {column: quantity, values: [1, many]}",
            &["accepted value `many` of `quantity` is not a whole number, but the column is int64"],
        ),
        (
            "expression: quantity + 1",
            &["`expression` must be a true/false expression, got int64"],
        ),
        (
            "relationships: {column: item, to: sku}",
            &["`to: sku` is not an input of step `checked`", "did you mean `skus`?"],
        ),
        (
            "relationships: {column: quantity, to: skus, field: item}",
            &["`quantity` is int64 but `skus.item` is string: they cannot be compared"],
        ),
        (
            "row_count: {min: 5, max: 2}",
            &["`row_count`: `min` (5) is larger than `max` (2)"],
        ),
    ];
    for (check, expect) in cases {
        sb.write_pipeline(&check_pipeline(check, "error"));
        let r = sb.run(&[]);
        assert_eq!(r.code, 2, "{check}: {}", r.all());
        assert_has(check, "stderr", &r.stderr, expect);
        assert!(
            r.stderr.contains("nothing was run"),
            "{check}: {}",
            r.stderr
        );
    }
    let _ = common::repo();
}

#[test]
fn quarantine_files_are_committed_only_when_the_run_succeeds() {
    let sb = Sandbox::new();
    // A quarantining load, then a check that fails when quantities reach 10.
    let pipeline = |max: i64| {
        format!(
            "name: q
steps:
  - id: items
    type: load
    path: ${{input_dir}}/items.csv
    on_bad_rows: quarantine
    schema: {{invoice_id: int64, item: string, quantity: int64}}
  - id: checked
    type: check
    inputs: [items]
    checks:
      - {{expression: \"quantity < {max}\"}}
  - id: write
    type: write
    input: checked
    path: ${{output_dir}}/items.csv
"
        )
    };
    sb.write_pipeline(&pipeline(10));
    sb.write_data("items.csv", format!("{CHECK_GOOD}5,Nut,four\n").as_bytes());
    let r = sb.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_has(
        "first run",
        "stdout",
        &r.stdout,
        &["wrote ", "quarantine/items.csv"],
    );
    let before = sb.outputs();
    let first = String::from_utf8_lossy(&before["quarantine/items.csv"]).into_owned();
    assert!(first.contains("6,quantity,four"), "{first}");
    // Other bad rows, and a row that fails the check: the run stops after the load ran.
    sb.write_data(
        "items.csv",
        format!("{CHECK_GOOD}6,Pin,five\n7,Cog,12\n").as_bytes(),
    );
    let r = sb.run(&[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_has(
        "failing check",
        "stderr",
        &r.stderr,
        &["check `(quantity < 10)` failed", "no output was changed"],
    );
    assert_eq!(
        sb.outputs(),
        before,
        "the quarantine file of the failed run was committed"
    );
    assert!(sb.temp_files().is_empty(), "temporary files left");
    // The next good run replaces it.
    sb.write_pipeline(&pipeline(100));
    let r = sb.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let q = String::from_utf8_lossy(&sb.outputs()["quarantine/items.csv"]).into_owned();
    assert!(q.contains("6,quantity,five") && !q.contains("four"), "{q}");
}

#[test]
fn row_count_on_an_empty_extract_names_the_file() {
    // The load is read through pass-through steps; a filter that removes every row of a
    // file that has rows must not be blamed on the file.
    let pipeline = |filter: &str| {
        format!(
            "name: rc
steps:
  - id: items
    type: load
    path: ${{input_dir}}/items.csv
    schema: {{invoice_id: int64, item: string, quantity: int64}}
  - id: kept
    type: filter
    input: items
    where: {filter}
  - id: trimmed
    type: select
    input: kept
    columns: [invoice_id, quantity]
  - id: totals
    type: aggregate
    input: trimmed
    group_by: invoice_id
    aggregations:
      quantity: {{sum: quantity}}
    checks:
      - {{row_count: {{min: 1}}}}
  - id: write
    type: write
    input: totals
    path: ${{output_dir}}/totals.csv
"
        )
    };
    for (case, data, filter, expect, not) in [
        (
            "header only",
            "invoice_id,item,quantity\r\n\r\n",
            "quantity > 0",
            "has no data rows (only a header line)",
            "",
        ),
        (
            "0 bytes",
            "",
            "quantity > 0",
            "has no data rows (the file is empty, 0 bytes)",
            "",
        ),
        (
            "rows, all filtered out",
            CHECK_GOOD,
            "quantity > 100",
            "`totals` has 0 rows; expected at least 1",
            "no data rows",
        ),
    ] {
        let sb = Sandbox::new();
        sb.write_pipeline(&pipeline(filter));
        sb.write_data("items.csv", data.as_bytes());
        let r = sb.run(&[]);
        assert_eq!(r.code, 1, "{case}: {}", r.all());
        let file = format!(
            "the source file `{}` {expect}",
            sb.data("items.csv").display()
        );
        let expected = if not.is_empty() {
            file.as_str()
        } else {
            expect
        };
        assert_has(
            case,
            "stderr",
            &r.stderr,
            &[
                "error: step `totals.checks` failed: step `totals`: check `row_count` failed: `totals` has 0 rows; expected at least 1",
                expected,
            ],
        );
        if !not.is_empty() {
            assert!(!r.stderr.contains(not), "{case}: {}", r.stderr);
        }
        assert!(sb.outputs().is_empty(), "{case}: nothing is written");
    }
}

// --- `checks:` on any step ------------------------------------------------------------------

fn checks_pipeline(load_checks: &str, totals_checks: &str, write_checks: &str) -> String {
    format!(
        "name: sections
steps:
  - id: items
    type: load
    path: ${{input_dir}}/items.csv
    schema: {{invoice_id: int64, item: string, quantity: int64}}
{load_checks}  - id: skus
    type: load
    path: ${{input_dir}}/skus.csv
    schema: {{item: string, price: float64}}
  - id: totals
    type: aggregate
    input: items
    group_by: item
    aggregations:
      quantity: {{sum: quantity}}
{totals_checks}  - id: ordered
    type: sort
    input: totals
    by: item
  - id: write
    type: write
    input: ordered
    path: ${{output_dir}}/totals.csv
{write_checks}"
    )
}

const SECTION_TOTALS: &str = "item,quantity\nBolt,2\nGadget,3\nNut,1\nWidget,4\n";

#[test]
fn checks_sections_on_any_step_pass_stop_or_warn() {
    let load_checks = "    checks:
      - {not_null: [invoice_id]}
      - {unique: invoice_id}
      - {relationships: {column: item, to: skus}}
";
    let totals_checks = "    checks:
      - {expression: \"quantity > 0\", name: positive}
";
    let write_checks = "    checks:
      - {row_count: {min: 1, max: 10}}
      - {accepted_values: {column: item, values: [Bolt, Gadget, Nut, Widget]}}
";
    let sb = Sandbox::new();
    sb.write_pipeline(&checks_pipeline(load_checks, totals_checks, write_checks));
    sb.write_data("items.csv", CHECK_GOOD.as_bytes());
    sb.write_data("skus.csv", SKUS.as_bytes());
    // 1. Passing: every section runs as an implicit `<step>.checks` step.
    let r = sb.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        String::from_utf8_lossy(&sb.outputs()["totals.csv"]),
        SECTION_TOTALS
    );
    for step in ["items.checks", "totals.checks", "write.checks"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(step)
                    && l.split_whitespace().nth(2) == Some("ran")),
            "`{step}` ran:\n{}",
            r.stdout
        );
    }
    let before = sb.outputs();

    // 2. A failing `error` check on the load stops the run before anything is written.
    sb.write_data("items.csv", format!("{CHECK_GOOD}4,Pin,1\n").as_bytes());
    let r = sb.run(&[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_has(
        "load section",
        "stderr",
        &r.stderr,
        &[
            "error: step `items.checks` failed: step `items`: 2 checks failed:",
            "- `unique(invoice_id)`: 2 rows whose `invoice_id` is not unique",
            "- `relationships(item -> skus.item)`: 1 row whose `item` is not in `skus.item`; first: (item=Pin",
            "help: fix the data",
            "no output was changed",
        ],
    );
    assert_eq!(sb.outputs(), before, "a failed check changed the outputs");

    // 3. On a write step the check runs on what it would write, before writing it.
    sb.write_data("items.csv", format!("{CHECK_GOOD}5,Cog,1\n").as_bytes());
    sb.write_data("skus.csv", format!("{SKUS}Cog,1.0\n").as_bytes());
    let r = sb.run(&[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_has(
        "write section",
        "stderr",
        &r.stderr,
        &["error: step `write.checks` failed: step `write`: check `accepted_values(item)` failed: 1 row whose `item` is not one of [Bolt, Gadget, Nut, Widget]; first: (item=Cog, quantity=1)"],
    );
    assert_eq!(sb.outputs(), before, "the write wrote despite its check");

    // 4. A `warn` check is reported and the run goes on.
    sb.write_pipeline(&checks_pipeline(
        load_checks,
        "    checks:\n      - {expression: \"quantity > 3\", name: big, severity: warn}\n",
        "",
    ));
    sb.write_data("items.csv", CHECK_GOOD.as_bytes());
    sb.write_data("skus.csv", SKUS.as_bytes());
    let r = sb.run(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_has(
        "warn section",
        "stdout",
        &r.stdout,
        &["warning: step `totals.checks`: check `big` failed: 3 rows where `(quantity > 3)` is false; first: (quantity="],
    );
    assert_eq!(
        String::from_utf8_lossy(&sb.outputs()["totals.csv"]),
        SECTION_TOTALS
    );
    assert!(sb.temp_files().is_empty(), "temporary files left");
}

#[test]
fn checks_sections_are_checked_before_anything_runs() {
    let sb = Sandbox::new();
    sb.write_data("items.csv", CHECK_GOOD.as_bytes());
    sb.write_data("skus.csv", SKUS.as_bytes());
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "    checks:\n      - {not_null: [invoce_id]}\n",
            "",
            "",
            &[
                "error: column `invoce_id` not found in the output of step `items`",
                "p.yaml:8:21",
                "did you mean `invoice_id`?",
                "valid columns are `invoice_id`, `item`, `quantity`",
            ],
        ),
        (
            "",
            "    checks:\n      - {unique: [itme]}\n",
            "",
            &[
                "column `itme` not found in the output of step `totals`",
                "did you mean `item`?",
            ],
        ),
        (
            "",
            "",
            "    checks:\n      - {accepted_values: {column: quantty, values: [1]}}\n",
            &[
                "column `quantty` not found in the input of step `write`",
                "did you mean `quantity`?",
            ],
        ),
        (
            "    checks:\n      - {relationships: {column: item, to: skuz}}\n",
            "",
            "",
            &[
                "`to: skuz` in the `checks` of step `items` is not a step",
                "did you mean `skus`?",
            ],
        ),
        (
            "    checks:\n      - {uniqe: invoice_id}\n",
            "",
            "",
            &[
                "unknown key `uniqe` in check 1 in the `checks` of step `items`",
                "did you mean `unique`?",
            ],
        ),
        (
            "    check:\n      - {unique: invoice_id}\n",
            "",
            "",
            &[
                "unknown key `check` in step `items`",
                "did you mean `checks`?",
            ],
        ),
    ];
    for (load, totals, write, expect) in cases {
        let case = format!("{load}{totals}{write}");
        sb.write_pipeline(&checks_pipeline(load, totals, write));
        let r = sb.run(&[]);
        assert_eq!(r.code, 2, "{case}: {}", r.all());
        assert_has(&case, "stderr", &r.stderr, expect);
        assert!(r.stderr.contains("nothing was run"), "{case}: {}", r.stderr);
        assert!(sb.outputs().is_empty(), "{case}: something was written");
    }
}

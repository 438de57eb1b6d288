//! Unit tests for each step type on tiny hand-made frames: decode the YAML options, check
//! the schema, run the polars plan, compare with hand-computed results.

use orch_spec::{
    model::COMMON_STEP_KEYS, yaml, Ctx, DataType, Diagnostics, Fields, Params, Schema, StepDecl,
};
use orch_steps::{registry, Step};
use polars::prelude::*;

/// Decodes one step from YAML (as it would appear in a pipeline's `steps:` list).
fn decode(text: &str) -> Result<Box<dyn Step>, Vec<String>> {
    let node = yaml::parse(text).map_err(|d| vec![d.message])?;
    let mut diags = Diagnostics::new();
    let decl = orch_spec::PipelineDecl::from_yaml(
        &yaml::parse(&format!("name: t\nsteps:\n{}", indent(text))).unwrap(),
        &mut diags,
    )
    .ok_or_else(|| {
        diags
            .items()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
    })?;
    let s: &StepDecl = &decl.steps[0];
    let params = Params::default();
    let mut ctx = Ctx::new(&params);
    let ty = registry::lookup(&s.ty).expect("step type");
    let mut f = Fields::new(&node, "step", &mut ctx).unwrap();
    for k in COMMON_STEP_KEYS {
        f.take(k);
    }
    let step = (ty.decode)(s, &mut f, &mut ctx);
    f.finish(&mut ctx);
    if ctx.diags.has_errors() {
        return Err(ctx.diags.items().iter().map(|d| d.to_string()).collect());
    }
    Ok(step.expect("decoded"))
}

fn indent(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(if i == 0 { "  - " } else { "    " });
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn schema_of(df: &DataFrame) -> Schema {
    df.schema()
        .iter()
        .map(|(n, t)| (n.to_string(), orch_expr::from_polars_dtype(t).unwrap()))
        .collect()
}

/// Checks the schema, runs the step, and checks the result matches the declared schema.
fn run(step: &dyn Step, inputs: Vec<DataFrame>) -> DataFrame {
    let schemas: Vec<Schema> = inputs.iter().map(schema_of).collect();
    let refs: Vec<&Schema> = schemas.iter().collect();
    let mut diags = Diagnostics::new();
    let out_schema = step
        .schema(&refs, &mut diags)
        .unwrap_or_else(|| panic!("schema: {:?}", diags.items()));
    let lfs = inputs.into_iter().map(|d| d.lazy()).collect();
    let df = step.to_polars(lfs, &refs).unwrap().collect().unwrap();
    assert_eq!(
        schema_of(&df),
        out_schema,
        "runtime schema differs from the checked schema"
    );
    df
}

fn schema_errors(step: &dyn Step, inputs: Vec<DataFrame>) -> Vec<String> {
    let schemas: Vec<Schema> = inputs.iter().map(schema_of).collect();
    let refs: Vec<&Schema> = schemas.iter().collect();
    let mut diags = Diagnostics::new();
    assert!(
        step.schema(&refs, &mut diags).is_none(),
        "expected a schema error"
    );
    diags.items().iter().map(|d| d.to_string()).collect()
}

fn i64s(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
    df.column(c).unwrap().i64().unwrap().iter().collect()
}

fn f64s(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    df.column(c).unwrap().f64().unwrap().iter().collect()
}

fn strs(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(String::from))
        .collect()
}

fn names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn sorted_by(df: DataFrame, c: &str) -> DataFrame {
    df.sort([c], SortMultipleOptions::default()).unwrap()
}

fn left() -> DataFrame {
    df!("id" => [1i64, 2, 3, 4], "name" => ["a", "b", "c", "d"]).unwrap()
}

fn right() -> DataFrame {
    df!("id" => [2i64, 3, 3, 5], "score" => [20.0f64, 30.0, 31.0, 50.0]).unwrap()
}

#[test]
fn join_inner_left_full_semi_anti() {
    let inner = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\non: id").unwrap(),
        vec![left(), right()],
    );
    let inner = sorted_by(inner, "score");
    assert_eq!(names(&inner), ["id", "name", "score"]);
    assert_eq!(i64s(&inner, "id"), [Some(2), Some(3), Some(3)]);

    let l = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\nhow: left\non: id").unwrap(),
        vec![left(), right()],
    );
    assert_eq!(l.height(), 5, "1, 2, 3 (twice), 4");
    let l = sorted_by(l, "id");
    assert_eq!(f64s(&l, "score")[0], None);

    let full = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\nhow: full\non: id").unwrap(),
        vec![left(), right()],
    );
    let full = sorted_by(full, "id");
    assert_eq!(
        i64s(&full, "id"),
        [Some(1), Some(2), Some(3), Some(3), Some(4), Some(5)],
        "keys coalesced"
    );
    assert_eq!(strs(&full, "name")[5], None);

    let semi = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\nhow: semi\non: id").unwrap(),
        vec![left(), right()],
    );
    assert_eq!(names(&semi), ["id", "name"]);
    assert_eq!(sorted_by(semi, "id").height(), 2, "2 and 3, once each");

    let anti = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\nhow: anti\non: id").unwrap(),
        vec![left(), right()],
    );
    assert_eq!(i64s(&sorted_by(anti, "id"), "id"), [Some(1), Some(4)]);
}

#[test]
fn join_right_keeps_documented_column_order() {
    let r = run(
        &*decode("id: j\ntype: join\ninputs: [l, r]\nhow: right\non: id").unwrap(),
        vec![left(), right()],
    );
    assert_eq!(names(&r), ["id", "name", "score"]);
    assert_eq!(
        i64s(&sorted_by(r, "id"), "id"),
        [Some(2), Some(3), Some(3), Some(5)]
    );
}

#[test]
fn join_with_different_key_names_and_clash_rule() {
    let r2 = df!("acct" => [1i64, 4], "name" => ["x", "y"]).unwrap();
    let step = decode("id: j\ntype: join\ninputs: [l, r]\nleft_on: id\nright_on: acct").unwrap();
    let errs = schema_errors(&*step, vec![left(), r2.clone()]);
    assert!(
        errs[0].contains("both join inputs have the column(s) `name`"),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("suffix"),
        "the hint names the fix: {errs:?}"
    );

    let step = decode("id: j\ntype: join\ninputs: [l, r]\nleft_on: id\nright_on: acct\nsuffix: _r")
        .unwrap();
    let out = sorted_by(run(&*step, vec![left(), r2]), "id");
    assert_eq!(names(&out), ["id", "name", "name_r"]);
    assert_eq!(strs(&out, "name_r"), [Some("x".into()), Some("y".into())]);
}

#[test]
fn join_reports_missing_keys_and_type_mismatch() {
    let step = decode("id: j\ntype: join\ninputs: [l, r]\non: idd").unwrap();
    let errs = schema_errors(&*step, vec![left(), right()]);
    assert!(errs[0].contains("column `idd` not found"), "{errs:?}");
    assert!(errs[0].contains("did you mean `id`?"), "{errs:?}");
    let r = df!("id" => ["2"], "x" => [1i64]).unwrap();
    let step = decode("id: j\ntype: join\ninputs: [l, r]\non: id").unwrap();
    let errs = schema_errors(&*step, vec![left(), r]);
    assert!(errs[0].contains("incompatible types"), "{errs:?}");
    // int64 against float64 would fail only when the run reached the join (polars does not
    // cast join keys): refused up front, with the cast to write.
    let l = df!("id" => [1i64], "name" => ["a"]).unwrap();
    let r = df!("id" => [1.0f64], "x" => [1i64]).unwrap();
    let errs = schema_errors(&*step, vec![l, r]);
    assert!(
        errs[0].contains("`id` (int64) and `id` (float64)"),
        "{errs:?}"
    );
    assert!(errs[0].contains("CAST(id AS float64)"), "{errs:?}");
}

#[test]
fn join_multi_key() {
    let a = df!("k1" => [1i64, 1, 2], "k2" => ["x", "y", "x"], "v" => [1i64, 2, 3]).unwrap();
    let b = df!("k1" => [1i64, 2, 2], "k2" => ["y", "x", "y"], "w" => [10i64, 20, 30]).unwrap();
    let out = run(
        &*decode("id: j\ntype: join\ninputs: [a, b]\non: [k1, k2]").unwrap(),
        vec![a, b],
    );
    let out = sorted_by(out, "v");
    assert_eq!(i64s(&out, "v"), [Some(2), Some(3)]);
    assert_eq!(i64s(&out, "w"), [Some(10), Some(20)]);
}

fn sales() -> DataFrame {
    df!(
        "acct" => [1i64, 1, 1, 2, 2, 3],
        "item" => [Some("b"), Some("a"), Some("b"), None, Some("c"), Some("a")],
        "qty" => [Some(2i64), Some(3), None, Some(1), Some(4), Some(5)],
        "price" => [1.5f64, 2.0, 9.0, 1.0, 0.25, 2.0]
    )
    .unwrap()
}

#[test]
fn aggregate_every_function() {
    let step = decode(
        "id: a\ntype: aggregate\ninput: s\ngroup_by: acct\naggregations:\n  n: {count: \"*\"}\n  n_qty: {count: qty}\n  n_items: {count_distinct: item}\n  qty: {sum: qty}\n  amount: {sum: qty * price}\n  avg_price: {mean: price}\n  min_item: {min: item}\n  max_qty: {max: qty}\n  first_price: {first: price}\n  items: {sorted_distinct_list: item}",
    )
    .unwrap();
    let out = sorted_by(run(&*step, vec![sales()]), "acct");
    assert_eq!(
        names(&out),
        [
            "acct",
            "n",
            "n_qty",
            "n_items",
            "qty",
            "amount",
            "avg_price",
            "min_item",
            "max_qty",
            "first_price",
            "items"
        ]
    );
    assert_eq!(i64s(&out, "n"), [Some(3), Some(2), Some(1)]);
    assert_eq!(
        i64s(&out, "n_qty"),
        [Some(2), Some(2), Some(1)],
        "NULL quantities are not counted"
    );
    assert_eq!(
        i64s(&out, "n_items"),
        [Some(2), Some(1), Some(1)],
        "NULL items are not distinct values"
    );
    assert_eq!(i64s(&out, "qty"), [Some(5), Some(5), Some(5)]);
    // acct 1: 2*1.5 + 3*2.0 + NULL = 9.0; acct 2: 1*1.0 + 4*0.25 = 2.0; acct 3: 10.0
    assert_eq!(f64s(&out, "amount"), [Some(9.0), Some(2.0), Some(10.0)]);
    assert_eq!(
        f64s(&out, "avg_price"),
        [Some(12.5 / 3.0), Some(0.625), Some(2.0)]
    );
    assert_eq!(
        strs(&out, "min_item"),
        [Some("a".into()), Some("c".into()), Some("a".into())]
    );
    assert_eq!(i64s(&out, "max_qty"), [Some(3), Some(4), Some(5)]);
    assert_eq!(f64s(&out, "first_price"), [Some(1.5), Some(1.0), Some(2.0)]);
    let items = out.column("items").unwrap().list().unwrap().clone();
    let lists: Vec<Vec<String>> = (0..items.len())
        .map(|i| {
            items
                .get_as_series(i)
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(lists, vec![vec!["a", "b"], vec!["c"], vec!["a"]]);
}

#[test]
fn aggregate_without_keys_and_errors() {
    let step = decode(
        "id: a\ntype: aggregate\ninput: s\naggregations:\n  total: {sum: qty}\n  n: {count: \"*\"}",
    )
    .unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(out.height(), 1);
    assert_eq!(i64s(&out, "total"), [Some(15)]);
    assert_eq!(i64s(&out, "n"), [Some(6)]);

    let step =
        decode("id: a\ntype: aggregate\ninput: s\ngroup_by: acct\naggregations:\n  x: {sum: item}")
            .unwrap();
    let errs = schema_errors(&*step, vec![sales()]);
    assert!(errs[0].contains("needs a numeric argument"), "{errs:?}");
    assert!(
        decode("id: a\ntype: aggregate\ninput: s\naggregations:\n  x: {summ: qty}").unwrap_err()[0]
            .contains("did you mean `sum`?")
    );
}

#[test]
fn derive_is_sequential_and_replaces_in_place() {
    let step = decode(
        "id: d\ntype: derive\ninput: s\ncolumns:\n  qty: coalesce(qty, 0)\n  amount: qty * price\n  big: amount > 5",
    )
    .unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(
        names(&out),
        ["acct", "item", "qty", "price", "amount", "big"]
    );
    assert_eq!(
        i64s(&out, "qty"),
        [Some(2), Some(3), Some(0), Some(1), Some(4), Some(5)]
    );
    assert_eq!(f64s(&out, "amount")[2], Some(0.0), "uses the replaced qty");
    let big: Vec<Option<bool>> = out.column("big").unwrap().bool().unwrap().iter().collect();
    assert_eq!(
        big,
        [
            Some(false),
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            Some(true)
        ]
    );
}

#[test]
fn derive_reports_unknown_columns_with_valid_names() {
    let step = decode("id: d\ntype: derive\ninput: s\ncolumns:\n  x: quantity * 2").unwrap();
    let errs = schema_errors(&*step, vec![sales()]);
    let all = errs.join("\n");
    assert!(all.contains("`quantity`"), "{all}");
    assert!(
        all.contains("`acct`") && all.contains("`qty`"),
        "lists valid columns: {all}"
    );
}

#[test]
fn filter_drops_nulls_and_needs_a_boolean() {
    let step = decode("id: f\ntype: filter\ninput: s\nwhere: qty > 2").unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(
        i64s(&out, "qty"),
        [Some(3), Some(4), Some(5)],
        "NULL > 2 is not true"
    );
    let step = decode("id: f\ntype: filter\ninput: s\nwhere: qty + 1").unwrap();
    let errs = schema_errors(&*step, vec![sales()]);
    assert!(errs[0].contains("true/false"), "{errs:?}");
}

#[test]
fn select_picks_drops_renames() {
    let step = decode("id: s\ntype: select\ninput: s\ncolumns: [price, acct, qty]\ndrop: qty\nrename: {price: unit_price}").unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(names(&out), ["unit_price", "acct"]);
    let step = decode("id: s\ntype: select\ninput: s\ncolumns: [acct, prise]").unwrap();
    let errs = schema_errors(&*step, vec![sales()]);
    assert!(errs[0].contains("did you mean `price`?"), "{errs:?}");
}

#[test]
fn sort_is_stable_with_descending_and_nulls_last() {
    let step = decode("id: s\ntype: sort\ninput: s\nby: [qty]\ndescending: true\nnulls_last: true")
        .unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(
        i64s(&out, "qty"),
        [Some(5), Some(4), Some(3), Some(2), Some(1), None]
    );
    let step = decode("id: s\ntype: sort\ninput: s\nby: [acct, price]\ndescending: [true, false]")
        .unwrap();
    let out = run(&*step, vec![sales()]);
    assert_eq!(
        i64s(&out, "acct"),
        [Some(3), Some(2), Some(2), Some(1), Some(1), Some(1)]
    );
    assert_eq!(
        f64s(&out, "price"),
        [
            Some(2.0),
            Some(0.25),
            Some(1.0),
            Some(1.5),
            Some(2.0),
            Some(9.0)
        ]
    );
    // Ties keep input order.
    let t = df!("k" => [1i64, 1, 1], "v" => ["first", "second", "third"]).unwrap();
    let out = run(
        &*decode("id: s\ntype: sort\ninput: t\nby: k").unwrap(),
        vec![t],
    );
    assert_eq!(
        strs(&out, "v"),
        [
            Some("first".into()),
            Some("second".into()),
            Some("third".into())
        ]
    );
}

#[test]
fn union_aligns_columns_and_widens() {
    let a = df!("x" => [1i64], "y" => ["a"]).unwrap();
    let b = df!("y" => ["b"], "x" => [2.5f64]).unwrap();
    let out = run(
        &*decode("id: u\ntype: union\ninputs: [a, b]").unwrap(),
        vec![a.clone(), b],
    );
    assert_eq!(names(&out), ["x", "y"]);
    assert_eq!(f64s(&out, "x"), [Some(1.0), Some(2.5)]);
    let c = df!("x" => [1i64], "z" => ["a"]).unwrap();
    let errs = schema_errors(
        &*decode("id: u\ntype: union\ninputs: [a, c]").unwrap(),
        vec![a, c],
    );
    assert!(errs[0].contains("missing [y], extra [z]"), "{errs:?}");
}

#[test]
fn distinct_all_columns_and_subset_keeps_first() {
    let t = df!("k" => [1i64, 1, 2, 1], "v" => ["a", "a", "b", "c"]).unwrap();
    let out = run(
        &*decode("id: d\ntype: distinct\ninput: t").unwrap(),
        vec![t.clone()],
    );
    assert_eq!(out.height(), 3);
    let out = run(
        &*decode("id: d\ntype: distinct\ninput: t\ncolumns: k").unwrap(),
        vec![t],
    );
    assert_eq!(strs(&out, "v"), [Some("a".into()), Some("b".into())]);
}

#[test]
fn sql_over_inputs_by_id() {
    let step = decode(
        "id: q\ntype: sql\ninputs: [l, r]\nquery: SELECT l.id, l.name, SUM(r.score) AS total FROM l JOIN r ON l.id = r.id GROUP BY l.id, l.name ORDER BY l.id",
    )
    .unwrap();
    let out = run(&*step, vec![left(), right()]);
    assert_eq!(i64s(&out, "id"), [Some(2), Some(3)]);
    assert_eq!(f64s(&out, "total"), [Some(20.0), Some(61.0)]);
    let step = decode("id: q\ntype: sql\ninputs: [l]\nquery: SELECT nope FROM l").unwrap();
    let errs = schema_errors(&*step, vec![left()]);
    assert!(errs[0].contains("does not compile"), "{errs:?}");
}

#[test]
fn load_reads_multiline_quotes_and_day_month_dates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.csv");
    std::fs::write(
        &path,
        "id;addr;joined;extra\n1;\"1 Main St\r\nSpringfield; IL\";6/11/2018;x\n2;\"PO Box 2\";31/1/2020;y\n",
    )
    .unwrap();
    let yaml = format!(
        "id: a\ntype: load\npath: {}\ndelimiter: \";\"\nschema:\n  joined: {{type: date, format: d/m/yyyy}}\n  id: int64\n  addr: string",
        path.display()
    );
    let step = decode(&yaml).unwrap();
    let out = run(&*step, vec![]);
    assert_eq!(
        names(&out),
        ["joined", "id", "addr"],
        "declared order, undeclared columns dropped"
    );
    assert_eq!(
        strs(&out, "addr")[0].as_deref(),
        Some("1 Main St\r\nSpringfield; IL")
    );
    let dates: Vec<Option<i32>> = out
        .column("joined")
        .unwrap()
        .date()
        .unwrap()
        .physical()
        .iter()
        .collect();
    // 2018-11-06 and 2020-01-31 as days since 1970-01-01.
    assert_eq!(dates, [Some(17841), Some(18292)]);
}

#[test]
fn load_names_a_missing_header_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.csv");
    std::fs::write(&path, "invoice_id,acount_id\n1,2\n").unwrap();
    let yaml = format!(
        "id: a\ntype: load\npath: {}\nschema:\n  invoice_id: int64\n  account_id: int64",
        path.display()
    );
    let step = decode(&yaml).unwrap();
    let err = match step.to_polars(vec![], &[]) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("column `account_id` not found"), "{err}");
    assert!(err.contains("a.csv"), "{err}");
}

#[test]
fn write_joins_lists_for_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.csv");
    let step = decode(&format!(
        "id: w\ntype: write\ninput: x\npath: {}",
        path.display()
    ))
    .unwrap();
    let s = Series::new(
        "names".into(),
        [
            Series::new("".into(), ["a", "b"]),
            Series::new("".into(), ["c"]),
        ],
    );
    let mut df =
        DataFrame::new_infer_height(vec![Column::new("id".into(), [1i64, 2]), s.into()]).unwrap();
    let staged = step.write(&mut df).unwrap();
    assert!(!path.exists(), "nothing is visible before commit");
    for s in staged {
        s.commit().unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id,names\n1,\"a,b\"\n2,c\n"
    );
}

#[test]
fn unknown_options_are_errors_with_suggestions() {
    let errs = decode("id: f\ntype: filter\ninput: s\nwher: x > 1").unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("unknown key `wher`") && e.contains("did you mean `where`?")),
        "{errs:?}"
    );
    let errs = decode("id: j\ntype: join\ninputs: [a, b]\nhow: outer\non: id").unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("`outer`") && e.contains("inner, left, right, full, semi, anti")),
        "{errs:?}"
    );
    let _ = DataType::Int64;
}

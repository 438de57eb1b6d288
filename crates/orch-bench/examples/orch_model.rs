// Throwaway: models the lazy plans the orchestrator builds for the two bundled pipelines
// (same polars constructs as crates/orch-steps), to read their optimised plans and profiles.
use polars::prelude::*;
use std::time::Instant;

fn load(d: &str, f: &str, cols: &[(&str, DataType, Option<&str>)]) -> LazyFrame {
    let overrides: Schema = cols
        .iter()
        .map(|(n, t, fmt)| {
            Field::new(
                (*n).into(),
                if fmt.is_some() {
                    DataType::String
                } else {
                    t.clone()
                },
            )
        })
        .collect();
    let mut lf = LazyCsvReader::new(PlRefPath::new(format!("{d}/{f}").as_str()))
        .with_has_header(true)
        .with_separator(b',')
        .with_quote_char(Some(b'"'))
        .with_infer_schema_length(Some(1000))
        .with_raise_if_empty(false)
        .with_dtype_overwrite(Some(Arc::new(overrides)))
        .finish()
        .unwrap();
    let _ = lf.collect_schema().unwrap();
    let exprs: Vec<Expr> = cols
        .iter()
        .map(|(n, _t, fmt)| match fmt {
            Some(f) => col(*n).str().to_date(StrptimeOptions {
                format: Some((*f).into()),
                strict: true,
                exact: true,
                cache: true,
            }),
            None => col(*n),
        })
        .collect();
    lf.select(exprs)
}
fn join(l: LazyFrame, r: LazyFrame, how: JoinType, key: &str, out: &[&str]) -> LazyFrame {
    let mut a = JoinArgs::new(how);
    a.coalesce = JoinCoalesce::CoalesceColumns;
    l.join(r, [col(key)], [col(key)], a)
        .select(out.iter().map(|c| col(*c)).collect::<Vec<_>>())
}
fn main() {
    use DataType::*;
    let d = std::env::args().nth(1).unwrap();
    let which = std::env::args().nth(2).unwrap();
    let as_of = lit(18687).cast(Date);
    let accounts = || {
        load(
            &d,
            "accounts.csv",
            &[
                ("account_id", Int64, None),
                ("company_name", String, None),
                ("company_address", String, None),
                ("contact_person", String, None),
                ("contact_phone", String, None),
                ("gender", String, None),
                ("joining_date", Date, Some("%d/%m/%Y")),
            ],
        )
    };
    let invoices = || {
        load(
            &d,
            "invoices.csv",
            &[
                ("invoice_id", Int64, None),
                ("account_id", Int64, None),
                ("date_issued", Date, None),
            ],
        )
    };
    let line_items = || {
        load(
            &d,
            "invoice_line_items.csv",
            &[
                ("invoice_id", Int64, None),
                ("item_id", String, None),
                ("quantity", Int64, None),
            ],
        )
    };
    let skus = || {
        load(
            &d,
            "skus.csv",
            &[
                ("item_id", String, None),
                ("item_name", String, None),
                ("item_description", String, None),
                ("item_cost_price", Float64, None),
                ("item_retail_price", Float64, None),
            ],
        )
    };
    let counted = || invoices().filter(col("date_issued").lt_eq(as_of.clone()));
    let lf = if which == "late" {
        let age = counted()
            .with_column(
                (as_of.clone().cast(Int64) - col("date_issued").cast(Int64))
                    .alias("days_since_issue"),
            )
            .with_column(col("days_since_issue").gt(lit(30i64)).alias("is_late"));
        let priced = join(
            line_items(),
            skus(),
            JoinType::Inner,
            "item_id",
            &[
                "invoice_id",
                "item_id",
                "quantity",
                "item_name",
                "item_description",
                "item_cost_price",
                "item_retail_price",
            ],
        );
        let amounts = priced
            .group_by([col("invoice_id")])
            .agg([(col("quantity").cast(Float64) * col("item_retail_price"))
                .cast(Float64)
                .sum()
                .cast(Float64)
                .alias("invoice_amount")]);
        let iwa = join(
            age,
            amounts,
            JoinType::Left,
            "invoice_id",
            &[
                "invoice_id",
                "account_id",
                "date_issued",
                "days_since_issue",
                "is_late",
                "invoice_amount",
            ],
        );
        let per = iwa.group_by([col("account_id")]).agg([
            len().cast(Int64).alias("total_invoices"),
            when(col("is_late"))
                .then(lit(1i64))
                .otherwise(lit(0i64))
                .cast(Int64)
                .sum()
                .cast(Int64)
                .alias("total_late_invoices"),
            col("days_since_issue")
                .cast(Int64)
                .sum()
                .cast(Int64)
                .alias("total_days_since_issue"),
            when(col("is_late"))
                .then(coalesce(&[col("invoice_amount"), lit(0.0)]))
                .otherwise(lit(0.0))
                .cast(Float64)
                .sum()
                .cast(Float64)
                .alias("late_invoice_amount"),
        ]);
        let clean = accounts().with_column(
            col("company_address")
                .str()
                .replace_all(lit("[\r\n]+"), lit(" "), false)
                .alias("company_address"),
        );
        let rep = join(
            clean,
            per,
            JoinType::Inner,
            "account_id",
            &[
                "account_id",
                "company_name",
                "company_address",
                "contact_person",
                "contact_phone",
                "gender",
                "joining_date",
                "total_invoices",
                "total_late_invoices",
                "total_days_since_issue",
                "late_invoice_amount",
            ],
        );
        rep.sort(
            ["account_id"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
    } else {
        let known = join(
            line_items(),
            skus(),
            JoinType::Inner,
            "item_id",
            &[
                "invoice_id",
                "item_id",
                "quantity",
                "item_name",
                "item_description",
                "item_cost_price",
                "item_retail_price",
            ],
        );
        let purchases = join(
            known,
            counted(),
            JoinType::Inner,
            "invoice_id",
            &[
                "invoice_id",
                "item_id",
                "quantity",
                "item_name",
                "item_description",
                "item_cost_price",
                "item_retail_price",
                "account_id",
                "date_issued",
            ],
        );
        let per = purchases.group_by([col("account_id")]).agg([
            col("item_name")
                .drop_nulls()
                .n_unique()
                .cast(Int64)
                .alias("sku_count"),
            col("item_name")
                .drop_nulls()
                .unique()
                .sort(SortOptions::default())
                .alias("sku_types_purchased"),
        ]);
        let rep = join(
            per,
            accounts(),
            JoinType::Inner,
            "account_id",
            &[
                "account_id",
                "sku_count",
                "sku_types_purchased",
                "company_name",
                "company_address",
                "contact_person",
                "contact_phone",
                "gender",
                "joining_date",
            ],
        );
        rep.select([
            col("account_id"),
            col("company_name"),
            col("sku_count"),
            col("sku_types_purchased"),
        ])
        .sort(
            ["account_id"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
    };
    if std::env::args().nth(3).as_deref() == Some("explain") {
        println!("{}", lf.explain(true).unwrap());
        return;
    }
    let t = Instant::now();
    let (df, prof) = lf.profile().unwrap();
    eprintln!("{which}: {} rows in {:?}", df.height(), t.elapsed());
    unsafe {
        std::env::set_var("POLARS_FMT_MAX_ROWS", "100");
        std::env::set_var("POLARS_FMT_STR_LEN", "90");
    }
    println!("{prof}");
}

use polars::prelude::*;
use std::time::Instant;
fn t<F: FnOnce() -> PolarsResult<DataFrame>>(n: &str, f: F) -> DataFrame {
    let s = Instant::now();
    let d = f().unwrap();
    eprintln!("{n}: {:?} rows {}", s.elapsed(), d.height());
    d
}
fn main() -> PolarsResult<()> {
    let d = std::env::args().nth(1).unwrap();
    let scan = |f: &str, cols: &[(&str, DataType)]| {
        let schema: Schema = cols
            .iter()
            .map(|(n, t)| Field::new((*n).into(), t.clone()))
            .collect();
        LazyCsvReader::new(PlRefPath::new(format!("{d}/{f}").as_str()))
            .with_has_header(true)
            .with_schema(Some(Arc::new(schema)))
            .finish()
            .unwrap()
    };
    use DataType::*;
    let li = scan(
        "invoice_line_items.csv",
        &[
            ("invoice_id", Int64),
            ("item_id", String),
            ("quantity", Int64),
        ],
    );
    let inv = scan(
        "invoices.csv",
        &[
            ("invoice_id", Int64),
            ("account_id", Int64),
            ("date_issued", Date),
        ],
    );
    let skus = scan(
        "skus.csv",
        &[
            ("item_id", String),
            ("item_name", String),
            ("item_description", String),
            ("item_cost_price", Float64),
            ("item_retail_price", Float64),
        ],
    );
    let li = t("li", || li.collect());
    let inv = t("inv", || {
        inv.filter(col("date_issued").lt_eq(lit(18687).cast(Date)))
            .collect()
    });
    let names = t("names", || {
        skus.clone()
            .select([col("item_name")])
            .unique(None, UniqueKeepStrategy::Any)
            .sort(["item_name"], Default::default())
            .with_row_index("name_id", None)
            .collect()
    });
    let skus_df = t("skus", || {
        skus.clone()
            .join(
                names.clone().lazy(),
                [col("item_name")],
                [col("item_name")],
                JoinArgs::new(JoinType::Inner),
            )
            .select([col("item_id"), col("name_id"), col("item_retail_price")])
            .collect()
    });
    let j1 = t("li join inv", || {
        li.clone()
            .lazy()
            .join(
                inv.clone().lazy(),
                [col("invoice_id")],
                [col("invoice_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
    });
    let j1b = t("inv join li (inv left)", || {
        inv.clone()
            .lazy()
            .join(
                li.clone().lazy(),
                [col("invoice_id")],
                [col("invoice_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
    });
    let _ = j1b;
    let j2 = t("join skus", || {
        j1.clone()
            .lazy()
            .join(
                skus_df.clone().lazy(),
                [col("item_id")],
                [col("item_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
    });
    let j2b = t("li join skus first", || {
        li.clone()
            .lazy()
            .join(
                skus_df.clone().lazy(),
                [col("item_id")],
                [col("item_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
    });
    let _ = j2b;
    let p = j2.select(["account_id", "name_id"]).unwrap();
    t("unique pairs", || {
        p.clone()
            .lazy()
            .unique(None, UniqueKeepStrategy::Any)
            .collect()
    });
    t("unique key", || {
        p.clone()
            .lazy()
            .select([(col("account_id") * lit(16384i64) + col("name_id").cast(Int64)).alias("k")])
            .unique(None, UniqueKeepStrategy::Any)
            .collect()
    });
    t("unique key expr", || {
        p.clone()
            .lazy()
            .select([
                (col("account_id") * lit(16384i64) + col("name_id").cast(Int64))
                    .alias("k")
                    .unique(),
            ])
            .collect()
    });
    t("unique key expr+sort", || {
        p.clone()
            .lazy()
            .select([
                (col("account_id") * lit(16384i64) + col("name_id").cast(Int64))
                    .alias("k")
                    .unique()
                    .sort(Default::default()),
            ])
            .collect()
    });
    t("sort key then unique", || {
        p.clone()
            .lazy()
            .select([
                (col("account_id") * lit(16384i64) + col("name_id").cast(Int64))
                    .alias("k")
                    .sort(Default::default())
                    .unique(),
            ])
            .collect()
    });
    let u = t("unique key expr+sort again", || {
        p.clone()
            .lazy()
            .select([
                (col("account_id") * lit(16384i64) + col("name_id").cast(Int64))
                    .alias("k")
                    .unique()
                    .sort(Default::default()),
            ])
            .collect()
    });
    let names_s = names.column("item_name")?.as_materialized_series().clone();
    t("gather names + group", || {
        u.clone()
            .lazy()
            .select([
                (col("k") / lit(16384i64)).alias("account_id"),
                lit(names_s.clone())
                    .gather((col("k") % lit(16384i64)).cast(IDX_DTYPE), false)
                    .alias("item_name"),
            ])
            .group_by_stable([col("account_id")])
            .agg([len(), col("item_name")])
            .collect()
    });
    t("join names + group", || {
        u.clone()
            .lazy()
            .select([
                (col("k") / lit(16384i64)).alias("account_id"),
                (col("k") % lit(16384i64)).cast(IDX_DTYPE).alias("name_id"),
            ])
            .join(
                names.clone().lazy(),
                [col("name_id")],
                [col("name_id")],
                JoinArgs::new(JoinType::Left),
            )
            .group_by_stable([col("account_id")])
            .agg([len(), col("item_name")])
            .collect()
    });
    t("groupby agg unique sort ids", || {
        p.clone()
            .lazy()
            .group_by([col("account_id")])
            .agg([col("name_id").unique().sort(Default::default())])
            .collect()
    });
    t("strings groupby agg unique sort", || {
        j2.clone()
            .lazy()
            .join(
                names.clone().lazy(),
                [col("name_id")],
                [col("name_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .group_by([col("account_id")])
            .agg([col("item_name").unique().sort(Default::default())])
            .collect()
    });
    Ok(())
}

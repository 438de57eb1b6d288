//! Hand-written polars implementation of the two bundled pipelines (`late_payment` and
//! `product_mix`), used as the floor the orchestrator is benchmarked against.
//!
//! It shares no code with the orchestrator: the plan below is written by hand from the
//! output contract (see `pipelines/*.yaml` and `tests/reference/README.md`):
//!
//! * every CSV is scanned once for both outputs (`collect_all` on the two plans, with the
//!   shared parts cached), with its full schema given up front (nothing inferred), and only
//!   the columns that are needed parsed (projection pushdown);
//! * invoices are filtered to `date_issued <= as_of` in the scan (predicate pushdown);
//! * the line items are made one chunk after the scan (the CSV reader yields one per block
//!   parsed, and the joins' gathers look up each row's chunk: about 10% of the query);
//! * accounts (small) are sorted by `account_id` and numbered (`acc`, u32), SKU names
//!   (small) are numbered in sorted order (`name_id`, u32): the wide join
//!   `line items ⋈ counted invoices ⋈ SKUs` then carries two u32s, a flag and an amount;
//!   the distinct `(account, name)` pairs are one u64 (`acc << 32 | name_id`) whose sort
//!   order is the output order, so deduplicating and ordering is one integer sort; the
//!   names come back only for the distinct pairs;
//! * per-account invoice statistics are computed from invoices alone (no join can multiply
//!   them); the small tables are joined last.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context as _, Result};
use polars::prelude::*;

/// What to compute.
#[derive(Debug, Clone)]
pub struct Options {
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    /// Days since 1970-01-01 of the `as_of` date.
    pub as_of_days: i32,
    pub payment_term_days: i64,
    pub engine: Engine,
}

/// The two results, as written to Parquet (`sku_types_purchased` is a list of strings).
pub struct Outputs {
    pub late_payment: DataFrame,
    pub product_mix: DataFrame,
}

pub const LATE_PAYMENT_COLUMNS: [&str; 11] = [
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
];

pub const PRODUCT_MIX_COLUMNS: [&str; 4] = [
    "account_id",
    "company_name",
    "sku_count",
    "sku_types_purchased",
];

/// A polars error with what we were doing (anyhow's `Context` clashes with polars' own).
fn pl_err(e: PolarsError, what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(e).context(what.to_string())
}

/// An inner join whose output keeps the left input's row order.
fn inner_keeping_left_order() -> JoinArgs {
    let mut args = JoinArgs::new(JoinType::Inner);
    args.maintain_order = MaintainOrderJoin::Left;
    args
}

/// `acc` and `name_id` are row indexes (u32), so `acc * 2^32 + name_id` fits in a u64.
const PAIR_SHIFT: u64 = 1 << 32;
const _: () = assert!(
    std::mem::size_of::<IdxSize>() == 4,
    "built with polars' bigidx"
);

/// Parses `yyyy-mm-dd` into days since 1970-01-01 (proleptic Gregorian).
pub fn parse_date(s: &str) -> Result<i32> {
    let bad = || anyhow::anyhow!("`{s}` is not a date in yyyy-mm-dd form");
    let mut parts = s.trim().splitn(3, '-');
    let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) if y.len() == 4 && m.len() == 2 && d.len() == 2 => (
            y.parse::<i64>().map_err(|_| bad())?,
            m.parse::<u32>().map_err(|_| bad())?,
            d.parse::<u32>().map_err(|_| bad())?,
        ),
        _ => return Err(bad()),
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > month_len {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) as i32)
}

/// A CSV scan with the file's full schema declared (so nothing is inferred), after checking
/// that the header really has these columns in this order.
fn scan_csv(dir: &Path, file: &str, columns: &[(&str, DataType)]) -> Result<LazyFrame> {
    let path = dir.join(file);
    let header = read_header(&path)?;
    let expected: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    ensure!(
        header == expected,
        "{}: header is {:?}, expected {:?}",
        path.display(),
        header,
        expected
    );
    let schema: Schema = columns
        .iter()
        .map(|(n, t)| Field::new((*n).into(), t.clone()))
        .collect();
    let shown = path.display().to_string();
    LazyCsvReader::new(PlRefPath::new(shown.as_str()))
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .finish()
        .map_err(|e| pl_err(e, format!("scanning {shown}")))
}

fn read_header(path: &Path) -> Result<Vec<String>> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut line = String::new();
    std::io::BufReader::new(f)
        .read_line(&mut line)
        .with_context(|| format!("reading {}", path.display()))?;
    let line = line.trim_end_matches(['\r', '\n']);
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    Ok(line
        .split(',')
        .map(|s| s.trim_matches('"').to_string())
        .collect())
}

/// Builds both lazy plans (late_payment, product_mix), sorted and with the contract's
/// columns in order.
pub fn plans(opts: &Options) -> Result<(LazyFrame, LazyFrame)> {
    use DataType::*;
    let dir = &opts.input_dir;
    let accounts = scan_csv(
        dir,
        "accounts.csv",
        &[
            ("account_id", Int64),
            ("company_name", String),
            ("company_address", String),
            ("contact_person", String),
            ("contact_phone", String),
            ("gender", String),
            ("joining_date", String),
        ],
    )?;
    let invoices = scan_csv(
        dir,
        "invoices.csv",
        &[
            ("invoice_id", Int64),
            ("account_id", Int64),
            ("date_issued", Date),
        ],
    )?;
    let line_items = scan_csv(
        dir,
        "invoice_line_items.csv",
        &[
            ("invoice_id", Int64),
            ("item_id", String),
            ("quantity", Int64),
        ],
    )?;
    let skus = scan_csv(
        dir,
        "skus.csv",
        &[
            ("item_id", String),
            ("item_name", String),
            ("item_description", String),
            ("item_cost_price", Float64),
            ("item_retail_price", Float64),
        ],
    )?;

    // Accounts, cleaned, sorted by account_id and numbered densely: `acc` (u32) order is
    // account_id order. Every join and group-by below is on `acc`, `invoice_id`, `item_id`
    // or `name_id`; account_id itself only comes back with the account's columns.
    let accounts = accounts
        .select([
            col("account_id"),
            col("company_name"),
            col("company_address")
                .str()
                .replace_all(lit("[\r\n]+"), lit(" "), false),
            col("contact_person"),
            col("contact_phone"),
            col("gender"),
            col("joining_date").str().to_date(StrptimeOptions {
                format: Some("%d/%m/%Y".into()),
                strict: true,
                exact: true,
                cache: true,
            }),
        ])
        .sort(["account_id"], SortMultipleOptions::default())
        .with_row_index("acc", None)
        .cache();

    // Counted invoices: issued on or before as_of, of a known account; their age in days and
    // whether they are late.
    let as_of = lit(opts.as_of_days).cast(Date);
    let days = (lit(i64::from(opts.as_of_days)) - col("date_issued").cast(Int32).cast(Int64))
        .alias("days_since_issue");
    let counted = invoices
        .filter(col("date_issued").lt_eq(as_of))
        .select([col("invoice_id"), col("account_id"), days])
        .join(
            accounts.clone().select([col("account_id"), col("acc")]),
            [col("account_id")],
            [col("account_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col("invoice_id"),
            col("acc"),
            col("days_since_issue"),
            col("days_since_issue")
                .gt(lit(opts.payment_term_days))
                .alias("is_late"),
        ])
        .cache();

    // Per-account invoice statistics, from invoices alone.
    let stats = counted.clone().group_by([col("acc")]).agg([
        len().cast(Int64).alias("total_invoices"),
        col("is_late")
            .cast(Int64)
            .sum()
            .alias("total_late_invoices"),
        col("days_since_issue")
            .sum()
            .alias("total_days_since_issue"),
    ]);

    // Distinct SKU names, numbered in code point (byte) order: name_id order = name order.
    let names = skus
        .clone()
        .select([col("item_name")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["item_name"], SortMultipleOptions::default())
        .with_row_index("name_id", None)
        .cache();
    let sku_ids = skus
        .select([col("item_id"), col("item_name"), col("item_retail_price")])
        .join(
            names.clone(),
            [col("item_name")],
            [col("item_name")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([col("item_id"), col("name_id"), col("item_retail_price")]);

    // The wide part, shared by both outputs: line items of counted invoices with a known SKU.
    // (Joining the invoices first measured faster than the SKUs first: fewer rows reach
    // the string-keyed join.)
    let purchases = line_items
        .select([
            col("invoice_id").rechunk(),
            col("item_id").rechunk(),
            col("quantity").rechunk(),
        ])
        .join(
            counted.select([col("invoice_id"), col("acc"), col("is_late")]),
            [col("invoice_id")],
            [col("invoice_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            sku_ids,
            [col("item_id")],
            [col("item_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col("acc"),
            col("name_id"),
            col("is_late"),
            (col("quantity").cast(Float64) * col("item_retail_price")).alias("line_amount"),
        ])
        .cache();

    let late_amounts = purchases
        .clone()
        .filter(col("is_late"))
        .group_by([col("acc")])
        .agg([col("line_amount").sum().alias("late_invoice_amount")]);

    let late_payment = accounts
        .clone()
        .join(
            stats,
            [col("acc")],
            [col("acc")],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            late_amounts,
            [col("acc")],
            [col("acc")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(col("late_invoice_amount").fill_null(lit(0.0f64)))
        .sort(["account_id"], SortMultipleOptions::default())
        .select(LATE_PAYMENT_COLUMNS.map(col));

    // Distinct (account, name) pairs as one u64 key `acc << 32 | name_id`, whose order is
    // (account_id, item_name) order: sort, dedupe, split, look the names up, then collect
    // them per account (rows keep their order within a group).
    let pair_key =
        (col("acc").cast(UInt64) * lit(PAIR_SHIFT) + col("name_id").cast(UInt64)).alias("key");
    let product_mix = purchases
        // (`unique` of sorted values is a linear dedup that stays sorted, so the second
        // sort is only a check of the sorted flag.)
        .select([pair_key
            .sort(SortOptions::default())
            .unique()
            .sort(SortOptions::default())])
        .select([
            col("key")
                .floor_div(lit(PAIR_SHIFT))
                .cast(IDX_DTYPE)
                .alias("acc"),
            (col("key") % lit(PAIR_SHIFT))
                .cast(IDX_DTYPE)
                .alias("name_id"),
        ])
        .join(
            names,
            [col("name_id")],
            [col("name_id")],
            inner_keeping_left_order(),
        )
        .group_by_stable([col("acc")])
        .agg([
            len().cast(Int64).alias("sku_count"),
            col("item_name").alias("sku_types_purchased"),
        ])
        .join(
            accounts.select([col("acc"), col("account_id"), col("company_name")]),
            [col("acc")],
            [col("acc")],
            JoinArgs::new(JoinType::Inner),
        )
        .sort(["account_id"], SortMultipleOptions::default())
        .select(PRODUCT_MIX_COLUMNS.map(col));

    Ok((late_payment, product_mix))
}

/// Computes both outputs in one `collect_all` (shared scans and shared join).
pub fn compute(opts: &Options) -> Result<Outputs> {
    let (late, mix) = plans(opts)?;
    let mut dfs = LazyFrame::collect_all_with_engine(
        vec![late.logical_plan, mix.logical_plan],
        opts.engine,
        OptFlags::default(),
    )
    .map_err(|e| pl_err(e, "running the query"))?;
    if dfs.len() != 2 {
        bail!("collect_all returned {} frames, expected 2", dfs.len());
    }
    let product_mix = dfs.pop().unwrap();
    let late_payment = dfs.pop().unwrap();
    Ok(Outputs {
        late_payment,
        product_mix,
    })
}

/// The optimized plan of both outputs, as polars prints it.
pub fn explain(opts: &Options) -> Result<String> {
    let (late, mix) = plans(opts)?;
    LazyFrame::explain_all(
        vec![late.logical_plan, mix.logical_plan],
        OptFlags::default(),
    )
    .map_err(|e| pl_err(e, "explaining the query"))
}

/// Writes `<name>.parquet` and `<name>.csv` for both outputs (list columns joined with `,`
/// in CSV). The four files are written by two threads: Parquet encoding of the big list
/// column is mostly single-threaded, so it overlaps with the CSV files.
pub fn write(out: &mut Outputs, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let late = &mut out.late_payment;
    let mix = &out.product_mix;
    let mut mix_pq = mix.clone(); // shallow: the columns are shared
    std::thread::scope(|s| {
        let parquet = s.spawn(|| write_parquet(&mut mix_pq, &dir.join("product_mix.parquet")));
        let rest = (|| -> Result<()> {
            write_csv(mix, &dir.join("product_mix.csv"))?;
            write_parquet(late, &dir.join("late_payment.parquet"))?;
            write_csv(late, &dir.join("late_payment.csv"))
        })();
        let parquet = parquet
            .join()
            .map_err(|_| anyhow::anyhow!("the Parquet writer thread panicked"))?;
        rest.and(parquet)
    })
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    ParquetWriter::new(f)
        .finish(df)
        .map_err(|e| pl_err(e, format!("writing {}", path.display())))?;
    Ok(())
}

fn write_csv(df: &DataFrame, path: &Path) -> Result<()> {
    let mut flat = csv_ready(df)?;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    CsvWriter::new(std::io::BufWriter::new(f))
        .include_header(true)
        .finish(&mut flat)
        .map_err(|e| pl_err(e, format!("writing {}", path.display())))
}

fn csv_ready(df: &DataFrame) -> Result<DataFrame> {
    let exprs: Vec<Expr> = df
        .columns()
        .iter()
        .map(|c| {
            let e = col(c.name().as_str());
            match c.dtype() {
                DataType::List(_) => e.list().join(lit(","), true),
                _ => e,
            }
        })
        .collect();
    Ok(df.clone().lazy().select(exprs).collect()?)
}

//! `datagen`: command-line front end of [`orch_datagen`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use orch_datagen::{
    append, check_scale, generate, AppendOptions, GenerateOptions, ACCOUNTS_FILE, INVOICES_FILE,
    LINE_ITEMS_FILE, SKUS_FILE,
};

const AFTER_HELP: &str = "\
Files (same headers, column order and quirks as the bundled data/ directory):
  accounts.csv            account_id,company_name,company_address,contact_person,
                          contact_phone,gender,joining_date
                          (two-line quoted addresses, d/mm/yyyy dates, phones in many shapes)
  skus.csv                item_id,item_name,item_description,item_cost_price,item_retail_price
                          (ISBN-10-like ids, prices with up to 10 significant digits)
  invoices.csv            invoice_id,account_id,date_issued   (ISO dates)
  invoice_line_items.csv  invoice_id,item_id,quantity         (2..9 SKUs per invoice, qty 1..4)

Scale 1 is about the size of data/: 200 accounts, ~10k invoices, ~56k line items, 100 SKUs.
Accounts, invoices and line items grow linearly with --scale; SKUs as 100*sqrt(scale), at most
10000. About 3% of the accounts have no invoice, about 1% of the invoices have no line item.
--scale 1000 writes ~55M line items (~1.6 GB) in bounded memory.

Append mode (--append-days N) adds N days of activity to an existing data set: each day about
1% of the existing invoice count, ids continuing after the max invoice_id, dated on the days
after the max date_issued, ~2% of them dated 1..60 days earlier (late arrivals), and ~0.5% extra
line items for invoices that existed before. accounts.csv and skus.csv are not changed, and the
existing bytes of the other files are never rewritten.

The output only depends on the arguments (and, in append mode, on the existing files).
Errors print a message and exit with status 2.

Examples:
  datagen --out /tmp/data                       # scale 1, seed 42
  datagen --scale 10 --seed 7 --out /tmp/data10
  datagen --scale 0.1 --out /tmp/tiny
  datagen --append-days 3 --seed 1 --out /tmp/data10";

/// Generates the invoicing test data set (accounts, skus, invoices, invoice line items) as
/// CSV files, deterministically and in a streaming way, or appends days of new invoices to
/// an existing one.
#[derive(Debug, Parser)]
#[command(
    name = "datagen",
    version,
    after_help = "See --help for the file formats, scaling and append mode.",
    after_long_help = AFTER_HELP
)]
struct Cli {
    /// Size multiplier: 1 is about the size of the bundled data/ (fractions allowed, > 0).
    /// Not allowed with --append-days.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR", value_parser = parse_scale,
          conflicts_with = "append_days")]
    scale: f64,

    /// Random seed; the same arguments always give byte-identical files.
    #[arg(long, default_value_t = 42, value_name = "SEED")]
    seed: u64,

    /// Output directory. Created if missing when generating (the four files in it are
    /// overwritten); must already hold a data set with --append-days.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Instead of generating, append N days of new invoices and line items to the data set
    /// in DIR (1..=36500).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    append_days: Option<u32>,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    check_scale(v).map_err(|e| e.to_string())?;
    Ok(v)
}

fn main() -> ExitCode {
    // Usage errors exit with status 2, --help and --version with 0.
    let cli = Cli::parse();
    let start = Instant::now();
    let result = match cli.append_days {
        None => generate(&GenerateOptions {
            scale: cli.scale,
            seed: cli.seed,
            out: cli.out.clone(),
        })
        .map(|c| {
            format!(
                "datagen: wrote {} ({ACCOUNTS_FILE} {}, {SKUS_FILE} {}, {INVOICES_FILE} {}, \
                 {LINE_ITEMS_FILE} {} rows) scale {} seed {} in {:.2}s",
                cli.out.display(),
                c.accounts,
                c.skus,
                c.invoices,
                c.line_items,
                cli.scale,
                cli.seed,
                start.elapsed().as_secs_f64()
            )
        }),
        Some(days) => append(&AppendOptions {
            days,
            seed: cli.seed,
            out: cli.out.clone(),
        })
        .map(|r| {
            format!(
                "datagen: appended {} days ({}..{}) to {}: {INVOICES_FILE} +{} rows (ids {}..{}, \
                 {} late-dated), {LINE_ITEMS_FILE} +{} rows ({} for older invoices) seed {} in {:.2}s",
                r.days,
                r.first_day,
                r.last_day,
                cli.out.display(),
                r.new_invoices,
                r.first_new_id,
                r.last_new_id,
                r.late_invoices,
                r.new_line_items + r.line_items_for_old_invoices,
                r.line_items_for_old_invoices,
                cli.seed,
                start.elapsed().as_secs_f64()
            )
        }),
    };
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("datagen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

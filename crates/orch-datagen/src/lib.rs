//! Generator of the invoicing data set (`accounts.csv`, `skus.csv`, `invoices.csv`,
//! `invoice_line_items.csv`) with the schema and quirks of the bundled files in `data/`,
//! at any scale, plus an *append* mode that simulates new days of activity.
//!
//! # Design
//!
//! * **Same shape as `data/`.** Headers and column order are copied from the bundled files,
//!   and so are the quirks that pipelines have to cope with: two-line quoted addresses
//!   with commas, `d/mm/yyyy` joining dates (day not zero-padded), phone numbers in ~20
//!   shapes (including spreadsheet-mangled ones), ISBN-10 item ids with valid check
//!   digits, prices printed with 10 significant digits, item names shared by several SKUs,
//!   invoices grouped by account with unsorted ISO dates, 2..9 distinct SKUs per invoice
//!   with quantities uniform in 1..=4. On top of that, about 3% of the accounts have no
//!   invoice (at least one always) and about 1% of the invoices have no line item.
//! * **Scale.** `scale` 1 gives about the size of `data/`: 200 accounts, ~10k invoices,
//!   ~56k line items, 100 SKUs. Accounts (and so invoices and line items) grow linearly
//!   with the scale, SKUs as `100 * sqrt(scale)` within `100..=10_000`; fractional scales
//!   work (`0.1` gives 20 accounts).
//! * **Deterministic.** Everything comes from [`ChaCha8Rng`] seeded with the seed, one
//!   stream per table so the tables do not perturb each other; no clock, no hash-map
//!   iteration order. Same arguments, same bytes.
//! * **Streaming.** Rows are written as they are generated through `csv` writers on top
//!   of [`BufWriter`]s (the `csv` crate does the quoting). Only the SKU ids are kept in
//!   memory; each invoice is written, then its line items, to the two files side by side,
//!   so memory stays bounded at any scale. Files are written under temporary names and
//!   renamed at the end, so an interrupted run does not leave half-written files under
//!   the real names.
//! * **Append mode** ([`append`]) reads the existing files in a streaming way (account ids,
//!   SKU ids, and from `invoices.csv` only the max id, max date and count), then appends
//!   day after day about 1% of the existing invoice count, with ids continuing after the
//!   max, dated on the days after the max date, except ~2% late-arriving invoices dated
//!   1..60 days before their day. Each new line item has a 0.5% chance to be followed by
//!   one for a pre-existing invoice. Existing bytes are never rewritten (files are opened
//!   in append mode, after adding a final newline if one is missing); the random stream is
//!   derived from the seed and the existing data, so appends are deterministic too.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub mod dates;
pub mod fake;
mod vocab;

pub const ACCOUNTS_FILE: &str = "accounts.csv";
pub const SKUS_FILE: &str = "skus.csv";
pub const INVOICES_FILE: &str = "invoices.csv";
pub const LINE_ITEMS_FILE: &str = "invoice_line_items.csv";

pub const ACCOUNTS_HEADER: [&str; 7] = [
    "account_id",
    "company_name",
    "company_address",
    "contact_person",
    "contact_phone",
    "gender",
    "joining_date",
];
pub const SKUS_HEADER: [&str; 5] = [
    "item_id",
    "item_name",
    "item_description",
    "item_cost_price",
    "item_retail_price",
];
pub const INVOICES_HEADER: [&str; 3] = ["invoice_id", "account_id", "date_issued"];
pub const LINE_ITEMS_HEADER: [&str; 3] = ["invoice_id", "item_id", "quantity"];

/// Accounts at scale 1 (the bundled data has 200).
pub const BASE_ACCOUNTS: f64 = 200.0;
/// SKUs at scale 1 (the bundled data has 100), also the minimum.
pub const BASE_SKUS: f64 = 100.0;
pub const MAX_SKUS: u64 = 10_000;
/// Largest accepted `--scale` (20M accounts, ~5.6G line items).
pub const MAX_SCALE: f64 = 100_000.0;

/// Share of accounts without any invoice.
const P_ACCOUNT_WITHOUT_INVOICES: f64 = 0.03;
/// Invoices per account are uniform in `1..=MAX_INVOICES_PER_ACCOUNT` (original: 1..99,
/// slightly widened so that scale 1 still has ~10.2k invoices despite the empty accounts).
const MAX_INVOICES_PER_ACCOUNT: u64 = 105;
/// Share of invoices without any line item.
const P_INVOICE_WITHOUT_ITEMS: f64 = 0.01;
/// Line items per invoice are uniform in this range (as in the original), distinct SKUs.
const MIN_ITEMS: usize = 2;
const MAX_ITEMS: usize = 9;
const QUANTITIES: [&[u8]; 4] = [b"1", b"2", b"3", b"4"];

/// Invoice dates: the original's range, over two calendar years.
fn invoice_date_range() -> (i64, i64) {
    (
        dates::days_from_civil(2020, 3, 19),
        dates::days_from_civil(2021, 3, 19),
    )
}

/// Joining dates: before the first invoice, like the original (2016-03 .. 2019-03).
fn joining_date_range() -> (i64, i64) {
    (
        dates::days_from_civil(2016, 3, 27),
        dates::days_from_civil(2019, 3, 16),
    )
}

/// Append mode: new invoices per day, relative to the existing invoice count.
const APPEND_DAILY_SHARE: f64 = 0.01;
/// Append mode: share of new invoices dated before the day they arrive.
const P_LATE_INVOICE: f64 = 0.02;
const MAX_LATE_DAYS: i64 = 60;
/// Append mode: chance that a new line item is followed by one for a pre-existing invoice.
const P_LINE_ITEM_FOR_OLD_INVOICE: f64 = 0.005;

const STREAM_ACCOUNTS: u64 = 1;
const STREAM_SKUS: u64 = 2;
const STREAM_INVOICES: u64 = 3;
const STREAM_LINE_ITEMS: u64 = 4;
const STREAM_APPEND: u64 = 5;

const WRITE_BUFFER: usize = 1 << 20;

/// Options of a full generation.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub scale: f64,
    pub seed: u64,
    pub out: PathBuf,
}

/// Options of an append run.
#[derive(Debug, Clone)]
pub struct AppendOptions {
    pub days: u32,
    pub seed: u64,
    pub out: PathBuf,
}

/// Rows written per file by [`generate`] (headers excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub accounts: u64,
    pub skus: u64,
    pub invoices: u64,
    pub line_items: u64,
}

/// What [`append`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub days: u32,
    pub existing_invoices: u64,
    pub new_invoices: u64,
    /// New invoices dated before the day they were appended for.
    pub late_invoices: u64,
    /// Line items for the new invoices.
    pub new_line_items: u64,
    /// Extra line items for invoices that existed before this run.
    pub line_items_for_old_invoices: u64,
    pub first_new_id: u64,
    pub last_new_id: u64,
    /// First and last appended day (`yyyy-mm-dd`).
    pub first_day: String,
    pub last_day: String,
}

/// Number of accounts and SKUs for a scale.
pub fn sizes(scale: f64) -> (u64, u64) {
    let accounts = (BASE_ACCOUNTS * scale).round().max(1.0) as u64;
    let skus = ((BASE_SKUS * scale.sqrt()).round() as u64).clamp(BASE_SKUS as u64, MAX_SKUS);
    (accounts, skus)
}

pub fn check_scale(scale: f64) -> Result<()> {
    ensure!(
        scale.is_finite() && scale > 0.0 && scale <= MAX_SCALE,
        "scale must be a number > 0 and <= {MAX_SCALE}, got {scale}"
    );
    Ok(())
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

type CsvOut = csv::Writer<BufWriter<File>>;

fn csv_out(file: File) -> CsvOut {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::with_capacity(WRITE_BUFFER, file))
}

fn create_csv(path: &Path, header: &[&str]) -> Result<CsvOut> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = csv_out(file);
    w.write_record(header)?;
    Ok(w)
}

fn finish(mut w: CsvOut, path: &Path) -> Result<()> {
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Number of line items of an invoice.
fn line_item_count<R: Rng>(rng: &mut R) -> usize {
    if rng.random_bool(P_INVOICE_WITHOUT_ITEMS) {
        0
    } else {
        rng.random_range(MIN_ITEMS..=MAX_ITEMS)
    }
}

/// Picks `n` distinct SKU indexes (at most `MAX_ITEMS` and at most `n_skus`).
fn pick_skus<R: Rng>(rng: &mut R, n: usize, n_skus: usize) -> ([usize; MAX_ITEMS], usize) {
    let n = n.min(n_skus).min(MAX_ITEMS);
    let mut chosen = [usize::MAX; MAX_ITEMS];
    for i in 0..n {
        chosen[i] = loop {
            let s = rng.random_range(0..n_skus);
            if !chosen[..i].contains(&s) {
                break s;
            }
        };
    }
    (chosen, n)
}

/// Writes one line item with a random quantity.
fn write_line_item<R: Rng>(
    rng: &mut R,
    w: &mut CsvOut,
    invoice_id: &[u8],
    sku: &str,
) -> Result<()> {
    let qty = QUANTITIES[rng.random_range(0..QUANTITIES.len())];
    w.write_record([invoice_id, sku.as_bytes(), qty])?;
    Ok(())
}

/// Generates the four files into `opts.out` (created if missing, files overwritten).
pub fn generate(opts: &GenerateOptions) -> Result<Counts> {
    check_scale(opts.scale)?;
    let out = &opts.out;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let names = [ACCOUNTS_FILE, SKUS_FILE, INVOICES_FILE, LINE_ITEMS_FILE];
    let tmp: Vec<PathBuf> = names
        .iter()
        .map(|n| out.join(format!(".{n}.datagen-tmp")))
        .collect();
    let result = generate_into(opts, &tmp);
    if result.is_err() {
        for t in &tmp {
            let _ = fs::remove_file(t);
        }
        return result;
    }
    for (t, n) in tmp.iter().zip(names) {
        let dest = out.join(n);
        fs::rename(t, &dest).with_context(|| format!("cannot rename to {}", dest.display()))?;
    }
    result
}

fn generate_into(opts: &GenerateOptions, tmp: &[PathBuf]) -> Result<Counts> {
    let (n_accounts, n_skus) = sizes(opts.scale);
    let mut counts = Counts::default();
    let mut num = itoa::Buffer::new();

    // accounts.csv
    {
        let mut rng = rng_for(opts.seed, STREAM_ACCOUNTS);
        let mut w = create_csv(&tmp[0], &ACCOUNTS_HEADER)?;
        let (join_lo, join_hi) = joining_date_range();
        for id in 1..=n_accounts {
            let company = fake::company_name(&mut rng);
            let address = fake::address(&mut rng);
            let (person, gender) = fake::person(&mut rng);
            let phone = fake::phone(&mut rng);
            let joined = dates::format_dmy(rng.random_range(join_lo..=join_hi));
            w.write_record([
                num.format(id),
                &company,
                &address,
                &person,
                &phone,
                gender,
                &joined,
            ])?;
        }
        finish(w, &tmp[0])?;
        counts.accounts = n_accounts;
    }

    // skus.csv (the ids stay in memory for the line items)
    let mut skus = Vec::with_capacity(n_skus as usize);
    {
        let mut rng = rng_for(opts.seed, STREAM_SKUS);
        let mut w = create_csv(&tmp[1], &SKUS_HEADER)?;
        let mut isbn = fake::IsbnGen::new();
        for _ in 0..n_skus {
            let id = isbn.next(&mut rng);
            let name = fake::item_name(&mut rng);
            let description = fake::item_description(&mut rng);
            let (cost, retail) = fake::prices(&mut rng);
            w.write_record([
                id.as_str(),
                &name,
                description,
                &fake::format_price(cost),
                &fake::format_price(retail),
            ])?;
            skus.push(id);
        }
        finish(w, &tmp[1])?;
        counts.skus = n_skus;
    }

    // invoices.csv and invoice_line_items.csv, side by side.
    {
        let mut inv_rng = rng_for(opts.seed, STREAM_INVOICES);
        let mut item_rng = rng_for(opts.seed, STREAM_LINE_ITEMS);
        let mut inv_w = create_csv(&tmp[2], &INVOICES_HEADER)?;
        let mut item_w = create_csv(&tmp[3], &LINE_ITEMS_HEADER)?;
        let (lo, hi) = invoice_date_range();
        let day_strings: Vec<String> = (lo..=hi).map(dates::format_iso).collect();
        // One account (when there are several) surely has no invoice.
        let forced_empty = if n_accounts >= 2 {
            inv_rng.random_range(1..=n_accounts)
        } else {
            0
        };
        let mut acc_buf = itoa::Buffer::new();
        let mut next_id = 1u64;
        for account in 1..=n_accounts {
            let n_invoices =
                if account == forced_empty || inv_rng.random_bool(P_ACCOUNT_WITHOUT_INVOICES) {
                    0
                } else {
                    inv_rng.random_range(1..=MAX_INVOICES_PER_ACCOUNT)
                };
            let account_id = acc_buf.format(account).as_bytes();
            for _ in 0..n_invoices {
                let id = num.format(next_id).as_bytes();
                next_id += 1;
                let day = &day_strings[inv_rng.random_range(0..day_strings.len())];
                inv_w.write_record([id, account_id, day.as_bytes()])?;
                let n_items = line_item_count(&mut item_rng);
                let (chosen, n) = pick_skus(&mut item_rng, n_items, skus.len());
                for &sku in &chosen[..n] {
                    write_line_item(&mut item_rng, &mut item_w, id, &skus[sku])?;
                }
                counts.line_items += n as u64;
            }
            counts.invoices += n_invoices;
        }
        finish(inv_w, &tmp[2])?;
        finish(item_w, &tmp[3])?;
    }
    Ok(counts)
}

fn csv_reader(path: &Path) -> Result<csv::Reader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(file))
}

/// Index of column `name` in the header of `path`.
fn column(reader: &mut csv::Reader<File>, path: &Path, name: &str) -> Result<usize> {
    let headers = reader
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?;
    headers
        .iter()
        .position(|h| h == name.as_bytes())
        .with_context(|| format!("{} has no `{name}` column", path.display()))
}

fn parse_u64(field: &[u8], path: &Path, record: &csv::ByteRecord, what: &str) -> Result<u64> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .with_context(|| {
            let line = record.position().map_or(0, |p| p.line());
            format!(
                "{}:{line}: {what} {:?} is not a non-negative integer",
                path.display(),
                String::from_utf8_lossy(field)
            )
        })
}

/// The header must be exactly `expected`, since rows are appended in that column order.
fn check_exact_header(path: &Path, expected: &[&str]) -> Result<()> {
    let mut r = csv_reader(path)?;
    let headers = r
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?;
    let ok = headers.len() == expected.len()
        && headers.iter().zip(expected).all(|(h, e)| h == e.as_bytes());
    ensure!(
        ok,
        "{} has header {:?}, expected {:?}",
        path.display(),
        headers
            .iter()
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(","),
        expected.join(",")
    );
    Ok(())
}

struct InvoiceScan {
    count: u64,
    min_id: u64,
    max_id: u64,
    max_day: i64,
}

fn scan_invoices(path: &Path) -> Result<InvoiceScan> {
    check_exact_header(path, &INVOICES_HEADER)?;
    let mut r = csv_reader(path)?;
    let id_col = column(&mut r, path, "invoice_id")?;
    let date_col = column(&mut r, path, "date_issued")?;
    let mut scan = InvoiceScan {
        count: 0,
        min_id: u64::MAX,
        max_id: 0,
        max_day: i64::MIN,
    };
    let mut record = csv::ByteRecord::new();
    while r
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let id = parse_u64(
            record.get(id_col).unwrap_or(b""),
            path,
            &record,
            "invoice_id",
        )?;
        let date = record.get(date_col).unwrap_or(b"");
        let day = std::str::from_utf8(date)
            .ok()
            .and_then(dates::parse_iso)
            .with_context(|| {
                let line = record.position().map_or(0, |p| p.line());
                format!(
                    "{}:{line}: date_issued {:?} is not a yyyy-mm-dd date",
                    path.display(),
                    String::from_utf8_lossy(date)
                )
            })?;
        scan.count += 1;
        scan.min_id = scan.min_id.min(id);
        scan.max_id = scan.max_id.max(id);
        scan.max_day = scan.max_day.max(day);
    }
    ensure!(scan.count > 0, "{} has no invoice rows", path.display());
    Ok(scan)
}

fn read_account_ids(path: &Path) -> Result<Vec<u64>> {
    let mut r = csv_reader(path)?;
    let col = column(&mut r, path, "account_id")?;
    let mut ids = Vec::new();
    let mut record = csv::ByteRecord::new();
    while r
        .read_byte_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        ids.push(parse_u64(
            record.get(col).unwrap_or(b""),
            path,
            &record,
            "account_id",
        )?);
    }
    ensure!(!ids.is_empty(), "{} has no account rows", path.display());
    Ok(ids)
}

fn read_sku_ids(path: &Path) -> Result<Vec<String>> {
    let mut r = csv_reader(path)?;
    let col = column(&mut r, path, "item_id")?;
    let mut ids = Vec::new();
    let mut record = csv::StringRecord::new();
    while r
        .read_record(&mut record)
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        let id = record.get(col).unwrap_or("");
        ensure!(
            !id.is_empty(),
            "{}: empty item_id on line {}",
            path.display(),
            record.position().map_or(0, |p| p.line())
        );
        ids.push(id.to_owned());
    }
    ensure!(!ids.is_empty(), "{} has no sku rows", path.display());
    Ok(ids)
}

/// Opens `path` for appending, first adding a newline if the file does not end with one.
fn open_for_append(path: &Path) -> Result<CsvOut> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))?;
    let len = file.metadata()?.len();
    ensure!(len > 0, "{} is empty (no header)", path.display());
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(csv_out(file))
}

/// Appends `opts.days` days of new invoices and line items to the data set in `opts.out`.
pub fn append(opts: &AppendOptions) -> Result<AppendReport> {
    let out = &opts.out;
    ensure!(
        opts.days > 0,
        "the number of days to append must be at least 1"
    );
    if !out.is_dir() {
        bail!(
            "directory {} does not exist; append mode extends an existing data set \
             (create one first with `datagen --out {}`)",
            out.display(),
            out.display()
        );
    }
    let path = |name: &str| out.join(name);
    for name in [ACCOUNTS_FILE, SKUS_FILE, INVOICES_FILE, LINE_ITEMS_FILE] {
        ensure!(
            path(name).is_file(),
            "{} is missing; append mode needs the four files of a data set",
            path(name).display()
        );
    }
    let accounts = read_account_ids(&path(ACCOUNTS_FILE))?;
    let skus = read_sku_ids(&path(SKUS_FILE))?;
    let scan = scan_invoices(&path(INVOICES_FILE))?;
    check_exact_header(&path(LINE_ITEMS_FILE), &LINE_ITEMS_HEADER)?;

    let mut inv_w = open_for_append(&path(INVOICES_FILE))?;
    let mut item_w = open_for_append(&path(LINE_ITEMS_FILE))?;

    // The random stream depends on the seed and on the existing data, so appending twice
    // with the same seed does not repeat the same pattern.
    let mixed = splitmix64(
        opts.seed
            ^ splitmix64(scan.max_id ^ splitmix64(scan.count ^ splitmix64(scan.max_day as u64))),
    );
    let mut rng = rng_for(mixed, STREAM_APPEND);

    let mut report = AppendReport {
        days: opts.days,
        existing_invoices: scan.count,
        first_new_id: scan.max_id + 1,
        ..AppendReport::default()
    };
    let daily = scan.count as f64 * APPEND_DAILY_SHARE;
    let mut next_id = scan.max_id + 1;
    let mut id_buf = itoa::Buffer::new();
    let mut acc_buf = itoa::Buffer::new();
    let mut old_buf = itoa::Buffer::new();
    for d in 1..=i64::from(opts.days) {
        let today = scan.max_day + d;
        let n_invoices = (daily * rng.random_range(0.8..1.2)).round().max(1.0) as u64;
        for _ in 0..n_invoices {
            let id = id_buf.format(next_id).as_bytes();
            next_id += 1;
            let account = accounts[rng.random_range(0..accounts.len())];
            let day = if rng.random_bool(P_LATE_INVOICE) {
                report.late_invoices += 1;
                today - rng.random_range(1..=MAX_LATE_DAYS)
            } else {
                today
            };
            inv_w.write_record([
                id,
                acc_buf.format(account).as_bytes(),
                dates::format_iso(day).as_bytes(),
            ])?;
            report.new_invoices += 1;
            let n_items = line_item_count(&mut rng);
            let (chosen, n) = pick_skus(&mut rng, n_items, skus.len());
            for &sku in &chosen[..n] {
                write_line_item(&mut rng, &mut item_w, id, &skus[sku])?;
                report.new_line_items += 1;
                if rng.random_bool(P_LINE_ITEM_FOR_OLD_INVOICE) {
                    // A late correction to an invoice that existed before this run.
                    let old = rng.random_range(scan.min_id..=scan.max_id);
                    let sku = &skus[rng.random_range(0..skus.len())];
                    write_line_item(&mut rng, &mut item_w, old_buf.format(old).as_bytes(), sku)?;
                    report.line_items_for_old_invoices += 1;
                }
            }
        }
    }
    finish(inv_w, &path(INVOICES_FILE))?;
    finish(item_w, &path(LINE_ITEMS_FILE))?;
    report.last_new_id = next_id - 1;
    report.first_day = dates::format_iso(scan.max_day + 1);
    report.last_day = dates::format_iso(scan.max_day + i64::from(opts.days));
    Ok(report)
}

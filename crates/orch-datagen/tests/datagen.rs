//! End-to-end tests of the generator and of the `datagen` binary (all at scale <= 1).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use orch_datagen::{
    append, dates, generate, AppendOptions, GenerateOptions, ACCOUNTS_FILE, INVOICES_FILE,
    LINE_ITEMS_FILE, SKUS_FILE,
};

const FILES: [&str; 4] = [ACCOUNTS_FILE, SKUS_FILE, INVOICES_FILE, LINE_ITEMS_FILE];

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("datagen-test-{name}"));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn bundled_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn gen(dir: &Path, scale: f64, seed: u64) -> orch_datagen::Counts {
    generate(&GenerateOptions {
        scale,
        seed,
        out: dir.to_path_buf(),
    })
    .expect("generate")
}

fn datagen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_datagen"))
}

fn records(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn first_line(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().next().unwrap_or("").to_owned()
}

/// `d/mm/yyyy` (day not padded) to a day number, checking that the date exists.
fn parse_dmy(s: &str) -> Option<i64> {
    let mut parts = s.split('/');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || d.starts_with('0') || m.len() != 2 || y.len() != 4 {
        return None;
    }
    dates::parse_iso(&format!("{y}-{m}-{d:0>2}"))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for f in FILES {
        fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (scratch("det-a"), scratch("det-b"), scratch("det-c"));
    gen(&a, 0.5, 7);
    gen(&b, 0.5, 7);
    gen(&c, 0.5, 8);
    for f in FILES {
        let bytes_a = fs::read(a.join(f)).unwrap();
        assert!(bytes_a.len() > 100, "{f} is too small");
        assert_eq!(
            bytes_a,
            fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
        assert_ne!(
            bytes_a,
            fs::read(c.join(f)).unwrap(),
            "{f} equal for another seed"
        );
    }
    // No temporary files left behind.
    assert_eq!(fs::read_dir(&a).unwrap().count(), 4);
}

#[test]
fn headers_equal_the_bundled_data() {
    let dir = scratch("headers");
    gen(&dir, 0.1, 1);
    for f in FILES {
        let expected = first_line(&bundled_data().join(f));
        assert!(!expected.is_empty(), "bundled {f} has no header");
        assert_eq!(first_line(&dir.join(f)), expected, "header of {f}");
    }
}

#[test]
fn scale_1_is_the_size_of_the_bundled_data() {
    let dir = scratch("scale1");
    let counts = gen(&dir, 1.0, 42);
    let generated = [
        counts.accounts,
        counts.skus,
        counts.invoices,
        counts.line_items,
    ];
    for (f, n) in FILES.iter().zip(generated) {
        let bundled = records(&bundled_data().join(f)).len() as f64;
        let actual = records(&dir.join(f)).len();
        assert_eq!(actual as u64, n, "{f}: reported count");
        let ratio = actual as f64 / bundled;
        assert!(
            (0.8..=1.2).contains(&ratio),
            "{f}: {actual} rows vs {bundled} bundled"
        );
    }
}

#[test]
fn accounts_have_the_quirks_of_the_original() {
    let dir = scratch("accounts");
    gen(&dir, 1.0, 3);
    let rows = records(&dir.join(ACCOUNTS_FILE));
    assert!(!rows.is_empty());
    let (mut multiline, mut with_comma, mut unpadded_day) = (0, 0, 0);
    let mut phone_shapes = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 7, "row {i}: {row:?}");
        assert_eq!(row[0].parse::<usize>().unwrap(), i + 1);
        let address = &row[2];
        multiline += usize::from(address.contains('\n'));
        with_comma += usize::from(address.contains(','));
        assert!(["M", "F"].contains(&&row[5]), "gender {:?}", &row[5]);
        let joined = &row[6];
        let day = parse_dmy(joined).unwrap_or_else(|| panic!("bad joining_date {joined:?}"));
        assert!(dates::format_dmy(day) == *joined);
        unpadded_day += usize::from(joined.find('/') == Some(1));
        let shape: String = row[4]
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        phone_shapes.insert(shape);
    }
    assert_eq!(multiline, rows.len(), "every address has two lines");
    assert!(with_comma > rows.len() / 2, "addresses contain commas");
    assert!(unpadded_day > 0, "some days are not zero-padded");
    assert!(phone_shapes.len() >= 10, "phone shapes: {phone_shapes:?}");
    // The raw file really has quoted multi-line fields.
    let raw = fs::read_to_string(dir.join(ACCOUNTS_FILE)).unwrap();
    assert!(raw.lines().count() > rows.len() + 1);
}

#[test]
fn references_and_gaps() {
    let dir = scratch("refs");
    gen(&dir, 1.0, 42);
    let skus = records(&dir.join(SKUS_FILE));
    let sku_ids: HashSet<String> = skus.iter().map(|r| r[0].to_owned()).collect();
    assert_eq!(sku_ids.len(), skus.len(), "unique item ids");
    let mut names: HashMap<&str, usize> = HashMap::new();
    for r in &skus {
        *names.entry(r.get(1).unwrap()).or_default() += 1;
        for price in [&r[3], &r[4]] {
            assert!(price.parse::<f64>().unwrap() > 0.0, "price {price}");
        }
    }
    assert!(names.values().any(|&n| n > 1), "some SKUs share a name");
    assert!(
        skus.iter().any(|r| r[3].len() >= 10),
        "prices have many decimals"
    );

    let accounts = records(&dir.join(ACCOUNTS_FILE));
    let account_ids: HashSet<String> = accounts.iter().map(|r| r[0].to_owned()).collect();
    let invoices = records(&dir.join(INVOICES_FILE));
    let mut invoice_ids = HashSet::new();
    let mut invoiced_accounts = HashSet::new();
    let mut years = HashSet::new();
    for (i, r) in invoices.iter().enumerate() {
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].parse::<usize>().unwrap(),
            i + 1,
            "invoice ids are 1..n"
        );
        assert!(account_ids.contains(&r[1]), "unknown account {}", &r[1]);
        assert!(dates::parse_iso(&r[2]).is_some(), "bad date {}", &r[2]);
        years.insert(r[2][..4].to_owned());
        invoice_ids.insert(r[0].to_owned());
        invoiced_accounts.insert(r[1].to_owned());
    }
    assert!(years.len() >= 2, "dates spread over years: {years:?}");
    assert!(
        invoiced_accounts.len() < account_ids.len(),
        "an account has no invoice"
    );

    let items = records(&dir.join(LINE_ITEMS_FILE));
    let mut with_items = HashSet::new();
    let mut known = 0;
    let mut quantities: HashMap<String, usize> = HashMap::new();
    let mut pairs = HashSet::new();
    for r in &items {
        assert_eq!(r.len(), 3);
        known += usize::from(invoice_ids.contains(&r[0]));
        assert!(sku_ids.contains(&r[1]), "unknown item {}", &r[1]);
        *quantities.entry(r[2].to_owned()).or_default() += 1;
        with_items.insert(r[0].to_owned());
        assert!(
            pairs.insert((r[0].to_owned(), r[1].to_owned())),
            "duplicate {r:?}"
        );
    }
    assert!(known as f64 >= 0.99 * items.len() as f64);
    assert!(
        with_items.len() < invoice_ids.len(),
        "an invoice has no line item"
    );
    let mut qs: Vec<_> = quantities.keys().cloned().collect();
    qs.sort();
    assert_eq!(qs, ["1", "2", "3", "4"]);
    for (q, n) in &quantities {
        let share = *n as f64 / items.len() as f64;
        assert!((0.2..0.3).contains(&share), "quantity {q}: {share}");
    }
}

#[test]
fn fractional_scale_works() {
    let dir = scratch("fraction");
    let c = gen(&dir, 0.1, 5);
    assert_eq!(c.accounts, 20);
    assert!(c.invoices > 500 && c.invoices < 1600, "{c:?}");
}

fn max_date(rows: &[csv::StringRecord]) -> i64 {
    rows.iter()
        .map(|r| dates::parse_iso(&r[2]).unwrap())
        .max()
        .unwrap()
}

#[test]
fn append_extends_without_rewriting() {
    let base = scratch("append-base");
    gen(&base, 0.5, 11);
    let dir = scratch("append-a");
    copy_dir(&base, &dir);
    let old: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| fs::read(base.join(f)).unwrap())
        .collect();
    let old_invoices = records(&base.join(INVOICES_FILE));
    let old_max_id = old_invoices.len() as u64;
    let old_max_day = max_date(&old_invoices);

    let out = datagen()
        .args(["--append-days", "5", "--seed", "3", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("appended 5 days"));

    for (f, old_bytes) in FILES.iter().zip(&old) {
        let new = fs::read(dir.join(f)).unwrap();
        assert!(
            new.starts_with(old_bytes),
            "{f}: old bytes are not a prefix"
        );
        if *f == ACCOUNTS_FILE || *f == SKUS_FILE {
            assert_eq!(&new, old_bytes, "{f} must not change");
        } else {
            assert!(new.len() > old_bytes.len(), "{f} did not grow");
        }
    }

    let invoices = records(&dir.join(INVOICES_FILE));
    let new = &invoices[old_invoices.len()..];
    let expected_per_day = old_invoices.len() as f64 * 0.01;
    assert!(
        (new.len() as f64) > 5.0 * expected_per_day * 0.7
            && (new.len() as f64) < 5.0 * expected_per_day * 1.3,
        "{} new invoices",
        new.len()
    );
    let mut new_ids = HashSet::new();
    let (mut older, mut later) = (0, 0);
    for (i, r) in new.iter().enumerate() {
        assert_eq!(r[0].parse::<u64>().unwrap(), old_max_id + 1 + i as u64);
        new_ids.insert(r[0].to_owned());
        let day = dates::parse_iso(&r[2]).unwrap();
        assert!(day <= old_max_day + 5);
        if day <= old_max_day {
            older += 1;
        } else {
            later += 1;
        }
    }
    assert!(older > 0, "no late-arriving invoice");
    assert!(
        older * 10 < later,
        "too many late invoices: {older} vs {later}"
    );
    assert_eq!(max_date(&invoices), old_max_day + 5);

    let old_items = records(&base.join(LINE_ITEMS_FILE)).len();
    let items = records(&dir.join(LINE_ITEMS_FILE));
    let (mut for_new, mut for_old) = (0, 0);
    for r in &items[old_items..] {
        let id: u64 = r[0].parse().unwrap();
        if new_ids.contains(&r[0]) {
            for_new += 1;
        } else {
            assert!(
                id >= 1 && id <= old_max_id,
                "line item for unknown invoice {id}"
            );
            for_old += 1;
        }
    }
    assert!(for_new > 0);
    assert!(for_old > 0, "no line item for a pre-existing invoice");
    assert!((for_old as f64) < 0.02 * for_new as f64);

    // Same files, days and seed: same bytes. Another seed: other bytes.
    let again = scratch("append-b");
    copy_dir(&base, &again);
    let report = append(&AppendOptions {
        days: 5,
        seed: 3,
        out: again.clone(),
    })
    .unwrap();
    assert_eq!(report.first_new_id, old_max_id + 1);
    for f in FILES {
        assert_eq!(
            fs::read(dir.join(f)).unwrap(),
            fs::read(again.join(f)).unwrap(),
            "{f}: append is not deterministic"
        );
    }
    let other = scratch("append-c");
    copy_dir(&base, &other);
    append(&AppendOptions {
        days: 5,
        seed: 4,
        out: other.clone(),
    })
    .unwrap();
    assert_ne!(
        fs::read(dir.join(INVOICES_FILE)).unwrap(),
        fs::read(other.join(INVOICES_FILE)).unwrap()
    );

    // A second append continues after the first one.
    let report = append(&AppendOptions {
        days: 1,
        seed: 3,
        out: dir.clone(),
    })
    .unwrap();
    assert_eq!(report.first_new_id, invoices.len() as u64 + 1);
    assert_eq!(
        report.first_day,
        dates::format_iso(old_max_day + 6),
        "{report:?}"
    );
}

#[test]
fn append_adds_a_missing_final_newline() {
    let dir = scratch("append-newline");
    gen(&dir, 0.1, 2);
    let path = dir.join(INVOICES_FILE);
    let mut bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    fs::write(&path, &bytes).unwrap();
    let before = records(&path).len();
    let report = append(&AppendOptions {
        days: 2,
        seed: 1,
        out: dir.clone(),
    })
    .unwrap();
    let after = records(&path);
    assert_eq!(after.len() as u64, before as u64 + report.new_invoices);
    assert!(fs::read(&path).unwrap().starts_with(&bytes));
}

#[test]
fn cli_errors_exit_2_with_a_message() {
    let missing = scratch("does-not-exist");
    let cases: Vec<Vec<std::ffi::OsString>> = vec![
        vec![
            "--append-days".into(),
            "2".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--scale".into(),
            "0".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--scale".into(),
            "-3".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--scale".into(),
            "abc".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--scale".into(),
            "NaN".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--seed".into(),
            "-1".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--append-days".into(),
            "0".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec![
            "--append-days".into(),
            "1".into(),
            "--scale".into(),
            "2".into(),
            "--out".into(),
            missing.clone().into(),
        ],
        vec!["--scale".into(), "1".into()],
        vec!["--bogus".into()],
    ];
    for args in cases {
        let out = datagen().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(
        !missing.exists(),
        "a failed run created the output directory"
    );

    // Append into a directory that lacks the files.
    let empty = scratch("empty-dir");
    fs::create_dir_all(&empty).unwrap();
    let out = datagen()
        .args(["--append-days", "1", "--out"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));

    let help = datagen().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for word in [
        "--scale",
        "--seed",
        "--out",
        "--append-days",
        "invoice_line_items.csv",
    ] {
        assert!(text.contains(word), "--help lacks {word}");
    }
}

#[test]
fn cli_generates_into_a_new_directory() {
    let dir = scratch("cli-gen").join("nested");
    let out = datagen()
        .args(["--scale", "0.05", "--seed", "9", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("accounts.csv 10"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for f in FILES {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
}

#!/usr/bin/env python3
"""Independent DuckDB reference implementation of the `late_payment` and
`product_mix` output contracts.

This file is written ONLY from the written contract (see README.md in this
directory).  It does not read, import or call anything from the Rust engine
under crates/.  Its outputs are the golden files under tests/expected/.

Usage:
    python3 tests/reference/duckdb_reference.py --data DIR --as-of YYYY-MM-DD \
        [--payment-term-days 30] --out DIR

Writes DIR/late_payment.csv and DIR/product_mix.csv.

Output formatting (done here in Python, not by DuckDB, so that it is fully
under our control):
  * csv module, delimiter ',', quotechar '"', QUOTE_MINIMAL (RFC-4180
    quoting: fields containing ',', '"', CR or LF are quoted, '"' doubled),
    line terminator "\n" (LF);
  * header row = column names;
  * BIGINT -> decimal integer; DOUBLE -> Python repr (shortest string that
    round-trips to the same IEEE-754 double, e.g. 0.30000000000000004, 19.0);
    DATE -> ISO yyyy-mm-dd; VARCHAR -> as is; NULL -> empty field.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import sys

import duckdb

# ---------------------------------------------------------------------------
# Input schemas.  Every column is typed explicitly; CSV sniffing is disabled
# (auto_detect=false), so nothing is inferred from the data.
# ---------------------------------------------------------------------------
ACCOUNTS_COLUMNS = {
    "account_id": "BIGINT",
    "company_name": "VARCHAR",
    "company_address": "VARCHAR",   # multi-line quoted field
    "contact_person": "VARCHAR",
    "contact_phone": "VARCHAR",
    "gender": "VARCHAR",
    "joining_date": "DATE",         # d/m/yyyy, day and month not zero-padded
}
INVOICES_COLUMNS = {
    "invoice_id": "BIGINT",
    "account_id": "BIGINT",
    "date_issued": "DATE",          # ISO yyyy-mm-dd
}
LINE_ITEMS_COLUMNS = {
    "invoice_id": "BIGINT",
    "item_id": "VARCHAR",           # ISBN-like string, e.g. 1-60559-539-X
    "quantity": "BIGINT",
}
SKUS_COLUMNS = {
    "item_id": "VARCHAR",
    "item_name": "VARCHAR",
    "item_description": "VARCHAR",
    "item_cost_price": "DOUBLE",
    "item_retail_price": "DOUBLE",
}

LATE_PAYMENT_COLUMNS = [
    "account_id", "company_name", "company_address", "contact_person",
    "contact_phone", "gender", "joining_date", "total_invoices",
    "total_late_invoices", "total_days_since_issue", "late_invoice_amount",
]
PRODUCT_MIX_COLUMNS = ["account_id", "company_name", "sku_count", "sku_types_purchased"]


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _struct_literal(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in columns.items()) + "}"


def load_table(con, name: str, path: str, columns: dict[str, str], dateformat: str | None):
    """CREATE TABLE name FROM a CSV with a header, explicit types, no sniffing."""
    opts = [
        "header = true",
        "auto_detect = false",
        "delim = ','",
        "quote = '\"'",
        "escape = '\"'",          # RFC-4180: a quote inside a quoted field is doubled
        f"columns = {_struct_literal(columns)}",
    ]
    if dateformat is not None:
        opts.append(f"dateformat = {_sql_str(dateformat)}")
    con.execute(
        f"CREATE TABLE {name} AS SELECT * FROM read_csv({_sql_str(path)}, {', '.join(opts)})"
    )


# ---------------------------------------------------------------------------
# The contract, in SQL.  Parameters: $as_of (DATE), $term (BIGINT).
# ---------------------------------------------------------------------------
COMMON_CTES = r"""
params AS (
    SELECT CAST($as_of AS DATE) AS as_of, CAST($term AS BIGINT) AS payment_term_days
),

-- "Only invoices with date_issued <= as_of count (counted invoices)."
-- "invoices whose account_id is not in accounts are excluded"
--   -> inner join to accounts.
-- Per invoice we also compute
--   days_since_issue = as_of - date_issued   (DATE - DATE = BIGINT days)
--   is_late          = (as_of - date_issued) > payment_term_days
counted_invoices AS (
    SELECT i.invoice_id,
           i.account_id,
           i.date_issued,
           (p.as_of - i.date_issued)                       AS days_since_issue,
           (p.as_of - i.date_issued) > p.payment_term_days AS is_late
    FROM invoices AS i
    JOIN accounts AS a ON a.account_id = i.account_id
    CROSS JOIN params AS p
    WHERE i.date_issued <= p.as_of
),

-- "line items whose item_id exists in skus" -> inner join to skus, so line
-- items with an unknown SKU contribute nothing.  Line items whose invoice is
-- not a counted invoice are dropped later by the inner join to
-- counted_invoices.
known_line_items AS (
    SELECT l.invoice_id,
           l.item_id,
           l.quantity,
           s.item_name,
           CAST(l.quantity AS DOUBLE) * s.item_retail_price AS line_amount
    FROM invoice_line_items AS l
    JOIN skus AS s ON s.item_id = l.item_id
)
"""

LATE_PAYMENT_SQL = "WITH " + COMMON_CTES + r""",

-- Invoice counts and day sums are computed from counted_invoices ALONE (one
-- row per invoice), so no join can multiply them.
--   total_invoices         = number of the account's counted invoices
--   total_late_invoices    = number of those that are late (0 if none)
--   total_days_since_issue = sum of (as_of - date_issued) over them
invoice_stats AS (
    SELECT account_id,
           CAST(count(*) AS BIGINT)                        AS total_invoices,
           CAST(count(*) FILTER (WHERE is_late) AS BIGINT) AS total_late_invoices,
           CAST(sum(days_since_issue) AS BIGINT)           AS total_days_since_issue
    FROM counted_invoices
    GROUP BY account_id
),

-- late_invoice_amount = sum over the account's LATE invoices of
--   quantity * item_retail_price over their line items whose item_id exists
--   in skus.
-- fsum = DuckDB's compensated (Kahan) floating-point sum: with only
-- positive terms it gives the correctly rounded sum (checked against
-- math.fsum by --verify-fsum), i.e. a value that does not depend on the
-- order in which rows are summed.
late_amounts AS (
    SELECT ci.account_id,
           fsum(k.line_amount) AS late_invoice_amount
    FROM counted_invoices AS ci
    JOIN known_line_items AS k ON k.invoice_id = ci.invoice_id
    WHERE ci.is_late
    GROUP BY ci.account_id
)

-- "one row per account (from accounts.csv) that has at least one counted
-- invoice, sorted by account_id" -> inner join accounts x invoice_stats.
-- company_address: every run of line-break characters (\r, \n, any mix,
--   any length) -> ONE space; nothing else changed, no trimming.
-- joining_date: already a DATE (parsed from d/m/yyyy by read_csv).
-- late_invoice_amount: 0.0 where the account has no late known-SKU amount.
SELECT a.account_id,
       a.company_name,
       regexp_replace(a.company_address, '[\r\n]+', ' ', 'g') AS company_address,
       a.contact_person,
       a.contact_phone,
       a.gender,
       a.joining_date,
       st.total_invoices,
       st.total_late_invoices,
       st.total_days_since_issue,
       CAST(coalesce(la.late_invoice_amount, 0.0) AS DOUBLE) AS late_invoice_amount
FROM accounts AS a
JOIN invoice_stats AS st ON st.account_id = a.account_id
LEFT JOIN late_amounts AS la ON la.account_id = a.account_id
ORDER BY a.account_id
"""

PRODUCT_MIX_SQL = "WITH " + COMMON_CTES + r""",

-- Distinct (account, item_name) pairs over KNOWN SKUs (inner join to skus in
-- known_line_items) bought in COUNTED invoices (inner join to
-- counted_invoices, which already restricts to accounts in accounts.csv).
-- Several SKUs can share an item_name; DISTINCT collapses them.
purchased_names AS (
    SELECT DISTINCT ci.account_id, k.item_name
    FROM counted_invoices AS ci
    JOIN known_line_items AS k ON k.invoice_id = ci.invoice_id
)

-- One row per account with at least one such purchase, sorted by account_id.
-- sku_count           = number of distinct item_name values (BIGINT)
-- sku_types_purchased = those names sorted ascending (DuckDB's default
--                       collation is binary, i.e. byte order of UTF-8 =
--                       code point order; re-checked in Python below),
--                       joined with ','.
SELECT a.account_id,
       a.company_name,
       CAST(count(*) AS BIGINT)                         AS sku_count,
       string_agg(pn.item_name, ',' ORDER BY pn.item_name) AS sku_types_purchased
FROM purchased_names AS pn
JOIN accounts AS a ON a.account_id = pn.account_id
GROUP BY a.account_id, a.company_name
ORDER BY a.account_id
"""


def format_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        raise TypeError("unexpected boolean in output")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"non-finite float in output: {v!r}")
        return repr(v)
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, str):
        return v
    raise TypeError(f"unexpected output type {type(v)!r}: {v!r}")


def write_csv(path: str, header: list[str], rows: list[tuple]) -> None:
    formatted = [[format_value(v) for v in row] for row in rows]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=",", quotechar='"', quoting=csv.QUOTE_MINIMAL,
                       lineterminator="\n")
        w.writerow(header)
        w.writerows(formatted)
    # Round-trip check: what we wrote parses back to exactly the same fields.
    with open(path, newline="", encoding="utf-8") as f:
        back = list(csv.reader(f))
    if back != [header] + formatted:
        raise RuntimeError(f"CSV round-trip mismatch in {path}")


def sanity_checks(con) -> None:
    """Fail loudly on inputs the contract does not define."""
    checks = {
        "duplicate account_id in accounts":
            "SELECT count(*) - count(DISTINCT account_id) FROM accounts",
        "duplicate invoice_id in invoices":
            "SELECT count(*) - count(DISTINCT invoice_id) FROM invoices",
        "duplicate item_id in skus":
            "SELECT count(*) - count(DISTINCT item_id) FROM skus",
        "NULL key / date / quantity / price":
            """SELECT (SELECT count(*) FROM accounts WHERE account_id IS NULL)
                    + (SELECT count(*) FROM invoices WHERE invoice_id IS NULL
                                                      OR account_id IS NULL
                                                      OR date_issued IS NULL)
                    + (SELECT count(*) FROM invoice_line_items WHERE invoice_id IS NULL
                                                                OR item_id IS NULL
                                                                OR quantity IS NULL)
                    + (SELECT count(*) FROM skus WHERE item_id IS NULL
                                                  OR item_name IS NULL
                                                  OR item_retail_price IS NULL)""",
    }
    for what, sql in checks.items():
        n = con.execute(sql).fetchone()[0]
        if n:
            raise SystemExit(f"input not covered by the contract: {what} ({n})")


def verify_fsum(con, as_of: dt.date, term: int) -> None:
    """Check DuckDB's fsum against Python's exactly-rounded math.fsum."""
    sql = "WITH " + COMMON_CTES + r"""
    SELECT ci.account_id, list(k.line_amount) AS amounts, fsum(k.line_amount) AS total
    FROM counted_invoices ci JOIN known_line_items k ON k.invoice_id = ci.invoice_id
    WHERE ci.is_late GROUP BY ci.account_id"""
    bad = 0
    for acct, amounts, total in con.execute(sql, {"as_of": as_of, "term": term}).fetchall():
        if math.fsum(amounts) != total:
            bad += 1
            print(f"fsum mismatch for account {acct}: duckdb {total!r} "
                  f"math.fsum {math.fsum(amounts)!r}", file=sys.stderr)
    if bad:
        raise SystemExit(f"{bad} fsum mismatches")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory with the 4 input CSVs")
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--payment-term-days", type=int, default=30)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    con = duckdb.connect(":memory:")
    # Make the SQL deterministic and independent of the machine.
    con.execute("SET threads = 1")
    con.execute("SET default_collation = ''")

    d = args.data
    load_table(con, "accounts", os.path.join(d, "accounts.csv"), ACCOUNTS_COLUMNS, "%d/%m/%Y")
    load_table(con, "invoices", os.path.join(d, "invoices.csv"), INVOICES_COLUMNS, "%Y-%m-%d")
    load_table(con, "invoice_line_items", os.path.join(d, "invoice_line_items.csv"),
               LINE_ITEMS_COLUMNS, None)
    load_table(con, "skus", os.path.join(d, "skus.csv"), SKUS_COLUMNS, None)
    sanity_checks(con)

    params = {"as_of": args.as_of, "term": args.payment_term_days}

    late_rel = con.execute(LATE_PAYMENT_SQL, params)
    assert [c[0] for c in late_rel.description] == LATE_PAYMENT_COLUMNS
    late_rows = late_rel.fetchall()

    mix_rel = con.execute(PRODUCT_MIX_SQL, params)
    assert [c[0] for c in mix_rel.description] == PRODUCT_MIX_COLUMNS
    mix_rows = mix_rel.fetchall()

    # Re-check the ordering requirements in plain Python.
    assert [r[0] for r in late_rows] == sorted(r[0] for r in late_rows)
    assert [r[0] for r in mix_rows] == sorted(r[0] for r in mix_rows)
    for r in mix_rows:
        names = r[3].split(",")
        # Python str ordering is code point order (= UTF-8 byte order).
        # (Splitting on ',' is only valid while no item_name contains ',';
        # checked here.)
        assert names == sorted(set(names)) and len(names) == r[2], r
    verify_fsum(con, args.as_of, args.payment_term_days)

    os.makedirs(args.out, exist_ok=True)
    write_csv(os.path.join(args.out, "late_payment.csv"), LATE_PAYMENT_COLUMNS, late_rows)
    write_csv(os.path.join(args.out, "product_mix.csv"), PRODUCT_MIX_COLUMNS, mix_rows)
    print(f"duckdb {duckdb.__version__}: as_of={args.as_of} term={args.payment_term_days} "
          f"late_payment={len(late_rows)} rows, product_mix={len(mix_rows)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

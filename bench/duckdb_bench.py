#!/usr/bin/env python3
"""DuckDB engine for the benchmark: late_payment and product_mix, parquet + csv.

The SQL is the independent reference's (tests/reference/duckdb_reference.py, imported, not
copied): same CSV loading (explicit types, no sniffing), same CTEs and queries. What differs
from the reference script is only what a benchmark needs:

  * DuckDB's default thread count (all cores) instead of `SET threads = 1`;
  * no sanity checks / fsum re-verification (they are test code, not the workload);
  * outputs are written by DuckDB itself (COPY ... TO), as Parquet and CSV, like the other
    engines; in Parquet `sku_types_purchased` is a list of strings (as the orchestrator
    writes it), in CSV the names joined with ','.

Usage: duckdb_bench.py --data DIR --as-of YYYY-MM-DD [--payment-term-days 30] --out DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import duckdb_reference as ref  # noqa: E402


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--payment-term-days", type=int, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0, help="0 = DuckDB's default (all cores)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    con = duckdb.connect(":memory:")
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    con.execute("SET default_collation = ''")
    con.execute("SET preserve_insertion_order = true")

    d = args.data
    ref.load_table(con, "accounts", os.path.join(d, "accounts.csv"), ref.ACCOUNTS_COLUMNS,
                   "%d/%m/%Y")
    ref.load_table(con, "invoices", os.path.join(d, "invoices.csv"), ref.INVOICES_COLUMNS,
                   "%Y-%m-%d")
    ref.load_table(con, "invoice_line_items", os.path.join(d, "invoice_line_items.csv"),
                   ref.LINE_ITEMS_COLUMNS, None)
    ref.load_table(con, "skus", os.path.join(d, "skus.csv"), ref.SKUS_COLUMNS, None)

    params = {"as_of": args.as_of, "term": args.payment_term_days}
    # The reference's product_mix SQL joins the names into one string; the Parquet output
    # keeps them as a list (like the other engines), so the query is run once into a table
    # with the list, and the CSV joins it.
    mix_sql = ref.PRODUCT_MIX_SQL.replace(
        "string_agg(pn.item_name, ',' ORDER BY pn.item_name) AS sku_types_purchased",
        "list(pn.item_name ORDER BY pn.item_name) AS sku_types_purchased",
    )
    if mix_sql == ref.PRODUCT_MIX_SQL:
        raise SystemExit("duckdb_bench: the reference's product_mix SQL changed; update me")
    con.execute("CREATE TABLE late_payment AS " + ref.LATE_PAYMENT_SQL, params)
    con.execute("CREATE TABLE product_mix AS " + mix_sql, params)

    os.makedirs(args.out, exist_ok=True)
    out = args.out
    late_cols = ", ".join(ref.LATE_PAYMENT_COLUMNS)
    con.execute(f"COPY (SELECT {late_cols} FROM late_payment ORDER BY account_id) "
                f"TO {_q(os.path.join(out, 'late_payment.parquet'))} (FORMAT parquet)")
    con.execute(f"COPY (SELECT {late_cols} FROM late_payment ORDER BY account_id) "
                f"TO {_q(os.path.join(out, 'late_payment.csv'))} (FORMAT csv, HEADER true)")
    con.execute(f"COPY (SELECT account_id, company_name, sku_count, sku_types_purchased "
                f"FROM product_mix ORDER BY account_id) "
                f"TO {_q(os.path.join(out, 'product_mix.parquet'))} (FORMAT parquet)")
    con.execute(f"COPY (SELECT account_id, company_name, sku_count, "
                f"array_to_string(sku_types_purchased, ',') AS sku_types_purchased "
                f"FROM product_mix ORDER BY account_id) "
                f"TO {_q(os.path.join(out, 'product_mix.csv'))} (FORMAT csv, HEADER true)")
    n_late = con.execute("SELECT count(*) FROM late_payment").fetchone()[0]
    n_mix = con.execute("SELECT count(*) FROM product_mix").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: late_payment {n_late} rows, product_mix {n_mix} rows "
          f"-> {out} ({time.perf_counter() - t0:.3f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

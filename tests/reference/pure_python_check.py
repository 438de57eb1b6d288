#!/usr/bin/env python3
"""Second, DuckDB-free cross-check of the golden files (stdlib only).

Recomputes late_payment and product_mix from the contract with the csv
module and math.fsum (exactly rounded float sum) and compares them with the
files already written under --expected, field by field, as parsed CSV
records (so only the values are compared, not the quoting).  Exit code 1 on
any difference.

    python3 tests/reference/pure_python_check.py --data DIR --as-of YYYY-MM-DD \
        [--payment-term-days 30] --expected DIR
"""
import argparse
import collections
import csv
import datetime as dt
import math
import os
import re
import sys


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--payment-term-days", type=int, default=30)
    ap.add_argument("--expected", required=True)
    a = ap.parse_args()
    as_of, term = a.as_of, a.payment_term_days

    accounts = {int(r["account_id"]): r for r in read(os.path.join(a.data, "accounts.csv"))}
    skus = {r["item_id"]: r for r in read(os.path.join(a.data, "skus.csv"))}
    counted = {}  # invoice_id -> (account_id, days)
    for r in read(os.path.join(a.data, "invoices.csv")):
        acc, d = int(r["account_id"]), dt.date.fromisoformat(r["date_issued"])
        if acc in accounts and d <= as_of:
            counted[int(r["invoice_id"])] = (acc, (as_of - d).days)

    n_inv = collections.Counter()
    n_late = collections.Counter()
    days = collections.Counter()
    for acc, dd in counted.values():
        n_inv[acc] += 1
        days[acc] += dd
        n_late[acc] += dd > term
    amounts = collections.defaultdict(list)
    names = collections.defaultdict(set)
    for r in read(os.path.join(a.data, "invoice_line_items.csv")):
        inv = int(r["invoice_id"])
        if inv not in counted or r["item_id"] not in skus:
            continue
        acc, dd = counted[inv]
        sku = skus[r["item_id"]]
        names[acc].add(sku["item_name"])
        if dd > term:
            amounts[acc].append(float(int(r["quantity"])) * float(sku["item_retail_price"]))

    late = [["account_id", "company_name", "company_address", "contact_person",
             "contact_phone", "gender", "joining_date", "total_invoices",
             "total_late_invoices", "total_days_since_issue", "late_invoice_amount"]]
    for acc in sorted(n_inv):
        r = accounts[acc]
        d, m, y = (int(x) for x in r["joining_date"].split("/"))
        late.append([str(acc), r["company_name"],
                     re.sub(r"[\r\n]+", " ", r["company_address"]),
                     r["contact_person"], r["contact_phone"], r["gender"],
                     dt.date(y, m, d).isoformat(), str(n_inv[acc]), str(n_late[acc]),
                     str(days[acc]), repr(math.fsum(amounts[acc]))])
    mix = [["account_id", "company_name", "sku_count", "sku_types_purchased"]]
    for acc in sorted(names):
        ns = sorted(names[acc])
        mix.append([str(acc), accounts[acc]["company_name"], str(len(ns)), ",".join(ns)])

    ok = True
    for fname, want in [("late_payment.csv", late), ("product_mix.csv", mix)]:
        with open(os.path.join(a.expected, fname), newline="", encoding="utf-8") as f:
            got = list(csv.reader(f))
        if got != want:
            ok = False
            print(f"MISMATCH {fname}", file=sys.stderr)
            for g, w in zip(got, want):
                if g != w:
                    print(f"  expected file: {g}\n  recomputed:    {w}", file=sys.stderr)
            if len(got) != len(want):
                print(f"  row count {len(got)} vs {len(want)}", file=sys.stderr)
        else:
            print(f"OK {a.expected}/{fname}: {len(got) - 1} rows")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

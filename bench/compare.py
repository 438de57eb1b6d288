#!/usr/bin/env python3
"""Checks that several engines produced the same outputs.

    compare.py NAME=DIR NAME=DIR ...

Every DIR holds late_payment.{csv,parquet} and product_mix.{csv,parquet}. Every pair of
directories is compared:

  * CSV: same header, same number of rows, same rows in the same order; fields equal as
    text, or both numbers within 1e-9 relative (|a-b| <= 1e-9 * max(|a|,|b|));
  * Parquet (when the duckdb module is available): same column names and types, same
    number of rows.

Prints one line per comparison and exits 1 on the first difference found (after printing
up to 5 differing fields per file).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import sys

OUTPUTS = ["late_payment", "product_mix"]
REL_TOL = 1e-9


def read_csv(path: str) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def as_number(s: str):
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def same_field(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = as_number(a), as_number(b)
    if x is None or y is None:
        return False
    return abs(x - y) <= REL_TOL * max(abs(x), abs(y))


def compare_csv(name_a, rows_a, name_b, rows_b, what) -> list[str]:
    problems = []
    if rows_a[:1] != rows_b[:1]:
        return [f"{what}: headers differ: {name_a} {rows_a[:1]} vs {name_b} {rows_b[:1]}"]
    if len(rows_a) != len(rows_b):
        problems.append(f"{what}: {name_a} has {len(rows_a) - 1} rows, "
                        f"{name_b} has {len(rows_b) - 1}")
    header = rows_a[0]
    for i, (ra, rb) in enumerate(zip(rows_a[1:], rows_b[1:]), start=1):
        if len(ra) != len(rb):
            problems.append(f"{what} row {i}: {len(ra)} vs {len(rb)} fields")
        for col, a, b in zip(header, ra, rb):
            if not same_field(a, b):
                short = lambda s: s if len(s) <= 80 else s[:77] + "..."  # noqa: E731
                problems.append(f"{what} row {i} ({header[0]}={ra[0]}) column {col}: "
                                f"{name_a}={short(a)!r} {name_b}={short(b)!r}")
        if len(problems) >= 5:
            break
    return problems


def parquet_shape(path: str):
    import duckdb
    con = duckdb.connect()
    q = "'" + path.replace("'", "''") + "'"
    cols = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({q})").fetchall()]
    n = con.execute(f"SELECT count(*) FROM read_parquet({q})").fetchone()[0]
    return cols, n


def main(argv: list[str]) -> int:
    engines = []
    for arg in argv:
        name, sep, d = arg.partition("=")
        if not sep:
            print(f"compare.py: expected NAME=DIR, got {arg!r}", file=sys.stderr)
            return 2
        engines.append((name, d))
    if len(engines) < 2:
        print("compare.py: need at least two NAME=DIR", file=sys.stderr)
        return 2
    try:
        import duckdb  # noqa: F401
        have_duckdb = True
    except ImportError:
        have_duckdb = False

    failed = False
    for out in OUTPUTS:
        rows = {}
        shapes = {}
        for name, d in engines:
            p = os.path.join(d, f"{out}.csv")
            if not os.path.exists(p):
                print(f"MISMATCH {out}: {name} did not write {p}")
                return 1
            rows[name] = read_csv(p)
            pq = os.path.join(d, f"{out}.parquet")
            if not os.path.exists(pq):
                print(f"MISMATCH {out}: {name} did not write {pq}")
                return 1
            if have_duckdb:
                shapes[name] = parquet_shape(pq)
        for (a, _), (b, _) in itertools.combinations(engines, 2):
            problems = compare_csv(a, rows[a], b, rows[b], f"{out}.csv")
            if have_duckdb and shapes[a] != shapes[b]:
                problems.append(f"{out}.parquet: {a} {shapes[a][0]} ({shapes[a][1]} rows) vs "
                                f"{b} {shapes[b][0]} ({shapes[b][1]} rows)")
            if problems:
                failed = True
                print(f"MISMATCH {out}: {a} vs {b}")
                for p in problems:
                    print(f"    {p}")
        if not failed:
            print(f"ok {out}: {len(rows[engines[0][0]]) - 1} rows, identical across "
                  f"{', '.join(n for n, _ in engines)}"
                  + ("" if have_duckdb else " (parquet not checked: no duckdb module)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

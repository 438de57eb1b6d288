#!/usr/bin/env bash
# Regenerate every golden file under tests/expected/ with the DuckDB reference,
# then re-verify them with the stdlib-only cross-check.  Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
R=tests/reference/duckdb_reference.py
C=tests/reference/pure_python_check.py

run() {  # data as_of term outdir
  python3 "$R" --data "$1" --as-of "$2" --payment-term-days "$3" --out "$4"
  python3 "$C" --data "$1" --as-of "$2" --payment-term-days "$3" --expected "$4"
}
run data            2021-03-01 30 "tests/expected/bundled/as_of=2021-03-01"
run data            2020-06-15 30 "tests/expected/bundled/as_of=2020-06-15"
run data            2021-03-01 45 "tests/expected/bundled/as_of=2021-03-01,term=45"
run tests/data/edge 2024-03-31 30 "tests/expected/edge/as_of=2024-03-31"

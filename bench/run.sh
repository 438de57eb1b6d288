#!/usr/bin/env bash
# Benchmark: the orchestrator's bundled pipelines against a hand-written polars program,
# DuckDB and (optionally) PySpark, on generated data. See bench/README.md.
#
#   bench/run.sh [--scales 1,10,100] [--reps 3] [--with-spark] [--smoke]
#                [--seed 42] [--as-of 2021-03-01] [--payment-term-days 30]
#                [--results FILE] [--no-build]
#
# Exit status: 0 ok, 1 a run failed or the engines' outputs differ, 2 bad usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
WORK="$BENCH/work"

SCALES="1,10,100"
REPS=3
WITH_SPARK=0
SMOKE=0
SEED=42
AS_OF="2021-03-01"
TERM_DAYS=30
RESULTS=""
BUILD=1
ARGS="$*"

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "bench: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --scales) SCALES="${2:?--scales needs a value}"; shift 2 ;;
    --scales=*) SCALES="${1#*=}"; shift ;;
    --reps) REPS="${2:?--reps needs a value}"; shift 2 ;;
    --reps=*) REPS="${1#*=}"; shift ;;
    --with-spark) WITH_SPARK=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    --seed) SEED="${2:?}"; shift 2 ;;
    --as-of) AS_OF="${2:?}"; shift 2 ;;
    --payment-term-days) TERM_DAYS="${2:?}"; shift 2 ;;
    --results) RESULTS="${2:?}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ $SMOKE == 1 ]]; then
  SCALES=1; REPS=1; WITH_SPARK=0
  : "${RESULTS:=$WORK/smoke-results.md}"   # a smoke run does not overwrite bench/results.md
fi
: "${RESULTS:=$BENCH/results.md}"
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --reps must be a positive integer" >&2; exit 2; }
IFS=',' read -r -a SCALE_LIST <<< "$SCALES"
for s in "${SCALE_LIST[@]}"; do
  [[ "$s" =~ ^[1-9][0-9]*$ ]] || { echo "bench: scales must be positive integers, got '$s'" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is required (apt-get install time)"

mkdir -p "$WORK"
# One run at a time: runs share bench/work (data, run directories, measurements) and would
# disturb each other's timings anyway.
exec 9> "$WORK/.lock"
if ! flock -n 9; then
  echo "bench: another bench/run.sh is running (lock $WORK/.lock); waiting for it"
  flock 9
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"

# --- build ------------------------------------------------------------------------------
if [[ $BUILD == 1 ]]; then
  echo "== cargo build --release"
  (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
fi
for b in orchestrator datagen polars-baseline; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (run cargo build --release)"
done

# --- python: duckdb (and pyspark) -------------------------------------------------------
# A venv under bench/work (with the system's site-packages visible) only when something is
# missing, so nothing is installed outside bench/work.
VENV="$WORK/venv"
PY=python3
[[ -x "$VENV/bin/python" ]] && PY="$VENV/bin/python"
command -v "$PY" >/dev/null || die "python3 is required"
ensure_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "== creating $VENV"
    python3 -m venv --system-site-packages "$VENV" || die "python3 -m venv failed"
  fi
  PY="$VENV/bin/python"
}
DUCKDB_PIN="$(grep -Eo '^duckdb==[^ ]+' "$ROOT/tests/reference/requirements.txt" 2>/dev/null || echo duckdb)"
if ! "$PY" -c 'import duckdb' 2>/dev/null; then
  ensure_venv
  echo "== pip install $DUCKDB_PIN (into $VENV)"
  "$PY" -m pip install --quiet "$DUCKDB_PIN" || die "pip install $DUCKDB_PIN failed"
fi

SPARK_NOTE=""
if [[ $WITH_SPARK == 1 ]]; then
  JAVA_MAJOR=0
  if command -v java >/dev/null; then
    jv="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    JAVA_MAJOR="${jv%%.*}"; [[ "$JAVA_MAJOR" == 1 ]] && JAVA_MAJOR="$(echo "$jv" | cut -d. -f2)"
    [[ "$JAVA_MAJOR" =~ ^[0-9]+$ ]] || JAVA_MAJOR=0
  fi
  if (( JAVA_MAJOR < 17 )); then
    SPARK_NOTE="skipped: needs java 17+ (found: ${jv:-none})"
    echo "== spark $SPARK_NOTE"
    WITH_SPARK=0
  elif ! "$PY" -c 'import pyspark' 2>/dev/null; then
    ensure_venv
    echo "== pip install pyspark (into $VENV)"
    if ! "$PY" -m pip install --quiet pyspark; then
      SPARK_NOTE="skipped: pip install pyspark failed"
      echo "== spark $SPARK_NOTE"
      WITH_SPARK=0
    fi
  fi
fi

# --- bookkeeping --------------------------------------------------------------------------
MEAS="$WORK/measurements.tsv"
META="$WORK/meta.env"
: > "$MEAS"
TIMEF="$WORK/.time"

# Busy CPU time of the whole machine so far, in clock ticks (user+nice+system+irq+softirq+steal).
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# measure KEY SCALE REP LOG cmd...  -> runs cmd; sets LAST_WALL (s), LAST_RSS (KiB) and
# LAST_OTHER (CPU seconds used by *other* processes meanwhile: machine busy time minus the
# command's user+system time); appends a line to $MEAS unless KEY is empty.
measure() {
  local key="$1" scale="$2" rep="$3" log="$4"; shift 4
  local t0 t1 b0 b1
  echo "+ $*" >> "$log"
  b0=$(busy_ticks)
  t0=$(date +%s%N)
  if ! /usr/bin/time -f "%e %M %U %S" -o "$TIMEF" "$@" >> "$log" 2>&1; then
    echo "bench: FAILED: $*" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  b1=$(busy_ticks)
  LAST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  LAST_RSS=$(tail -n 1 "$TIMEF" | awk '{print $2}')
  LAST_OTHER=$(tail -n 1 "$TIMEF" | awk -v a="$b0" -v b="$b1" -v hz="$HZ" \
    '{ o = (b - a) / hz - $3 - $4; if (o < 0) o = 0; printf "%.2f", o }')
  if [[ -n "$key" ]]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scale" "$key" "$rep" "$LAST_WALL" "$LAST_RSS" "$LAST_OTHER" >> "$MEAS"
  fi
}

# orch_both KEY SCALE REP DIR: both bundled pipelines in one `orchestrator run` (one
# process, as a cron line would run them); records the whole run, and each pipeline's own
# time from its summary line (`pipeline `X`: ok in N s`; RSS: the process's).
orch_both() {
  local key="$1" scale="$2" rep="$3" dir="$4" p w
  # cwd = the run directory, so a state directory relative to cwd or to the pipeline
  # file (copied there) stays inside it.
  measure "" "$scale" "$rep" "$dir/orch.log" \
    env -C "$dir" "$BIN/orchestrator" run pipelines/late_payment.yaml pipelines/product_mix.yaml \
      --param "as_of=$AS_OF" --param "payment_term_days=$TERM_DAYS" \
      --param "input_dir=$dir/input" --param "output_dir=$dir/out"
  for p in late_payment product_mix; do
    w=$(grep -o "pipeline \`$p\`: ok in [0-9.]*s" "$dir/orch.log" | tail -n 1 | sed 's/.* ok in \([0-9.]*\)s/\1/')
    [[ -n "$w" ]] || die "no summary line for $p in $dir/orch.log"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scale" "$key.$p" "$rep" "$w" "$LAST_RSS" "0" >> "$MEAS"
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$scale" "$key" "$rep" "$LAST_WALL" "$LAST_RSS" "$LAST_OTHER" >> "$MEAS"
  echo "   $key: ${LAST_WALL}s, ${LAST_RSS} KiB"
}

clean_dir() {  # empties a directory (outputs and any .orchestrator state) and recreates it
  rm -rf "$1"; mkdir -p "$1"
}

# --- machine / versions -----------------------------------------------------------------
{
  echo "DATE=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "ARGS=$ARGS"
  echo "CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "NPROC=$(nproc)"
  echo "MEM=$(awk '/MemTotal/ {printf "%.1f GiB (MemTotal %s kB)", $2/1048576, $2}' /proc/meminfo)"
  echo "KERNEL=$(uname -sr)"
  echo "LOAD=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "RUSTC=$(rustc --version 2>/dev/null || echo '?')"
  echo "POLARS=$(awk '/^name = "polars"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$ROOT/Cargo.lock") (workspace feature set; orchestrator and baseline built by the same cargo build --release)"
  echo "DUCKDB=$("$PY" -c 'import duckdb; print(duckdb.__version__)')"
  echo "PYTHON=$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  if [[ $WITH_SPARK == 1 ]]; then
    echo "PYSPARK=$("$PY" -c 'import pyspark; print(pyspark.__version__)')"
    echo "JAVA=$(java -version 2>&1 | head -n 1)"
  fi
  echo "COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes')"
  echo "SEED=$SEED"
  echo "AS_OF=$AS_OF"
  echo "TERM=$TERM_DAYS"
  echo "REPS=$REPS"
  [[ -n "$SPARK_NOTE" ]] && echo "SPARK_NOTE=$SPARK_NOTE"
} > "$META"
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }'; then
  echo "== warning: load average is $load1 before the run; timings will be noisy"
fi

# --- per scale --------------------------------------------------------------------------
AGREE_ALL=1
for SCALE in "${SCALE_LIST[@]}"; do
  SD="$WORK/scale-$SCALE"
  DATA="$SD/data"
  STAMP="scale=$SCALE seed=$SEED datagen=$("$BIN/datagen" --version 2>/dev/null)"
  mkdir -p "$SD"
  if [[ ! -f "$DATA/.stamp" || "$(cat "$DATA/.stamp")" != "$STAMP" ]]; then
    echo "== scale $SCALE: generating data ($STAMP)"
    rm -rf "$DATA"
    msg="$("$BIN/datagen" --scale "$SCALE" --seed "$SEED" --out "$DATA" 2>&1)" \
      || die "datagen failed: $msg"
    # "datagen: wrote DIR (accounts.csv 2000, skus.csv 316, ... rows) ..." -> the counts
    echo "$msg" | sed -n 's/.*(\(accounts.csv[^)]*\)).*/\1/p' | sed 's/\.csv//g; s/invoice_line_items/line items/' > "$DATA/.rows"
    echo "$STAMP" > "$DATA/.stamp"
  else
    echo "== scale $SCALE: reusing $DATA"
  fi
  echo "ROWS_$SCALE=$(cat "$DATA/.rows" 2>/dev/null)" >> "$META"

  ORCH="$SD/orch"
  for ((rep = 1; rep <= REPS; rep++)); do
    echo "-- scale $SCALE, rep $rep/$REPS"
    # (1) full refresh on a fresh copy of the data, no outputs, no state.
    clean_dir "$ORCH"
    mkdir -p "$ORCH/pipelines" "$ORCH/out"
    cp "$ROOT/pipelines/late_payment.yaml" "$ROOT/pipelines/product_mix.yaml" "$ORCH/pipelines/"
    cp -r "$DATA" "$ORCH/input"
    rm -f "$ORCH/input/.stamp" "$ORCH/input/.rows"
    orch_both orch_full "$SCALE" "$rep" "$ORCH"
    clean_dir "$SD/out-orch-full"; cp "$ORCH"/out/*.parquet "$ORCH"/out/*.csv "$SD/out-orch-full/"
    # (2) the same again, nothing changed.
    orch_both orch_noop "$SCALE" "$rep" "$ORCH"
    clean_dir "$SD/out-orch-noop"; cp "$ORCH"/out/*.parquet "$ORCH"/out/*.csv "$SD/out-orch-noop/"
    # (3) one more day of data appended to the copy, then rerun.
    "$BIN/datagen" --append-days 1 --seed "$SEED" --out "$ORCH/input" >> "$ORCH/orch.log" 2>&1 \
      || die "datagen --append-days failed (see $ORCH/orch.log)"
    orch_both orch_append "$SCALE" "$rep" "$ORCH"
    clean_dir "$SD/out-orch-append"; cp "$ORCH"/out/*.parquet "$ORCH"/out/*.csv "$SD/out-orch-append/"

    # (4) hand-written polars.
    clean_dir "$SD/out-polars"
    measure polars "$SCALE" "$rep" "$SD/polars.log" \
      "$BIN/polars-baseline" --input-dir "$DATA" --output-dir "$SD/out-polars" \
        --as-of "$AS_OF" --payment-term-days "$TERM_DAYS"
    echo "   polars: ${LAST_WALL}s, ${LAST_RSS} KiB"

    # (5) DuckDB.
    clean_dir "$SD/out-duckdb"
    measure duckdb "$SCALE" "$rep" "$SD/duckdb.log" \
      "$PY" "$BENCH/duckdb_bench.py" --data "$DATA" --out "$SD/out-duckdb" \
        --as-of "$AS_OF" --payment-term-days "$TERM_DAYS"
    echo "   duckdb: ${LAST_WALL}s, ${LAST_RSS} KiB"

    # (6) PySpark.
    if [[ $WITH_SPARK == 1 ]]; then
      clean_dir "$SD/out-spark"
      rm -f "$SD/spark.rss"
      measure "" "$SCALE" "$rep" "$SD/spark.log" \
        "$PY" "$BENCH/spark_bench.py" --data "$DATA" --out "$SD/out-spark" \
          --as-of "$AS_OF" --payment-term-days "$TERM_DAYS" --rss-out "$SD/spark.rss"
      [[ -s "$SD/spark.rss" ]] && LAST_RSS=$(cat "$SD/spark.rss")
      # (The JVM's CPU time is not in python's rusage: no "other CPU" figure for Spark.)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$SCALE" spark "$rep" "$LAST_WALL" "$LAST_RSS" "-" >> "$MEAS"
      echo "   spark: ${LAST_WALL}s, ${LAST_RSS} KiB"
    fi
  done

  # The baseline on the appended data (not timed), to check the orchestrator's rerun.
  clean_dir "$SD/out-polars-append"
  "$BIN/polars-baseline" --input-dir "$ORCH/input" --output-dir "$SD/out-polars-append" \
    --as-of "$AS_OF" --payment-term-days "$TERM_DAYS" >> "$SD/polars.log" 2>&1 \
    || die "polars-baseline failed on the appended data (see $SD/polars.log)"

  echo "== scale $SCALE: comparing outputs"
  engines=(polars="$SD/out-polars" orchestrator-full="$SD/out-orch-full"
           orchestrator-rerun="$SD/out-orch-noop" duckdb="$SD/out-duckdb")
  [[ $WITH_SPARK == 1 ]] && engines+=(spark="$SD/out-spark")
  if "$PY" "$BENCH/compare.py" "${engines[@]}" | tee "$SD/compare.txt" \
     && "$PY" "$BENCH/compare.py" polars-appended="$SD/out-polars-append" \
          orchestrator-after-append="$SD/out-orch-append" | tee -a "$SD/compare.txt"; then
    names="$(printf '%s\n' "${engines[@]}" | cut -d= -f1 | paste -sd, | sed 's/,/, /g')"
    echo "AGREEMENT=scale $SCALE: all outputs agree ($names; after --append-days 1: polars vs the orchestrator's rerun)." >> "$META"
  else
    AGREE_ALL=0
    echo "AGREEMENT=scale $SCALE: **OUTPUTS DIFFER**, see bench/work/scale-$SCALE/compare.txt" >> "$META"
    echo "bench: scale $SCALE: the engines' outputs DIFFER (see $SD/compare.txt)" >&2
  fi
done

mkdir -p "$(dirname "$RESULTS")"
echo
"$PY" "$BENCH/report.py" "$MEAS" "$META" "$RESULTS"
echo
echo "== wrote $RESULTS"
if [[ $AGREE_ALL != 1 ]]; then
  echo "bench: FAILED: the engines' outputs differ" >&2
  exit 1
fi

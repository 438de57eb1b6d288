#!/usr/bin/env python3
"""PySpark (local mode) engine for the benchmark: late_payment and product_mix, parquet + csv.

The same contract as tests/reference/duckdb_reference.py, written with the DataFrame API:
counted invoices (issued on or before as_of, account in accounts), invoice statistics from
invoices alone, late amounts from line items with a known SKU, distinct purchased names per
account. The wide join (line items x counted invoices x SKUs) is cached and shared by both
outputs; the SKU table is broadcast.

Outputs: OUT/late_payment.{parquet,csv} and OUT/product_mix.{parquet,csv}, each one file
(Spark writes a directory of part files; the single part is moved into place). In Parquet
`sku_types_purchased` is a list of strings, in CSV the names joined with ','.

Peak memory: the work happens in a JVM child process. With --rss-out FILE, the sum of this
Python process's and the JVM's peak RSS (VmHWM, KiB) is written to FILE just before the
JVM is stopped (/usr/bin/time would only see one of the two processes).

Usage: spark_bench.py --data DIR --as-of YYYY-MM-DD [--payment-term-days 30] --out DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import shutil
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

LATE_PAYMENT_COLUMNS = [
    "account_id", "company_name", "company_address", "contact_person",
    "contact_phone", "gender", "joining_date", "total_invoices",
    "total_late_invoices", "total_days_since_issue", "late_invoice_amount",
]
PRODUCT_MIX_COLUMNS = ["account_id", "company_name", "sku_count", "sku_types_purchased"]


def vm_hwm_kib(pid: str | int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def schema(*cols: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(n, t, True) for n, t in cols])


def write_single(df, fmt: str, target: str, tmp: str) -> None:
    """Writes df as one file `target` (via a one-partition Spark write into `tmp`)."""
    w = df.coalesce(1).write.mode("overwrite")
    if fmt == "csv":
        w.option("header", True).option("quote", '"').option("escape", '"').csv(tmp)
    else:
        w.parquet(tmp)
    parts = glob.glob(os.path.join(tmp, f"part-*.{fmt}")) + \
        glob.glob(os.path.join(tmp, f"part-*.*.{fmt}"))
    parts = sorted(set(parts))
    if len(parts) != 1:
        raise SystemExit(f"spark_bench: expected one part file in {tmp}, got {parts}")
    shutil.move(parts[0], target)
    shutil.rmtree(tmp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--payment-term-days", type=int, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--rss-out")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    cores = os.cpu_count() or 2
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("orchestrator-bench")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(max(4, 4 * cores)))
        .config("spark.sql.adaptive.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    d = args.data
    csv = spark.read.option("header", True).option("quote", '"').option("escape", '"')

    accounts = csv.option("multiLine", True).schema(schema(
        ("account_id", T.LongType()), ("company_name", T.StringType()),
        ("company_address", T.StringType()), ("contact_person", T.StringType()),
        ("contact_phone", T.StringType()), ("gender", T.StringType()),
        ("joining_date", T.StringType()),
    )).csv(os.path.join(d, "accounts.csv"))
    csv = spark.read.option("header", True).option("quote", '"').option("escape", '"')
    invoices = csv.schema(schema(
        ("invoice_id", T.LongType()), ("account_id", T.LongType()),
        ("date_issued", T.DateType()),
    )).option("dateFormat", "yyyy-MM-dd").csv(os.path.join(d, "invoices.csv"))
    line_items = csv.schema(schema(
        ("invoice_id", T.LongType()), ("item_id", T.StringType()), ("quantity", T.LongType()),
    )).csv(os.path.join(d, "invoice_line_items.csv"))
    skus = csv.schema(schema(
        ("item_id", T.StringType()), ("item_name", T.StringType()),
        ("item_description", T.StringType()), ("item_cost_price", T.DoubleType()),
        ("item_retail_price", T.DoubleType()),
    )).csv(os.path.join(d, "skus.csv"))

    as_of = F.lit(args.as_of)
    accounts = accounts.select(
        "account_id", "company_name",
        F.regexp_replace("company_address", r"[\r\n]+", " ").alias("company_address"),
        "contact_person", "contact_phone", "gender",
        F.to_date("joining_date", "d/M/yyyy").alias("joining_date"),
    ).cache()

    counted = (
        invoices.where(F.col("date_issued") <= as_of)
        .join(accounts.select("account_id"), "account_id")
        .select("invoice_id", "account_id",
                F.datediff(as_of, F.col("date_issued")).cast("long").alias("days_since_issue"))
        .withColumn("is_late", F.col("days_since_issue") > F.lit(args.payment_term_days))
        .cache()
    )
    stats = counted.groupBy("account_id").agg(
        F.count(F.lit(1)).cast("long").alias("total_invoices"),
        F.sum(F.when(F.col("is_late"), 1).otherwise(0)).cast("long").alias("total_late_invoices"),
        F.sum("days_since_issue").cast("long").alias("total_days_since_issue"),
    )
    purchases = (
        line_items.join(F.broadcast(skus.select("item_id", "item_name", "item_retail_price")),
                        "item_id")
        .join(counted.select("invoice_id", "account_id", "is_late"), "invoice_id")
        .select("account_id", "item_name", "is_late",
                (F.col("quantity").cast("double") * F.col("item_retail_price"))
                .alias("line_amount"))
        .cache()
    )
    late_amounts = (
        purchases.where(F.col("is_late")).groupBy("account_id")
        .agg(F.sum("line_amount").alias("late_invoice_amount"))
    )
    late_payment = (
        accounts.join(stats, "account_id")
        .join(late_amounts, "account_id", "left")
        .fillna(0.0, subset=["late_invoice_amount"])
        .select(*LATE_PAYMENT_COLUMNS)
        .orderBy("account_id")
    )
    product_mix = (
        purchases.select("account_id", "item_name").distinct()
        .groupBy("account_id")
        .agg(F.count(F.lit(1)).cast("long").alias("sku_count"),
             F.array_sort(F.collect_list("item_name")).alias("sku_types_purchased"))
        .join(accounts.select("account_id", "company_name"), "account_id")
        .select(*PRODUCT_MIX_COLUMNS)
        .orderBy("account_id")
    )

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    # Materialise each result once (small), then write it twice.
    late_payment = late_payment.cache()
    product_mix = product_mix.cache()
    n_late = late_payment.count()
    n_mix = product_mix.count()
    write_single(late_payment, "parquet", os.path.join(out, "late_payment.parquet"),
                 os.path.join(out, "_tmp_late_pq"))
    write_single(late_payment, "csv", os.path.join(out, "late_payment.csv"),
                 os.path.join(out, "_tmp_late_csv"))
    write_single(product_mix, "parquet", os.path.join(out, "product_mix.parquet"),
                 os.path.join(out, "_tmp_mix_pq"))
    write_single(
        product_mix.withColumn("sku_types_purchased",
                               F.array_join("sku_types_purchased", ",")),
        "csv", os.path.join(out, "product_mix.csv"), os.path.join(out, "_tmp_mix_csv"))

    if args.rss_out:
        jvm = spark.sparkContext._gateway.proc.pid  # spark-submit execs java: same pid
        total = vm_hwm_kib("self") + vm_hwm_kib(jvm)
        with open(args.rss_out, "w") as f:
            f.write(f"{total}\n")
    print(f"spark {spark.version}: late_payment {n_late} rows, product_mix {n_mix} rows "
          f"-> {out} ({time.perf_counter() - t0:.3f}s)", file=sys.stderr)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

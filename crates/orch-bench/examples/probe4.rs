use orch_bench::*;
use polars::prelude::*;
use std::time::Instant;
fn main() -> anyhow::Result<()> {
    let d = std::env::args().nth(1).unwrap();
    let eng = if std::env::args().nth(2).as_deref() == Some("s") {
        Engine::Streaming
    } else {
        Engine::InMemory
    };
    let opts = Options {
        input_dir: d.into(),
        output_dir: "/tmp/p4".into(),
        as_of_days: parse_date("2021-03-01")?,
        payment_term_days: 30,
        engine: eng,
    };
    let t = Instant::now();
    let mut out = compute(&opts)?;
    eprintln!("compute {:?}", t.elapsed());
    std::fs::create_dir_all("/tmp/p4")?;
    let t = Instant::now();
    let f = std::fs::File::create("/tmp/p4/mix.parquet")?;
    ParquetWriter::new(f).finish(&mut out.product_mix)?;
    eprintln!("mix parquet {:?}", t.elapsed());
    let t = Instant::now();
    let mut flat = out
        .product_mix
        .clone()
        .lazy()
        .with_column(col("sku_types_purchased").list().join(lit(","), true))
        .collect()?;
    eprintln!("mix flatten {:?}", t.elapsed());
    let t = Instant::now();
    let f = std::fs::File::create("/tmp/p4/mix.csv")?;
    CsvWriter::new(std::io::BufWriter::new(f)).finish(&mut flat)?;
    eprintln!("mix csv {:?}", t.elapsed());
    let t = Instant::now();
    let f = std::fs::File::create("/tmp/p4/late.parquet")?;
    ParquetWriter::new(f).finish(&mut out.late_payment)?;
    let f = std::fs::File::create("/tmp/p4/late.csv")?;
    CsvWriter::new(std::io::BufWriter::new(f)).finish(&mut out.late_payment)?;
    eprintln!("late both {:?}", t.elapsed());
    Ok(())
}

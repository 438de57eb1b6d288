use polars::prelude::*;
use std::time::Instant;
fn main() -> PolarsResult<()> {
    let d = std::env::args().nth(1).unwrap();
    let t = Instant::now();
    let schema: Schema = [
        ("invoice_id", DataType::Int64),
        ("item_id", DataType::String),
        ("quantity", DataType::Int64),
    ]
    .into_iter()
    .map(|(n, t)| Field::new(n.into(), t))
    .collect();
    let li = LazyCsvReader::new(PlRefPath::new(
        format!("{d}/invoice_line_items.csv").as_str(),
    ))
    .with_has_header(true)
    .with_schema(Some(Arc::new(schema)))
    .finish()?;
    let df = li.clone().collect()?;
    eprintln!("scan line items: {:?} {}", t.elapsed(), df.height());
    let t = Instant::now();
    let df = li
        .clone()
        .select([col("invoice_id"), col("quantity")])
        .collect()?;
    eprintln!(
        "scan line items (ints only): {:?} {}",
        t.elapsed(),
        df.height()
    );
    let t = Instant::now();
    let df = li.clone().with_streaming(true).collect()?;
    eprintln!(
        "scan line items streaming: {:?} {}",
        t.elapsed(),
        df.height()
    );
    let schema: Schema = [
        ("invoice_id", DataType::Int64),
        ("account_id", DataType::Int64),
        ("date_issued", DataType::Date),
    ]
    .into_iter()
    .map(|(n, t)| Field::new(n.into(), t))
    .collect();
    let t = Instant::now();
    let inv = LazyCsvReader::new(PlRefPath::new(format!("{d}/invoices.csv").as_str()))
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .finish()?;
    let df = inv.collect()?;
    eprintln!("scan invoices: {:?} {}", t.elapsed(), df.height());
    Ok(())
}

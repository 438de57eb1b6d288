//! `polars-baseline`: computes late_payment and product_mix with a hand-written polars plan.

use std::path::PathBuf;

// polars allocates and frees large buffers at a high rate. With glibc's malloc a run spent
// about a third of its time in the kernel, faulting in pages it had just given back
// (measured with perf and `time`). jemalloc keeping freed pages for reuse (a run is a batch
// process: they go back to the system when it exits) cut that by half and the wall time by
// a fifth. The baseline uses the same allocator and settings: the benchmark compares plans.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static malloc_conf: Option<&'static std::ffi::CStr> = Some(c"dirty_decay_ms:-1,muzzy_decay_ms:-1");
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use orch_bench::{compute, explain, parse_date, write, Options};
use polars::prelude::Engine;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineArg {
    /// polars' in-memory engine.
    InMemory,
    /// polars' streaming engine.
    Streaming,
}

/// Hand-written polars implementation of the bundled pipelines `late_payment` and
/// `product_mix` (the benchmark floor). Writes late_payment.{parquet,csv} and
/// product_mix.{parquet,csv} to the output directory.
#[derive(Debug, Parser)]
#[command(name = "polars-baseline", version)]
struct Cli {
    /// Directory with accounts.csv, invoices.csv, invoice_line_items.csv and skus.csv.
    #[arg(long, value_name = "DIR")]
    input_dir: PathBuf,
    /// Where the outputs go (created if missing).
    #[arg(long, value_name = "DIR")]
    output_dir: PathBuf,
    /// The report date (yyyy-mm-dd); invoices issued after it do not count.
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: String,
    /// An invoice is late when more than this many days have passed since issue.
    #[arg(long, default_value_t = 30)]
    payment_term_days: i64,
    /// The polars engine.
    #[arg(long, value_enum, default_value_t = EngineArg::InMemory)]
    engine: EngineArg,
    /// Print the optimized plan (both outputs) and exit.
    #[arg(long)]
    explain: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polars-baseline: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let opts = Options {
        input_dir: cli.input_dir,
        output_dir: cli.output_dir,
        as_of_days: parse_date(&cli.as_of)?,
        payment_term_days: cli.payment_term_days,
        engine: match cli.engine {
            EngineArg::InMemory => Engine::InMemory,
            EngineArg::Streaming => Engine::Streaming,
        },
    };
    if cli.explain {
        println!("{}", explain(&opts)?);
        return Ok(());
    }
    let mut out = compute(&opts)?;
    let computed = started.elapsed();
    write(&mut out, &opts.output_dir)?;
    eprintln!(
        "polars-baseline: late_payment {} rows, product_mix {} rows -> {} (query {:.3}s, total {:.3}s)",
        out.late_payment.height(),
        out.product_mix.height(),
        opts.output_dir.display(),
        computed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

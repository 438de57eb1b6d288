use orch_bench::*;
use polars::prelude::*;
fn main() -> anyhow::Result<()> {
    let d = std::env::args().nth(1).unwrap();
    let opts = Options {
        input_dir: d.into(),
        output_dir: "/tmp/x".into(),
        as_of_days: parse_date("2021-03-01")?,
        payment_term_days: 30,
        engine: Engine::InMemory,
    };
    let (late, mix) = plans(&opts)?;
    for (n, lf) in [("late", late), ("mix", mix)] {
        let (_df, prof) = lf.profile()?;
        std::env::set_var("POLARS_FMT_MAX_ROWS", "100");
        std::env::set_var("POLARS_FMT_STR_LEN", "100");
        println!("{n}\n{prof}");
    }
    Ok(())
}

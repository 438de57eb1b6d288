//! `orchestrator`: the command line. Parses arguments, then hands over to the engine.

mod args;
mod summary;

use args::{Cli, Command, GraphFormat, LogFormat};
use clap::Parser;
use orch_engine::{compile_file, execute, CompileOptions, Event, Plan, RunOptions};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes: the contract with cron jobs and scripts.
const EXIT_OK: u8 = 0;
const EXIT_RUN_FAILED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            });
        }
    };
    let interactive = std::io::stderr().is_terminal() && !cli.quiet;
    init_logging(cli.log_format, interactive);
    ExitCode::from(dispatch(cli, interactive))
}

fn init_logging(format: LogFormat, interactive: bool) {
    use tracing_subscriber::EnvFilter;
    // With a progress bar on screen, default to warnings so the bar stays readable;
    // RUST_LOG always wins.
    let default = if interactive {
        "warn"
    } else {
        "warn,orch_engine=info,orchestrator=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(interactive).init(),
    }
}

fn dispatch(cli: Cli, interactive: bool) -> u8 {
    match cli.command {
        Command::Steps => {
            print!("{}", summary::step_reference());
            EXIT_OK
        }
        Command::Validate { pipeline } => match load(&pipeline, interactive) {
            Ok(plan) => {
                println!(
                    "{}: ok: pipeline `{}`, {} steps, params: {}",
                    plan.source.name,
                    plan.name,
                    plan.steps.len(),
                    plan.params
                        .iter()
                        .map(|(k, _, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                EXIT_OK
            }
            Err(code) => code,
        },
        Command::Graph { pipeline, format } => match load(&pipeline, interactive) {
            Ok(plan) => {
                match format {
                    GraphFormat::Mermaid => print!("{}", orch_engine::graph::mermaid(&plan)),
                    GraphFormat::Dot => print!("{}", orch_engine::graph::dot(&plan)),
                }
                EXIT_OK
            }
            Err(code) => code,
        },
        Command::Run { pipeline, jobs } => {
            let plan = match load(&pipeline, interactive) {
                Ok(p) => Arc::new(p),
                Err(code) => return code,
            };
            run(plan, jobs, interactive, cli.quiet)
        }
    }
}

/// Resolves arguments and compiles the pipeline; prints every problem on failure.
fn load(args: &args::PipelineArgs, interactive: bool) -> Result<Plan, u8> {
    let resolved = args.resolve().map_err(|msg| {
        eprintln!("error: {msg}");
        EXIT_BAD_INPUT
    })?;
    let opts = CompileOptions {
        params: resolved.params,
        ..CompileOptions::default()
    };
    match compile_file(&resolved.file, &opts) {
        Ok((plan, warnings)) => {
            if !warnings.is_empty() {
                eprint!("{}", plan.source.render(&warnings, interactive));
            }
            Ok(plan)
        }
        Err(e) => {
            eprint!("{}", e.render(interactive));
            Err(EXIT_BAD_INPUT)
        }
    }
}

fn run(plan: Arc<Plan>, jobs: Option<usize>, interactive: bool, quiet: bool) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_RUN_FAILED;
        }
    };
    let progress = interactive.then(|| summary::Progress::new(&plan.name));
    let mut opts = RunOptions::default();
    if let Some(j) = jobs {
        opts.max_parallel = j.max(1);
    }
    if let Some(p) = &progress {
        let p = p.clone();
        opts.observer = Some(Arc::new(move |e: &Event| p.on_event(e)));
    }
    tracing::info!(pipeline = %plan.name, params = ?plan.params.iter().collect::<Vec<_>>(), "run started");
    let result = runtime.block_on(execute(Arc::clone(&plan), opts));
    if let Some(p) = &progress {
        p.finish();
    }
    match result {
        Ok(report) => {
            tracing::info!(pipeline = %plan.name, secs = report.elapsed.as_secs_f64(), "run finished");
            if !quiet {
                print!("{}", summary::table(&report, None));
            }
            EXIT_OK
        }
        Err(failure) => {
            tracing::error!(pipeline = %plan.name, step = %failure.step, error = %failure.error, "run failed");
            if !quiet {
                eprint!("{}", summary::table(&failure.report, Some(&failure.step)));
            }
            eprintln!("error: step `{}` failed: {}", failure.step, failure.error);
            if let Some(h) = failure.error.hint() {
                eprintln!("  help: {h}");
            }
            eprintln!("  no output was changed: previous outputs are as they were");
            EXIT_RUN_FAILED
        }
    }
}

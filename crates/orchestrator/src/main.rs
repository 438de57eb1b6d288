//! `orchestrator`: the command line. Parses arguments, then hands over to the engine.

mod args;

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
mod summary;

use args::{CacheCommand, Cli, Command, GraphFormat, LogFormat, StateCommand};
use clap::Parser;
use orch_engine::{
    compile_file, run_with_state, state_dir, CompileOptions, Event, Plan, RunConfig, RunOptions,
};
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
    orch_engine::route_polars_warnings();
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
        Command::Run {
            pipelines,
            jobs,
            full_refresh,
            state,
        } => {
            // Every file is checked (and every problem reported) before anything runs.
            let loaded: Vec<_> = pipelines
                .each()
                .iter()
                .map(|p| load(p, interactive))
                .collect();
            if let Some(code) = loaded.iter().find_map(|l| l.as_ref().err()) {
                return *code;
            }
            let plans: Vec<Arc<Plan>> = loaded.into_iter().flatten().map(Arc::new).collect();
            let dirs: Vec<_> = plans
                .iter()
                .map(|p| state_dir(p, state.state_dir.as_deref()))
                .collect();
            // A state folder keeps its records per pipeline name: two pipelines of one name
            // would take each other's records (and recompute everything, every time).
            for (i, (a, dir)) in plans.iter().zip(&dirs).enumerate() {
                if let Some((b, _)) = plans[..i]
                    .iter()
                    .zip(&dirs[..i])
                    .find(|(b, d)| b.name == a.name && *d == dir)
                {
                    eprintln!(
                        "error: `{}` and `{}` are both named `{}` and keep their state in `{}`",
                        b.source.name,
                        a.source.name,
                        a.name,
                        dir.display()
                    );
                    eprintln!("  help: give each pipeline its own `name:` (or run them with different `--state-dir`s)");
                    return EXIT_BAD_INPUT;
                }
            }
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
            for (i, (plan, dir)) in plans.iter().zip(dirs).enumerate() {
                let code = run(
                    &runtime,
                    Arc::clone(plan),
                    dir,
                    full_refresh,
                    jobs,
                    interactive,
                    cli.quiet,
                );
                if code != EXIT_OK {
                    let rest: Vec<_> = plans[i + 1..]
                        .iter()
                        .map(|p| p.source.name.as_str())
                        .collect();
                    if !rest.is_empty() {
                        eprintln!("  not run (after this failure): {}", rest.join(", "));
                    }
                    return code;
                }
            }
            EXIT_OK
        }
        Command::Status { pipeline, state } => {
            with_store(&pipeline, &state, interactive, false, |plan, store| {
                print!("{}", summary::status(plan, store)?);
                Ok(())
            })
        }
        Command::History { pipeline, state } => {
            with_store(&pipeline, &state, interactive, false, |plan, store| {
                print!("{}", summary::history(plan, store)?);
                Ok(())
            })
        }
        Command::State {
            command:
                StateCommand::Reset {
                    pipeline,
                    step,
                    state,
                },
        } => with_store(&pipeline, &state, interactive, true, |plan, store| {
            if let Some(s) = &step {
                if plan.step(s).is_none() {
                    return Err(format!("pipeline `{}` has no step `{s}`", plan.name));
                }
            }
            let n = store
                .reset(&plan.name, step.as_deref())
                .map_err(|e| e.to_string())?;
            println!(
                "cleared the state of {n} step(s) of `{}`; the next run recomputes them",
                plan.name
            );
            Ok(())
        }),
        Command::Cache {
            command: CacheCommand::Prune { pipeline, state },
        } => {
            let plan = match load(&pipeline, interactive) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let dir = state_dir(&plan, state.state_dir.as_deref());
            match orch_engine::runner::prune_cache(&dir) {
                Ok((n, bytes)) => {
                    println!(
                        "removed {n} unused cached result(s), {bytes} bytes, from {}",
                        dir.display()
                    );
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    if let Some(h) = e.hint(&pipeline.file.display().to_string()) {
                        eprintln!("  help: {h}");
                    }
                    EXIT_RUN_FAILED
                }
            }
        }
    }
}

/// Compiles the pipeline, locks and opens its state folder, and runs `f`. With
/// `start_over`, a damaged state database is moved aside and a new one started (for `state
/// reset`, the fix the damage message suggests).
fn with_store<F>(
    pipeline: &args::PipelineArgs,
    state: &args::StateArgs,
    interactive: bool,
    start_over: bool,
    f: F,
) -> u8
where
    F: FnOnce(&Plan, &orch_state::Store) -> Result<(), String>,
{
    let plan = match load(pipeline, interactive) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let dir = state_dir(&plan, state.state_dir.as_deref());
    let opened = orch_state::StateLock::acquire(&dir).and_then(|lock| {
        if start_over {
            orch_state::Store::open_or_start_over(&dir).map(|(s, aside)| (lock, s, aside))
        } else {
            orch_state::Store::open(&dir).map(|s| (lock, s, None))
        }
    });
    let result = match opened {
        Ok((_lock, store, aside)) => {
            if let Some(aside) = aside {
                println!(
                    "the state database was damaged: moved it to {} and started a new one (all steps and the run history are forgotten)",
                    aside.display()
                );
            }
            f(&plan, &store)
        }
        Err(e) => {
            let hint = e.hint(&pipeline.file.display().to_string());
            Err(match hint {
                Some(h) => format!("{e}\n  help: {h}"),
                None => e.to_string(),
            })
        }
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_RUN_FAILED
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

/// Runs one compiled pipeline; prints its summary (or its failure).
fn run(
    runtime: &tokio::runtime::Runtime,
    plan: Arc<Plan>,
    state_dir: std::path::PathBuf,
    full_refresh: bool,
    jobs: Option<usize>,
    interactive: bool,
    quiet: bool,
) -> u8 {
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
    let cfg = RunConfig {
        state_dir,
        full_refresh,
        options: opts,
    };
    let result = runtime.block_on(run_with_state(Arc::clone(&plan), cfg));
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

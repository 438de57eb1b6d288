//! Command-line arguments: parsed by clap, then resolved into a validated [`Resolved`]
//! before anything runs (ripgrep's flags -> hiargs split).

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "orchestrator",
    version,
    about = "Run YAML data pipelines on a DAG engine",
    long_about = "Run YAML data pipelines on a DAG engine.\n\nExit codes: 0 success, 1 a run failed, 2 bad usage or a bad pipeline."
)]
pub struct Cli {
    /// Log format on stderr (levels follow RUST_LOG, default info).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// No progress bar and no summary table (errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// The pipeline file (YAML).
    pub file: PathBuf,

    /// Set a param: `--param as_of=2024-03-31` (repeatable).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

/// `run` takes several pipeline files (one cron line for the day's pipelines).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline files (YAML), run in this order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Set a param: `--param as_of=2024-03-31` (repeatable; given to every pipeline).
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

impl RunArgs {
    /// One [`PipelineArgs`] per file, each with the params.
    pub fn each(&self) -> Vec<PipelineArgs> {
        self.files
            .iter()
            .map(|f| PipelineArgs {
                file: f.clone(),
                params: self.params.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check pipelines and run them, one after the other in one process.
    ///
    /// Every file is checked before anything runs; the params apply to each. A run that
    /// fails stops the ones after it (a later pipeline may read an earlier one's output).
    Run {
        #[command(flatten)]
        pipelines: RunArgs,
        /// How many steps may run at once (default: the number of cores).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Ignore cached results and state: recompute and rewrite everything.
        #[arg(long)]
        full_refresh: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Show the last run and the state of each step.
    Status {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// List past runs.
    History {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Manage run state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Manage cached results.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Check a pipeline and report every problem found, without running it.
    Validate {
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Print the step graph.
    Graph {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// List the step types with an example each.
    Steps,
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The state folder (default: `<output_dir>/.orchestrator`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Forget a pipeline's state (all steps, or one): the next run recomputes it.
    Reset {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove cached results that no current step record uses.
    Prune {
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// Arguments after checking: what the commands act on.
#[derive(Debug)]
pub struct Resolved {
    pub file: PathBuf,
    pub params: Vec<(String, String)>,
}

impl PipelineArgs {
    /// Splits `NAME=VALUE` pairs; a malformed one is a usage error.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let mut params = Vec::new();
        for p in &self.params {
            match p.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    params.push((k.trim().to_string(), v.to_string()))
                }
                _ => {
                    return Err(format!(
                        "--param `{p}` is not NAME=VALUE (for example --param as_of=2024-03-31)"
                    ))
                }
            }
        }
        Ok(Resolved {
            file: self.file.clone(),
            params,
        })
    }
}

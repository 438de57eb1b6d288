//! Run-time errors, keeping user errors (bad data, missing files) apart from engine failures
//! and internal bugs, as DataFusion does.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Something the user can fix: a missing file, a value that does not parse.
    #[error("{message}")]
    User {
        message: String,
        hint: Option<String>,
    },
    /// An I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The data engine refused the work; usually bad data, shown with context.
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// A bug in orchestrator: please report it.
    #[error("internal error: {0} (this is a bug in orchestrator)")]
    Internal(String),
}

impl RunError {
    pub fn user(message: impl Into<String>, hint: Option<String>) -> Self {
        RunError::User {
            message: message.into(),
            hint,
        }
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        RunError::Internal(message.to_string())
    }

    pub fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        RunError::Io {
            path: path.to_string(),
            source,
        }
    }

    pub fn engine(context: impl fmt::Display, source: polars::prelude::PolarsError) -> Self {
        RunError::Engine {
            context: context.to_string(),
            source,
        }
    }

    /// Writing a file failed (a full disk, a folder that is not writable): says so, names
    /// the file, and tells what to do.
    pub fn write_failed(target: impl fmt::Display, source: std::io::Error) -> Self {
        let what = if is_disk_full(source.kind()) {
            "the disk is full"
        } else {
            "the write failed"
        };
        RunError::user(
            format!("cannot write `{target}`: {what}: {source}"),
            Some(
                io_hint(source.kind())
                    .unwrap_or("check the file system of that folder, then run again; previous outputs are unchanged")
                    .to_string(),
            ),
        )
    }

    /// The I/O error underneath, if this is one (directly or inside a polars error).
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            RunError::Io { source, .. } => Some(source),
            RunError::Engine { source, .. } => polars_io_error(source),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            RunError::User { hint, .. } => hint.as_deref(),
            RunError::Io { source, .. } => io_hint(source.kind()),
            RunError::Engine { source, .. } => {
                polars_io_error(source).and_then(|e| io_hint(e.kind()))
            }
            _ => None,
        }
    }
}

fn is_disk_full(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

fn io_hint(kind: std::io::ErrorKind) -> Option<&'static str> {
    match kind {
        std::io::ErrorKind::NotFound => {
            Some("check the path and the `input_dir`/`output_dir` params")
        }
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Some("check the permissions of the file and its folder")
        }
        k if is_disk_full(k) => Some(crate::storage::DISK_FULL_HINT),
        _ => None,
    }
}

/// The I/O error inside a polars error (polars wraps writer failures, sometimes in context).
fn polars_io_error(e: &polars::prelude::PolarsError) -> Option<&std::io::Error> {
    use polars::prelude::PolarsError;
    match e {
        PolarsError::IO { error, .. } => Some(error.as_ref()),
        PolarsError::Context { error, .. } => polars_io_error(error),
        _ => None,
    }
}

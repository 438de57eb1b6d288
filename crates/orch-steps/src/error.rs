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

    pub fn hint(&self) -> Option<&str> {
        match self {
            RunError::User { hint, .. } => hint.as_deref(),
            RunError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => {
                    Some("check the path and the `input_dir`/`output_dir` params")
                }
                std::io::ErrorKind::PermissionDenied => {
                    Some("check the permissions of the file and its folder")
                }
                _ => None,
            },
            _ => None,
        }
    }
}

//! The one error type of ragl-core: every variant says where (file, line) and what.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

/// Errors from reading and writing ragl's inputs and artifacts.
///
/// `Display` gives a one-line `path:line: message`, the form editors and `grep -n` use, so a
/// user can jump to the offending line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid UTF-8 (byte offset {offset} in the line)")]
    Utf8 {
        path: PathBuf,
        line: u64,
        offset: usize,
    },
    #[error("{path}:{line}: invalid JSON: {message}")]
    Json {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Artifact { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// True for errors caused by the content of the user's input (as opposed to the
    /// machine: disk full, permissions), which the CLI reports with exit code 2.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ),
            _ => true,
        }
    }
}

//! The one error type of ragl-core: every variant says where (file, line) and what.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

/// Errors from reading and writing ragl's inputs and artifacts.
///
/// `Display` gives a one-line `path:line: message`, the form editors and `grep -n` use, so a
/// user can jump to the offending line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is part of the message, not a separate cause, so that a chain of
    /// causes does not print it twice.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
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
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// The kind of an I/O error (a closed pipe, a full disk), if this is one.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }

    pub fn format(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// True for errors the user can fix in their files or paths (as opposed to the
    /// machine's: a full disk, an interrupted read), which the CLI reports with exit code 2.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Io { error, .. } => bad_path(error.kind()),
            _ => true,
        }
    }
}

/// I/O errors the user can fix: a path that is missing, unreadable, of the wrong kind (a
/// directory for a file, a file where a directory must be) or not valid data, and a disk
/// that is full or a file size limit that is reached.
pub fn bad_path(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::NotFound
            | K::InvalidData
            | K::InvalidInput
            | K::PermissionDenied
            | K::IsADirectory
            | K::NotADirectory
            | K::AlreadyExists
            | K::StorageFull
            | K::FileTooLarge
    )
}

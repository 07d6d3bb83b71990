//! One error type for the library, grouped by who is at fault (as the `image` crate does):
//! the caller's input, an unsupported feature, a limit of the device, the file system, or the GPU.

use std::path::PathBuf;

/// Everything that can go wrong in voxaug. Every variant carries a message that names the problem; new
/// variants may be added (match with a wildcard arm).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but is not a valid volume of the expected format (truncated, wrong magic, ...).
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
        /// The underlying error (a decoder's), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A pipeline (JSON or built in code) is malformed: unknown transform, unknown field, bad range.
    #[error("pipeline: {0}")]
    Pipeline(String),
    /// The data or arguments cannot be processed as asked (crop outside the volume, NaN spacing, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A valid request that this build does not support (a data type, a format variant, ...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A request that exceeds a limit of the device or of the library.
    #[error("limit exceeded: {0}")]
    Limits(String),
    /// A buffer could not be allocated: the memory there is (or the process's limit) is not enough.
    /// The message says what was asked for and what to do.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// No GPU adapter, a validation error, out of memory or a lost device.
    #[error("gpu: {0}")]
    Gpu(String),
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
            source: None,
        }
    }
    /// A format error caused by an underlying error (kept as the `source`).
    pub(crate) fn format_from(
        path: impl Into<PathBuf>,
        msg: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
            source: Some(Box::new(source)),
        }
    }
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }
    /// The same error with `what: ` before its message (a sample index, a file); I/O and format errors,
    /// which name their file already, are kept as they are.
    pub(crate) fn context(self, what: &str) -> Self {
        match self {
            Error::Pipeline(m) => Error::Pipeline(format!("{what}: {m}")),
            Error::InvalidInput(m) => Error::InvalidInput(format!("{what}: {m}")),
            Error::Unsupported(m) => Error::Unsupported(format!("{what}: {m}")),
            Error::Limits(m) => Error::Limits(format!("{what}: {m}")),
            Error::Gpu(m) => Error::Gpu(format!("{what}: {m}")),
            e => e,
        }
    }
    pub(crate) fn pipeline(msg: impl Into<String>) -> Self {
        Error::Pipeline(msg.into())
    }
}

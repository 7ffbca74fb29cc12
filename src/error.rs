//! Library errors: fatal problems that stop a run before anything is written.

use thiserror::Error;

/// A fatal error. Problems with single objects are results, not errors.
#[derive(Debug, Error)]
pub enum Error {
    /// Input that is not YAML/JSON or not Kubernetes objects.
    #[error("document {doc} (line {line}): {message}")]
    Input {
        /// 1-based number of the document in the stream.
        doc: usize,
        /// 1-based line in the whole input.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A bad policy or functionConfig.
    #[error("config: {0}")]
    Config(String),
    /// Input bytes that are not UTF-8.
    #[error("input is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
}

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
    /// Two objects the API server would take as one (same apiVersion group, kind, namespace and
    /// name): the run cannot harden both as they are.
    #[error("document {doc} (line {line}): {message} (the first is document {first_doc}, line {first_line}{first_item})")]
    SameObject {
        /// 1-based number of the second object's document in the stream.
        doc: usize,
        /// 1-based line of the second object's document in the whole input.
        line: usize,
        /// What is wrong, naming the object (and its `items[i]` when in a list).
        message: String,
        /// The first object's document number.
        first_doc: usize,
        /// The first object's document line in the whole input.
        first_line: usize,
        /// `, items[i]` when the first object is a list's item, else empty.
        first_item: String,
    },
    /// A bad policy or functionConfig.
    #[error("config: {0}")]
    Config(String),
    /// Input bytes that are not UTF-8.
    #[error("input is not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// Writing the results file ([`Options::results_to`](crate::Options::results_to)) failed.
    #[error("writing the results: {0}")]
    Results(std::io::Error),
}

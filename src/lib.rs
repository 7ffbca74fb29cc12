//! kube-harden: hardens Kubernetes workloads in manifests without losing anything else.
//!
//! [`process`] is the one core shared by the CLI, the KRM function modes and the WASM builds:
//! bytes in, bytes out, results on the side. It does no I/O of its own.

pub mod change;
pub mod config;
pub mod digest;
pub mod engine;
pub mod error;
pub mod facts;
pub mod krm;
pub mod model;
pub mod openapi;
pub mod policy;
pub mod prefetch;
pub mod pss;
pub mod rules;
pub mod typescript;
pub mod wasm_alloc;
pub mod yaml;

pub use engine::{process, process_bytes, InputForm, Options, Output, Stats};
pub use error::Error;

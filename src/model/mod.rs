//! The Kubernetes side: field paths and where workloads keep their pods.

pub mod path;
pub mod workload;

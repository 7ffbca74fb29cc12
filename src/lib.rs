//! kube-harden: hardens Kubernetes workloads in manifests without losing anything else.

pub mod yaml;

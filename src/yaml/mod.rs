//! YAML with Kubernetes meaning: splitting streams, a position-aware tree, YAML 1.1 resolution,
//! an emitter that quotes what must be quoted, and a patcher that edits documents in place.

pub mod emit;
pub mod fast;
pub mod patch;
pub mod resolve;
pub mod split;
pub mod tree;
pub mod verify;

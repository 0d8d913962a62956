//! The outside tools the pipeline drives: `docker` and `kind` (subprocesses) and the
//! Kubernetes API (kube-rs). Nothing else in infrad runs a process or talks to a cluster.
pub mod command;
pub mod docker;
pub mod kind;
pub mod kube;

pub use command::ToolError;

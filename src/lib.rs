//! infrad: keeps warm kind clusters and leases them to end-to-end test runs over gRPC.
pub mod api;
pub mod artifacts;
pub mod cli;
pub mod config;
mod connections;
pub mod daemon;
mod error;
pub mod image_ref;
pub mod leases;
pub mod overlay;
pub mod pipeline;
pub mod pool;
pub mod private;
pub mod store;
pub mod time;
pub mod timings;
pub mod tools;

pub use error::{Error, Result};

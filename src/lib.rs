//! infrad: keeps warm kind clusters and leases them to end-to-end test runs over gRPC.
pub mod config;
mod error;
pub mod store;
pub mod time;

pub use error::{Error, Result};

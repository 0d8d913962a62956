//! The TOML configuration file → validated, typed profiles.
//!
//! Every error names the file, the line and the key, because the person reading it is editing
//! that file. `deploy/infrad.example.toml` documents every key.
mod duration;
mod error;
mod raw;

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

pub use error::ConfigError;

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub profiles: BTreeMap<String, Arc<Profile>>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Pipelines running at once, daemon-wide (kind fails creating more than 2–3 clusters at once).
    pub max_concurrent_builds: usize,
}

/// A named environment recipe and its pool policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub pool: PoolPolicy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolPolicy {
    /// Ready clusters to keep (leased ones do not count).
    pub warm: u32,
    /// Clusters of this profile at most, in any state.
    pub max: u32,
    pub recycle: Recycle,
    pub lease_ttl: Duration,
    pub max_lease_ttl: Duration,
    pub acquire_wait: Duration,
    /// Consecutive failed builds after which Acquire fails fast.
    pub degraded_after: u32,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

/// What happens to a cluster whose lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recycle {
    /// Delete it and build a new one.
    Recreate,
    /// Delete what the test run added and hand it out again.
    Reset,
}

impl std::fmt::Display for Recycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Recycle::Recreate => "recreate",
            Recycle::Reset => "reset",
        })
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        raw::parse(text).map_err(|e| e.locate(path, text))
    }

    pub fn profile(&self, name: &str) -> Option<&Arc<Profile>> {
        self.profiles.get(name)
    }
}

#[cfg(test)]
mod tests;

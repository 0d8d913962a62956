//! The TOML configuration file → validated, typed profiles.
//!
//! Every error names the file, the line and the key, because the person reading it is editing
//! that file. Paths in the file are relative to the file. `deploy/infrad.example.toml`
//! documents every key.
mod artifacts;
mod duration;
mod error;
mod images_used;
mod pool;
mod raw;
mod recipe;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

pub use error::ConfigError;

/// The node image kind v0.32 uses by default, pinned by digest.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5";

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub tools: Tools,
    pub profiles: BTreeMap<String, Arc<Profile>>,
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Pipelines running at once, daemon-wide (kind fails creating more than 2–3 clusters at once).
    pub max_concurrent_builds: usize,
    /// Rebuild every profile's images this often (`None`: only on `infrad refresh`).
    pub refresh_interval: Option<Duration>,
}

/// The command-line tools the pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Tools {
    pub docker: PathBuf,
    pub kind: PathBuf,
}

/// A named environment recipe and its pool policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub pool: PoolPolicy,
    pub images: Vec<ImageSpec>,
    pub cluster: ClusterRecipe,
    pub bootstrap: Bootstrap,
    pub deploy: Vec<DeployStep>,
    /// A directory per cluster on every node, emptied for each lease.
    pub artifacts: Option<Artifacts>,
}

/// Where the cluster's artifacts directory appears on its nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifacts {
    /// Absolute path on every node (a `hostPath` volume there reaches the host directory).
    pub node_path: String,
    /// Each container's log is cut to its last this many bytes when collected.
    pub max_log_bytes: u64,
    /// Bound on collecting at release (flush included); what is done by then is kept.
    pub collect_timeout: Duration,
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

/// One image built in phase 1 and loaded in phase 3.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// The tag built and loaded, e.g. `demo-web:dev`.
    pub name: String,
    pub context: PathBuf,
    /// Absolute path of the Dockerfile (default: `Dockerfile` in the context).
    pub dockerfile: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
}

/// Phase 2: the kind cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecipe {
    /// A kind config file (`kind: Cluster`).
    pub config: Option<PathBuf>,
    /// Node image, pinned by digest.
    pub node_image: String,
    /// Passed to `kind create cluster --wait`.
    pub create_wait: Duration,
    /// How long the API server may take to answer after creation.
    pub ready_timeout: Duration,
}

/// Phase 2, after creation: CRDs and namespaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub manifests: Vec<PathBuf>,
    pub timeout: Duration,
}

/// Phase 4: one deploy step.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployStep {
    pub name: String,
    pub manifests: Vec<PathBuf>,
    /// The profile's images its manifests use; with none it need not wait for the load phase.
    pub images: Vec<String>,
    /// Steps that must be ready before this one starts.
    pub after: Vec<String>,
    pub timeout: Duration,
}

impl DeployStep {
    /// What the step waits for besides `after`, for people: `check-config` and `infrad build`
    /// print it.
    pub fn image_use(&self) -> String {
        if self.images.is_empty() {
            "uses no profile image: starts while the images load".into()
        } else {
            format!(
                "uses {}: starts once they are loaded",
                self.images.join(", ")
            )
        }
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

    /// Validates `text`, naming `path` in errors and resolving paths against its folder.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        raw::parse(text, base).map_err(|e| e.locate(path, text))
    }

    pub fn profile(&self, name: &str) -> Option<&Arc<Profile>> {
        self.profiles.get(name)
    }
}

#[cfg(test)]
mod tests;

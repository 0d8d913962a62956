use std::time::Duration;

use crate::{
    store::{EndReason, RunFailure, StateCounts},
    time::Millis,
};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the daemon can refuse or fail at. The API maps each to a gRPC code; the
/// internal ones (store, I/O) reach callers only as "internal error".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    #[error("no lease {0}")]
    LeaseNotFound(String),
    #[error("wrong token for lease {0}")]
    WrongToken(String),
    #[error("lease lost: {reason} at {}", crate::time::rfc3339(*.at))]
    LeaseLost { reason: EndReason, at: Millis },
    #[error(
        "no ready cluster of profile {profile:?} within {}: {} building, {} leased, {} recycling (max {max})",
        humantime::format_duration(*.waited), .counts.building, .counts.leased, .counts.recycling
    )]
    NoCluster {
        profile: String,
        waited: Duration,
        counts: StateCounts,
        max: u32,
    },
    #[error("profile {profile:?} is degraded: {reason}")]
    Degraded { profile: String, reason: String },
    #[error(
        "images: {reference:?} is not an image on the daemon's Docker host (docker image inspect \
         found no such image); build or pull it there, or give its image ID"
    )]
    ImageNotFound { reference: String },
    #[error("cannot look up the images: {0}")]
    ImageLookup(RunFailure),
    #[error("your images did not come up in cluster {cluster} (it is recycled): {failure}")]
    Overlay {
        cluster: String,
        failure: RunFailure,
    },
    #[error(
        "your images were not ready in cluster {cluster} within the wait of {} (it is recycled); \
         the step running then: {step}",
        humantime::format_duration(*.wait)
    )]
    OverlayTimedOut {
        cluster: String,
        wait: Duration,
        step: String,
    },
    #[error(
        "collect: profile {profile:?} has no artifacts directory; add to its config\n  \
         [profiles.{profile}.artifacts]\n  node_path = \"/infrad/artifacts\"\n\
         and restart the daemon (clusters built after that have it)"
    )]
    NoArtifacts { profile: String },
    #[error("flush: {step:?} is not a deploy step of profile {profile:?}; its steps: {steps}")]
    UnknownFlushStep {
        profile: String,
        step: String,
        steps: String,
    },
    #[error("lease {0} is being released already (collecting its artifacts)")]
    ReleaseUnderWay(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

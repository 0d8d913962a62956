//! Client for infrad, the daemon that leases warm kind clusters to end-to-end test runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), infrad_client::Error> {
//! use std::time::Duration;
//! let mut client = infrad_client::Client::connect_from_env().await?;
//! let lease = client
//!     .acquire(infrad_client::Acquire::new("demo").ttl(Duration::from_secs(600)))
//!     .await?;
//! // ... run the tests with KUBECONFIG=lease.kubeconfig_path(); it renews meanwhile ...
//! lease.release().await?;
//! # Ok(()) }
//! ```
mod acquire;
mod copy;
mod error;
mod guard;
mod holder;

use std::time::{Duration, SystemTime};

use tonic::transport::{Channel, Endpoint};

pub use acquire::Acquire;
pub use error::{Error, Result};
pub use guard::LeaseGuard;
pub use holder::default_holder;

/// Generated API types of `infrad.v1`.
// prost's oneof enums hold their messages inline: AcquireProgress's Lease outweighs Waiting,
// and one progress event at a time is not worth a Box in the public API.
#[allow(clippy::large_enum_variant)]
pub mod proto {
    tonic::include_proto!("infrad.v1");
}

use proto::lease_service_client::LeaseServiceClient;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// Environment variable naming the daemon's address.
pub const ADDR_ENV: &str = "INFRAD_ADDR";

/// What [`Client::acquire_with_progress`] reports before the lease.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Still waiting for a cluster.
    Waiting(&'a proto::Waiting),
    /// A step of putting the caller's images into its cluster started or ended.
    Overlay(&'a proto::OverlayStep),
}

/// A connection to one infrad daemon. Cheap to clone: clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: LeaseServiceClient<Channel>,
    addr: String,
}

impl Client {
    /// Connects to `addr` (`host:port` or `http://host:port`).
    pub async fn connect(addr: &str) -> Result<Self> {
        let uri = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let connect_err = |source| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        let channel = Endpoint::from_shared(uri)
            .map_err(connect_err)?
            .connect_timeout(Duration::from_secs(5))
            // Small RPCs: Nagle's algorithm would hold each one back for a delayed ACK.
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(60)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .connect()
            .await
            .map_err(connect_err)?;
        Ok(Self {
            inner: LeaseServiceClient::new(channel),
            addr: addr.to_string(),
        })
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connects to `$INFRAD_ADDR`, or to [`DEFAULT_ADDR`] when it is unset.
    pub async fn connect_from_env() -> Result<Self> {
        let addr = std::env::var(ADDR_ENV).unwrap_or_else(|_| DEFAULT_ADDR.to_string());
        Self::connect(&addr).await
    }

    /// Acquires a lease on a ready cluster, waiting as the request says, and holds it: the
    /// guard renews it in the background until released (or dropped).
    pub async fn acquire(&mut self, request: Acquire) -> Result<LeaseGuard> {
        let ttl = request.requested_ttl();
        let lease = self.acquire_lease(request).await?;
        LeaseGuard::new(self.clone(), lease, ttl)
    }

    /// Acquires a lease and returns it as it is: nothing renews or releases it.
    pub async fn acquire_lease(&mut self, request: Acquire) -> Result<proto::Lease> {
        let request = request.into_request();
        Ok(self.inner.acquire(request).await?.into_inner())
    }

    /// Acquires a lease, calling `on_progress` while it waits (queue position, the build
    /// expected to serve this caller and its current step) and for each step of putting its
    /// images in ([`Acquire::image`]). Returns the lease as it is.
    pub async fn acquire_with_progress(
        &mut self,
        request: Acquire,
        mut on_progress: impl FnMut(Progress<'_>),
    ) -> Result<proto::Lease> {
        let mut stream = self
            .inner
            .acquire_with_progress(request.into_request())
            .await?
            .into_inner();
        while let Some(message) = stream.message().await? {
            match message.event {
                Some(proto::acquire_progress::Event::Waiting(waiting)) => {
                    on_progress(Progress::Waiting(&waiting))
                }
                Some(proto::acquire_progress::Event::Overlay(step)) => {
                    on_progress(Progress::Overlay(&step))
                }
                Some(proto::acquire_progress::Event::Lease(lease)) => return Ok(lease),
                None => {}
            }
        }
        Err(Error::Protocol(
            "the progress stream ended without a lease".into(),
        ))
    }

    /// Extends a lease to now + `ttl` (`None`: the profile's default) and returns the new expiry.
    pub async fn renew(
        &mut self,
        lease_id: &str,
        token: &str,
        ttl: Option<Duration>,
    ) -> Result<SystemTime> {
        let response = self
            .inner
            .renew(proto::RenewRequest {
                lease_id: lease_id.to_string(),
                token: token.to_string(),
                ttl: ttl.map(acquire::to_proto_duration),
            })
            .await?
            .into_inner();
        response
            .expires_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .ok_or_else(|| Error::Protocol("renew answered without an expiry".into()))
    }

    /// Ends a lease. Releasing an already released lease succeeds.
    pub async fn release(&mut self, lease_id: &str, token: &str) -> Result<()> {
        self.inner
            .release(proto::ReleaseRequest {
                lease_id: lease_id.to_string(),
                token: token.to_string(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Ends a lease after the daemon wrote its cluster's logs, events and `lease.json` into
    /// the lease's artifacts directory, the workloads of the deploy steps `flush` stopped
    /// first (so that they write what they write on exit). `None` when the lease had been
    /// released already (nothing collected). The profile must have `[profiles.P.artifacts]`.
    pub async fn release_collect(
        &mut self,
        lease_id: &str,
        token: &str,
        flush: &[impl AsRef<str>],
    ) -> Result<Option<proto::Collected>> {
        let response = self
            .inner
            .release(proto::ReleaseRequest {
                lease_id: lease_id.to_string(),
                token: token.to_string(),
                collect: true,
                flush: flush.iter().map(|s| s.as_ref().to_string()).collect(),
            })
            .await?
            .into_inner();
        Ok(response.collected)
    }

    /// Rebuilds the images of one profile, or of all when `profile` is `None`; returns the
    /// profiles whose images are being rebuilt.
    pub async fn refresh(&mut self, profile: Option<&str>) -> Result<Vec<String>> {
        let request = proto::RefreshRequest {
            profile: profile.unwrap_or_default().to_string(),
        };
        Ok(self.inner.refresh(request).await?.into_inner().profiles)
    }

    /// Pools, clusters, leases and timings of one profile, or of all when `profile` is `None`.
    pub async fn status(&mut self, profile: Option<&str>) -> Result<proto::StatusResponse> {
        let request = proto::StatusRequest {
            profile: profile.unwrap_or_default().to_string(),
        };
        Ok(self.inner.status(request).await?.into_inner())
    }
}

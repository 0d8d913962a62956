//! A held lease: renewed in the background, its kubeconfig in a private file, released on
//! `release().await` or, best effort, when dropped.
use std::{
    io::Write,
    path::Path,
    time::{Duration, SystemTime},
};

use tokio::{sync::watch, task::JoinHandle};

use crate::{Client, Error, Result, proto};

/// Renewal retries after a failed renew that did not say the lease is lost.
const RETRY: Duration = Duration::from_secs(1);
/// Shortest renewal period, however short the TTL.
const MIN_PERIOD: Duration = Duration::from_millis(100);
/// How long a drop may wait for its best-effort release.
const RELEASE_ON_DROP: Duration = Duration::from_secs(5);

/// A lease held by this process. Renews about every ttl/3 until released or lost.
///
/// Dropping it releases the lease best effort (also outside a Tokio runtime, without
/// panicking). A guard that is never dropped (kept in a `static`) stops renewing when the
/// process ends, and the daemon reclaims the lease when its TTL runs out.
pub struct LeaseGuard {
    client: Client,
    lease: proto::Lease,
    kubeconfig: tempfile::NamedTempFile,
    lost: watch::Receiver<Option<String>>,
    renewer: Option<JoinHandle<()>>,
    released: bool,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("LeaseGuard")
            .field("lease_id", &self.lease.lease_id)
            .field("cluster", &self.lease.cluster)
            .field("kubeconfig_path", &self.kubeconfig.path())
            .finish_non_exhaustive()
    }
}

/// The lease's kubeconfig in a new private (0600) file in `dir`, deleted when dropped.
fn write_kubeconfig(dir: &Path, lease: &proto::Lease) -> Result<tempfile::NamedTempFile> {
    let io = |source| Error::Io {
        what: format!("cannot write the kubeconfig file in {}", dir.display()),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(&format!("infrad-{}-", lease.cluster))
        .suffix(".kubeconfig")
        .tempfile_in(dir)
        .map_err(io)?;
    file.write_all(lease.kubeconfig.as_bytes()).map_err(io)?;
    Ok(file)
}

impl LeaseGuard {
    /// Takes charge of a lease just acquired through `client`: writes its kubeconfig to a
    /// private (0600) temporary file and starts renewing it, each time for `ttl` (`None`:
    /// the profile's default), as Acquire was asked.
    pub fn new(client: Client, lease: proto::Lease, ttl: Option<Duration>) -> Result<Self> {
        let kubeconfig = write_kubeconfig(&std::env::temp_dir(), &lease)?;
        let (lost_tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew(client.clone(), lease.clone(), ttl, lost_tx));
        Ok(Self {
            client,
            lease,
            kubeconfig,
            lost,
            renewer: Some(renewer),
            released: false,
        })
    }

    pub fn lease_id(&self) -> &str {
        &self.lease.lease_id
    }

    /// The secret proof of ownership, for handing to a child process.
    pub fn token(&self) -> &str {
        &self.lease.token
    }

    /// The kind cluster's name.
    pub fn cluster(&self) -> &str {
        &self.lease.cluster
    }

    /// The kubeconfig (YAML) of the cluster.
    pub fn kubeconfig(&self) -> &str {
        &self.lease.kubeconfig
    }

    /// A private (0600) file holding the kubeconfig, removed on release.
    pub fn kubeconfig_path(&self) -> &Path {
        self.kubeconfig.path()
    }

    /// The lease as Acquire returned it (build timings included).
    pub fn lease(&self) -> &proto::Lease {
        &self.lease
    }

    /// Why the lease was lost, if it was: expired, reclaimed, or its cluster vanished.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Resolves when the lease is lost, with the reason.
    pub async fn wait_lost(&mut self) -> String {
        match self.lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the renewal task stopped".to_string(),
        }
    }

    /// The cluster's artifacts directory on the daemon's host, emptied for this lease (a
    /// profile with artifacts); `None` for a profile without.
    pub fn artifacts_dir(&self) -> Option<&Path> {
        (!self.lease.artifacts_dir.is_empty()).then(|| Path::new(&self.lease.artifacts_dir))
    }

    /// Releases the lease and removes the kubeconfig file.
    pub async fn release(mut self) -> Result<()> {
        let (id, token) = self.stop_renewing();
        self.client.release(&id, &token).await
    }

    /// Releases the lease with collect ([`Client::release_collect`], flushing the deploy steps
    /// `flush`), then copies the artifacts directory into `dest` (made if missing; files there
    /// of the same names are replaced). The daemon must share this host. If the daemon
    /// refuses to collect (the profile has no artifacts, an unknown step), the lease is still
    /// released, and the refusal returned.
    pub async fn release_collect(
        mut self,
        dest: &Path,
        flush: &[impl AsRef<str>],
    ) -> Result<proto::Collected> {
        let (id, token) = self.stop_renewing();
        let collected = match self.client.release_collect(&id, &token, flush).await {
            Ok(Some(collected)) => collected,
            Ok(None) => {
                return Err(Error::Protocol(
                    "the lease had been released already: nothing was collected".into(),
                ));
            }
            // Refused as asked (no artifacts, an unknown step): nothing was collected and
            // the lease is still live.
            Err(
                refused @ Error::Rejected {
                    code: tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument,
                    ..
                },
            ) => {
                self.client.release(&id, &token).await?;
                return Err(refused);
            }
            Err(e) => return Err(e),
        };
        crate::copy::tree(Path::new(&collected.artifacts_dir), dest)?;
        Ok(collected)
    }

    /// Stops renewing and marks the lease released (a drop then sends nothing): its id and
    /// token, for the release that follows.
    fn stop_renewing(&mut self) -> (String, String) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        self.released = true;
        (self.lease.lease_id.clone(), self.lease.token.clone())
    }
}

async fn renew(
    mut client: Client,
    lease: proto::Lease,
    ttl: Option<Duration>,
    lost: watch::Sender<Option<String>>,
) {
    let time = |t: Option<prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
    let acquired = time(lease.acquired_at).unwrap_or_else(SystemTime::now);
    let mut expires = time(lease.expires_at).unwrap_or_else(SystemTime::now);
    // The first grant's length tells the period when the caller left the ttl to the profile.
    let period = (ttl.unwrap_or_else(|| expires.duration_since(acquired).unwrap_or_default()) / 3)
        .max(MIN_PERIOD);
    let mut wait = period;
    loop {
        tokio::time::sleep(wait).await;
        match client.renew(&lease.lease_id, &lease.token, ttl).await {
            Ok(new_expiry) => {
                expires = new_expiry;
                wait = period;
            }
            Err(Error::LeaseLost(reason)) | Err(Error::NotFound(reason)) => {
                lost.send_replace(Some(reason));
                return;
            }
            Err(e) if SystemTime::now() >= expires => {
                lost.send_replace(Some(format!(
                    "lease lost: not renewed before it expired: {e}"
                )));
                return;
            }
            Err(_) => wait = RETRY.min(period),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if self.released {
            return;
        }
        // On a thread of its own with a runtime and connection of its own: the caller's
        // runtime may be shutting down (a guard dropped as a test returns), and a task
        // spawned there would never run. Inside a runtime the thread is left to finish
        // (blocking a runtime thread could stall a server it shares the runtime with);
        // outside one, nothing else will keep the process alive for it, so it is awaited.
        let inside_runtime = tokio::runtime::Handle::try_current().is_ok();
        let (id, token) = (self.lease.lease_id.clone(), self.lease.token.clone());
        let addr = self.client.addr().to_string();
        let releasing = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let release = async {
                    let mut client = Client::connect(&addr).await?;
                    client.release(&id, &token).await
                };
                let _ = tokio::time::timeout(RELEASE_ON_DROP, release).await;
            });
        });
        if !inside_runtime {
            let _ = releasing.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_kubeconfig_is_an_io_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let lease = proto::Lease {
            cluster: "infrad-demo-1".into(),
            kubeconfig: "apiVersion: v1".into(),
            ..Default::default()
        };
        let error = write_kubeconfig(&missing, &lease).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
        assert!(error.code().is_none());
        assert!(
            error.to_string().contains(&missing.display().to_string()),
            "{error}"
        );
        let written = write_kubeconfig(dir.path(), &lease).unwrap();
        assert_eq!(
            std::fs::read_to_string(written.path()).unwrap(),
            "apiVersion: v1"
        );
    }
}

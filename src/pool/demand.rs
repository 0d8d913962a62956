//! What the pool needs of the lease domain: who waits, serving them, expiring leases.
use crate::{
    Result,
    leases::{Leases, Overlays, PoolView},
};

/// The lease domain as the pool sees it (implemented by [`Leases`]).
pub trait Demand: Send + Sync + 'static {
    /// Callers waiting for a cluster of `profile`.
    fn waiting(&self, profile: &str) -> usize;
    /// Serves waiting callers of `profile` from its ready clusters.
    fn dispatch(&self, profile: &str) -> impl Future<Output = Result<()>> + Send;
    /// Ends every lease past its expiry (their clusters go to recycling); returns how many.
    fn expire_due(&self) -> impl Future<Output = Result<usize>> + Send;
    /// Answers every caller waiting for `profile` with why it is degraded, if it still is.
    fn fail_waiters(&self, profile: &str) -> impl Future<Output = ()> + Send;
}

impl<V: PoolView, O: Overlays> Demand for Leases<V, O> {
    fn waiting(&self, profile: &str) -> usize {
        Leases::waiting(self, profile)
    }

    async fn dispatch(&self, profile: &str) -> Result<()> {
        Leases::dispatch(self, profile).await
    }

    async fn expire_due(&self) -> Result<usize> {
        Leases::expire_due(self).await
    }

    async fn fail_waiters(&self, profile: &str) {
        Leases::fail_waiters(self, profile).await
    }
}

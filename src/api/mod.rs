//! The gRPC edge: validates requests, calls the lease domain, maps its answers and errors.
mod convert;
mod progress;
mod status;
mod validate;

use std::sync::Arc;

use infrad_client::proto;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{Instrument, instrument};

use crate::{leases::LeaseApi, pool::PoolApi};

/// Generated server stubs; the message types are `infrad_client::proto`'s.
pub mod pb {
    tonic::include_proto!("infrad.v1");
}

/// Descriptor set of `infrad.v1`, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("infrad_descriptor");

pub use pb::lease_service_server::LeaseServiceServer;

/// `infrad.v1.LeaseService`, generic over the lease domain and the pool's commands.
pub struct LeaseService<L, P> {
    leases: Arc<L>,
    pool: Arc<P>,
}

impl<L, P> LeaseService<L, P> {
    pub fn new(leases: Arc<L>, pool: Arc<P>) -> Self {
        Self { leases, pool }
    }
}

#[tonic::async_trait]
impl<L: LeaseApi, P: PoolApi> pb::lease_service_server::LeaseService for LeaseService<L, P> {
    #[instrument(skip_all, fields(profile, holder), err(level = "warn"))]
    async fn acquire(
        &self,
        request: Request<proto::AcquireRequest>,
    ) -> Result<Response<proto::Lease>, Status> {
        let ask = validate::acquire(request)?;
        tracing::Span::current()
            .record("profile", ask.profile.as_str())
            .record("holder", ask.holder.as_str());
        let grant = self.leases.acquire(ask).await?;
        let lease = convert::lease(&grant);
        // From here tonic sends it; a caller that hung up meanwhile leaves it to its TTL.
        grant.deliver();
        Ok(Response::new(lease))
    }

    type AcquireWithProgressStream = ReceiverStream<Result<proto::AcquireProgress, Status>>;

    #[instrument(skip_all, fields(profile, holder), err(level = "warn"))]
    async fn acquire_with_progress(
        &self,
        request: Request<proto::AcquireRequest>,
    ) -> Result<Response<Self::AcquireWithProgressStream>, Status> {
        let ask = validate::acquire(request)?;
        let span = tracing::Span::current();
        span.record("profile", ask.profile.as_str())
            .record("holder", ask.holder.as_str());
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let leases = Arc::clone(&self.leases);
        tokio::spawn(progress::stream(leases, ask, tx).instrument(span));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[instrument(skip_all, fields(lease_id), err(level = "warn"))]
    async fn renew(
        &self,
        request: Request<proto::RenewRequest>,
    ) -> Result<Response<proto::RenewResponse>, Status> {
        let request = request.into_inner();
        let lease_id = validate::lease_id(&request.lease_id)?;
        tracing::Span::current().record("lease_id", lease_id.as_str());
        let ttl = validate::ttl(request.ttl)?;
        let expires_at = self.leases.renew(&lease_id, &request.token, ttl).await?;
        Ok(Response::new(proto::RenewResponse {
            expires_at: Some(convert::timestamp(expires_at)),
        }))
    }

    #[instrument(skip_all, fields(lease_id), err(level = "warn"))]
    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let request = request.into_inner();
        let lease_id = validate::lease_id(&request.lease_id)?;
        tracing::Span::current().record("lease_id", lease_id.as_str());
        let collect = validate::collect(request.collect, request.flush)?;
        let collected = self
            .leases
            .release(&lease_id, &request.token, collect)
            .await?;
        Ok(Response::new(proto::ReleaseResponse {
            collected: collected.map(convert::collected),
        }))
    }

    #[instrument(skip_all, fields(profile), err(level = "warn"))]
    async fn refresh(
        &self,
        request: Request<proto::RefreshRequest>,
    ) -> Result<Response<proto::RefreshResponse>, Status> {
        let profile = request.into_inner().profile;
        tracing::Span::current().record("profile", profile.as_str());
        let profiles = self
            .pool
            .refresh((!profile.is_empty()).then_some(profile.as_str()))?;
        Ok(Response::new(proto::RefreshResponse { profiles }))
    }

    #[instrument(skip_all, fields(profile), err(level = "warn"))]
    async fn status(
        &self,
        request: Request<proto::StatusRequest>,
    ) -> Result<Response<proto::StatusResponse>, Status> {
        let profile = request.into_inner().profile;
        tracing::Span::current().record("profile", profile.as_str());
        let profile = (!profile.is_empty()).then_some(profile);
        let reports = self.leases.status(profile.as_deref()).await?;
        Ok(Response::new(proto::StatusResponse {
            profiles: reports.into_iter().map(convert::profile_status).collect(),
        }))
    }
}

//! Puts the daemon together: state directory, store, lease domain, pool, gRPC server with
//! health and reflection; one shutdown signal stops them all.
use std::{
    net::SocketAddr,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::Path,
    sync::Arc,
    time::Duration,
};

use tokio::{net::TcpListener, sync::Notify};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tracing::{info, warn};

use crate::{
    Result,
    api::{FILE_DESCRIPTOR_SET, LeaseService, LeaseServiceServer},
    config::Config,
    connections,
    leases::Leases,
    pool::{Overlayer, Pool, PoolState, Provisioner},
    store::Store,
};

/// HTTP/2 keep-alive pings on idle connections, and how long an answer may take.
const HTTP2_KEEPALIVE: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long grants being taken back get to reach the store before it closes.
const TAKE_BACK_STOP: Duration = Duration::from_secs(1);
/// How long the pool gets to stop its tasks after the server stopped.
const POOL_STOP: Duration = Duration::from_secs(8);

/// Creates the state directory (mode 0700: it holds kubeconfigs and lease tokens).
pub fn prepare_state_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        // Not changed behind the operator's back (it may be shared); the files inside are 0600.
        warn!(
            state_dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "the state directory is open to other users; it should be 0700"
        );
    }
    Ok(())
}

/// Serves until `shutdown` resolves. Warm clusters are left standing; leases live on in the
/// store and keep counting down.
pub async fn serve<P: Provisioner>(
    config: Config,
    state_dir: &Path,
    listener: TcpListener,
    provisioner: P,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    prepare_state_dir(state_dir)?;
    let store = Store::open(state_dir).await?;
    let config = Arc::new(config);
    let cancel = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let pool_state = Arc::new(PoolState::new(Arc::clone(&config), Arc::clone(&wake)));
    let provisioner = Arc::new(provisioner);
    let leases = Arc::new(Leases::new(
        store.clone(),
        Arc::clone(&config),
        Arc::clone(&pool_state),
        Overlayer::new(Arc::clone(&provisioner), store.clone()),
        Arc::clone(&wake),
        cancel.clone(),
    ));
    let pool = Pool::new(
        store.clone(),
        config,
        Arc::clone(&pool_state),
        Arc::clone(&leases),
        provisioner,
        wake,
        cancel.clone(),
    );

    // Reconciled before the first request: no vanished cluster is handed out.
    pool.start().await;
    let (health, health_service) = tonic_health::server::health_reporter();
    // The store is migrated by now: the service is ready.
    health
        .set_serving::<LeaseServiceServer<LeaseService<Leases<PoolState, Overlayer<Arc<P>>>, PoolState>>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    // grpcurl 1.8 speaks only v1alpha.
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let pool_task = tokio::spawn(pool.run());
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                () = shutdown => info!("shutting down"),
                () = cancel.cancelled() => {}
            }
            cancel.cancel();
        }
    });
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    info!(addr = ?addr, state_dir = %state_dir.display(), "serving");
    let served = Server::builder()
        // A client gone without a word (a killed CI job) is noticed by HTTP/2 pings.
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(LeaseServiceServer::new(LeaseService::new(
            Arc::clone(&leases),
            pool_state,
        )))
        .serve_with_incoming_shutdown(
            connections::accept(listener),
            cancel.clone().cancelled_owned(),
        )
        .await;
    cancel.cancel();
    if tokio::time::timeout(POOL_STOP, pool_task).await.is_err() {
        warn!("pool tasks did not stop in time");
    }
    leases.finish_take_backs(TAKE_BACK_STOP).await;
    store.close().await;
    info!("stopped");
    Ok(served?)
}

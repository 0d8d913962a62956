//! What infrad's tests and benchmarks share: a provisioner that makes pretend clusters (files
//! in a directory, so they outlive a daemon process), a daemon served on 127.0.0.1:0, the fake
//! `kind` and `docker` executables, a fake Kubernetes API server, and the skip-or-fail checks
//! for Docker and grpcurl.

pub mod docker;
pub mod fake_apiserver;
pub mod grpcurl;
mod provisioner;
pub mod recipe;
pub mod world;

/// The fake `kind` executable: kind v0.32's command-line contract (docs/kind-contract.md).
pub const FAKE_KIND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fake-kind");
/// The fake `docker` executable (benchmarks only).
pub const FAKE_DOCKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/fake-docker");

use std::{future::Future, net::SocketAddr, path::Path, time::Duration};

use infrad::{config::Config, pool::Provisioner, store::Store};
use infrad_client::Client;
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use provisioner::{Event, TestProvisioner};

/// A profile `demo` with the given pool table body; tests keep backoffs short.
pub fn config(pool: &str) -> String {
    format!(
        "[daemon]\nmax_concurrent_builds = 2\n[profiles.demo.pool]\nretry_backoff = \"50ms\"\nretry_backoff_max = \"200ms\"\n{pool}\n"
    )
}

pub struct TestDaemon<P = TestProvisioner> {
    pub addr: SocketAddr,
    pub state: TempDir,
    pub provisioner: P,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<infrad::Result<()>>,
}

impl TestDaemon {
    pub async fn start(config: &str) -> Self {
        let state = tempfile::tempdir().unwrap();
        let provisioner = TestProvisioner::new(state.path().join("clusters"));
        Self::start_with(config, provisioner, state).await
    }

    /// Starts a daemon on an existing state directory and provisioner (a restart).
    pub async fn start_with(config: &str, provisioner: TestProvisioner, state: TempDir) -> Self {
        let config = Config::parse(Path::new("test.toml"), config).expect("test config is valid");
        Self::serve(config, provisioner, state).await
    }
}

impl<P: Provisioner + Clone> TestDaemon<P> {
    /// Serves `config` with any provisioner; the daemon's state lives in `state/state`.
    pub async fn serve(config: Config, provisioner: P, state: TempDir) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn({
            let provisioner = provisioner.clone();
            let state_dir = state_dir(&state);
            async move {
                infrad::daemon::serve(config, &state_dir, listener, provisioner, async {
                    let _ = stopped.await;
                })
                .await
            }
        });
        Self {
            addr,
            state,
            provisioner,
            stop: Some(stop),
            task,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.addr.to_string()).await.unwrap()
    }

    /// A second handle on the daemon's database, to check what it stored.
    pub async fn store(&self) -> Store {
        Store::open(&state_dir(&self.state)).await.unwrap()
    }

    /// Stops the daemon as SIGTERM would and hands back its state for a restart.
    pub async fn stop(mut self) -> (TempDir, P) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().expect("daemon stops cleanly");
        (self.state, self.provisioner)
    }
}

/// Where a test daemon keeps its database and per-cluster files.
pub fn state_dir(state: &TempDir) -> std::path::PathBuf {
    state.path().join("state")
}

/// Acquire on profile `demo` for `holder`, waiting up to two minutes (a liveness bound).
pub fn acquire(holder: &str) -> infrad_client::Acquire {
    infrad_client::Acquire::new("demo")
        .holder(holder)
        .wait(Duration::from_secs(120))
}

/// Polls `check` until it holds; panics naming `what` after 20 s (a liveness bound only).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts of one profile as Status reports them.
pub async fn counts(client: &mut Client) -> infrad_client::proto::PoolCounts {
    let status = client.status(Some("demo")).await.unwrap();
    status.profiles[0].counts.unwrap()
}

/// Waits until the profile has `n` ready clusters.
pub async fn ready(client: &Client, n: u32) {
    eventually(&format!("{n} clusters are ready"), || {
        let mut client = client.clone();
        async move { counts(&mut client).await.ready >= n }
    })
    .await;
}

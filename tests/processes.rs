//! What outlives a process:
//! - a real daemon process killed with SIGKILL and restarted on the same state directory:
//!   its leases still renew and release, and their expiry kept counting;
//! - a lease guard kept in a `static` (never dropped) by a process that exits: the lease
//!   ends with its TTL on the server.
//!
//! This test runs without libtest (`harness = false`) because it re-executes itself as the
//! other process: `processes --daemon STATE_DIR` serves with the test provisioner, and
//! `processes --hold ADDR` holds a lease in a static and exits.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use infrad::config::Config;
use infrad_client::{Acquire, Client, Error};
use infrad_test_support::{TestProvisioner, eventually, ready};

const CONFIG: &str = "[profiles.demo.pool]\nwarm = 2\nmax = 2\nretry_backoff = \"50ms\"\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--daemon") => return daemon(Path::new(&args[2])),
        Some("--hold") => return hold_in_static(&args[2]),
        _ => {}
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let passed = [
        scenario(&runtime, "leases_survive_sigkill", leases_survive_sigkill()),
        scenario(
            &runtime,
            "a_guard_in_a_static_ends_with_its_ttl",
            a_guard_in_a_static_ends_with_its_ttl(),
        ),
    ];
    let failed = passed.iter().filter(|ok| !**ok).count();
    println!(
        "\nprocesses: {} passed, {failed} failed",
        passed.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Runs one scenario, printing its outcome as libtest would; true if it passed.
fn scenario(runtime: &tokio::runtime::Runtime, name: &str, test: impl Future<Output = ()>) -> bool {
    let passed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(test))).is_ok();
    println!("test {name} ... {}", if passed { "ok" } else { "FAILED" });
    passed
}

/// Held by a process that exits without dropping it.
static HELD: std::sync::OnceLock<infrad_client::LeaseGuard> = std::sync::OnceLock::new();

/// The child: takes a lease with a 1 s TTL into a static, prints its id and exits at once.
fn hold_in_static(addr: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect(addr).await.unwrap();
        let guard = client
            .acquire(Acquire::new("demo").ttl(Duration::from_secs(1)))
            .await
            .unwrap();
        println!("lease {}", guard.lease_id());
        HELD.set(guard).unwrap();
    });
    std::process::exit(0);
}

async fn a_guard_in_a_static_ends_with_its_ttl() {
    let daemon = infrad_test_support::TestDaemon::start(CONFIG).await;
    ready(&daemon.client().await, 1).await;
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--hold", &daemon.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lease_id = stdout
        .trim()
        .strip_prefix("lease ")
        .expect("the child prints its lease");
    let store = daemon.store().await;
    eventually("the abandoned lease expires", || {
        let store = store.clone();
        async move {
            let lease = store.lease(lease_id).await.unwrap().unwrap();
            lease.end_reason == Some(infrad::store::EndReason::Expired)
        }
    })
    .await;
}

/// The child: serves on 127.0.0.1:0 and prints its address for the parent.
fn daemon(state: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = Config::parse(Path::new("restart.toml"), CONFIG).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        let provisioner = TestProvisioner::new(state.join("clusters"));
        infrad::daemon::serve(
            config,
            &state.join("state"),
            listener,
            provisioner,
            std::future::pending(),
        )
        .await
        .unwrap();
    });
}

/// A daemon child process, killed when dropped so a failing test leaves none behind.
struct DaemonProcess {
    child: Child,
    addr: String,
}

impl DaemonProcess {
    fn start(state: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--daemon")
            .arg(state)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .expect("the daemon prints its address")
            .to_string();
        Self { child, addr }
    }

    fn sigkill(mut self) {
        // std's Child::kill sends SIGKILL: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn leases_survive_sigkill() {
    let state = tempfile::tempdir().unwrap();
    let first = DaemonProcess::start(state.path());
    let mut client = Client::connect(&first.addr).await.unwrap();
    ready(&client, 2).await;
    let long = client
        .acquire_lease(
            Acquire::new("demo")
                .holder("long")
                .ttl(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let short = client
        .acquire_lease(
            Acquire::new("demo")
                .holder("short")
                .ttl(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    first.sigkill();

    let second = DaemonProcess::start(state.path());
    let mut client = Client::connect(&second.addr).await.unwrap();
    client
        .renew(&long.lease_id, &long.token, Some(Duration::from_secs(900)))
        .await
        .expect("a lease from before the crash renews with its token");
    let wrong = client
        .release(&long.lease_id, &short.token)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(tonic::Code::PermissionDenied));

    // The short lease's expiry kept counting across the crash.
    eventually("the short lease expires", || {
        let mut client = client.clone();
        async move {
            client.status(Some("demo")).await.unwrap().profiles[0]
                .leases
                .len()
                == 1
        }
    })
    .await;
    let lost = client
        .renew(&short.lease_id, &short.token, None)
        .await
        .unwrap_err();
    assert!(matches!(lost, Error::LeaseLost(_)), "{lost:?}");
    assert!(
        lost.to_string().starts_with("lease lost: expired at "),
        "{lost}"
    );

    client.release(&long.lease_id, &long.token).await.unwrap();
    client.release(&long.lease_id, &long.token).await.unwrap();
    let status = client.status(Some("demo")).await.unwrap();
    assert!(
        status.profiles[0].leases.is_empty(),
        "no live lease is left"
    );
    drop(second);
}

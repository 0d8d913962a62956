//! How close infrad's own costs come to the loopback floor: the release `infrad serve` process,
//! called through `infrad-client` (and `infrad run`) on 127.0.0.1, with a warm pool whose
//! clusters reset instantly (fake kind and fake API server, no latencies). Run:
//! `cargo bench --bench rpc` (about a minute). It measures first, then prints the report; it
//! asserts nothing about speed.
//!
//! Each figure is printed beside its floor, measured in the same run: a `grpc.health.v1` Check
//! on the same kind of connection (the cheapest RPC the daemon answers), and spawning `true`
//! directly for `infrad run -- true`.
use std::{
    net::{Ipv4Addr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use infrad::{
    store::{ClusterState, Store},
    time,
    timings::percentile,
};
use infrad_client::{Acquire, Client};
use infrad_test_support::{
    recipe::{Recipe, deployment},
    world::FakeWorld,
};
use nix::{sys::signal, unistd::Pid};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const INFRAD: &str = env!("CARGO_BIN_EXE_infrad");
const PROFILE: &str = "bench";
const CLIENTS: usize = 64;
/// Ready clusters kept: one per client and some over, so that a release's reset (a few ms)
/// does not make the next Acquire wait for it.
const WARM: usize = 72;
const ROUNDS_ONE_CLIENT: usize = 2_000;
const ROUNDS_PER_CLIENT: usize = 50;
const STATUS_CALLS: usize = 500;
const FLOOR_CALLS: usize = 2_000;
const RUN_CALLS: usize = 30;
const RESTARTS: usize = 5;
const HISTORY: u32 = 100_000;

fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1e3)
}

/// p50 and p99 of samples.
fn p50_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 50), percentile(&samples, 99))
}

/// A running `infrad serve`.
struct Daemon {
    child: Child,
    addr: String,
}

impl Daemon {
    fn spawn(config: &Path, state: &Path, port: u16) -> Self {
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(INFRAD)
            .args(["--log", "warn", "serve", "--listen", &addr, "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("infrad serve starts");
        Self { child, addr }
    }

    /// Resident memory, from /proc.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the daemon is running");
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib / 1024.0
    }

    /// SIGTERM, then waits for the process to exit; returns how long that took.
    fn stop(mut self) -> Duration {
        let started = Instant::now();
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        signal::kill(pid, signal::Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "infrad serve exited with {status}");
        started.elapsed()
    }
}

/// A free loopback port for the daemon (bound and let go: the daemon binds it at once).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn health(addr: &str) -> Option<HealthClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .ok()?;
    Some(HealthClient::new(channel))
}

async fn serving(client: &mut HealthClient<Channel>) -> bool {
    client
        .check(HealthCheckRequest::default())
        .await
        .is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32)
}

/// From `started` until the daemon answers SERVING (polled every millisecond).
async fn wait_serving(addr: &str, started: Instant) -> Duration {
    loop {
        if let Some(mut client) = health(addr).await
            && serving(&mut client).await
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon never SERVING"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_warm(client: &mut Client) {
    let started = Instant::now();
    loop {
        let status = client.status(Some(PROFILE)).await.unwrap();
        let ready = status.profiles[0].counts.as_ref().map_or(0, |c| c.ready);
        if ready as usize >= WARM {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "pool not warm: {ready} of {WARM} ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Timed Acquire→Release round trips, and the Acquire part of each.
#[derive(Default)]
struct RoundTrips {
    whole: Vec<Duration>,
    acquire: Vec<Duration>,
}

impl RoundTrips {
    fn extend(&mut self, other: RoundTrips) {
        self.whole.extend(other.whole);
        self.acquire.extend(other.acquire);
    }
}

/// `rounds` Acquire→Release round trips on one connection.
async fn round_trips(addr: String, rounds: usize) -> RoundTrips {
    let mut client = Client::connect(&addr).await.unwrap();
    let mut samples = RoundTrips::default();
    for _ in 0..rounds {
        let started = Instant::now();
        let lease = client
            .acquire_lease(Acquire::new(PROFILE).holder("bench"))
            .await
            .unwrap();
        samples.acquire.push(started.elapsed());
        client.release(&lease.lease_id, &lease.token).await.unwrap();
        samples.whole.push(started.elapsed());
    }
    samples
}

async fn concurrent_round_trips(addr: &str) -> RoundTrips {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(round_trips(addr.to_string(), ROUNDS_PER_CLIENT)))
        .collect();
    let mut samples = RoundTrips::default();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    samples
}

async fn status_calls(addr: &str) -> Vec<Duration> {
    let mut client = Client::connect(addr).await.unwrap();
    let mut samples = Vec::with_capacity(STATUS_CALLS);
    for _ in 0..STATUS_CALLS {
        let started = Instant::now();
        client.status(Some(PROFILE)).await.unwrap();
        samples.push(started.elapsed());
    }
    samples
}

async fn health_calls(addr: &str) -> Vec<Duration> {
    let mut client = health(addr).await.unwrap();
    let mut samples = Vec::with_capacity(FLOOR_CALLS);
    for _ in 0..FLOOR_CALLS {
        let started = Instant::now();
        assert!(serving(&mut client).await);
        samples.push(started.elapsed());
    }
    samples
}

/// Whole-process wall time of `program args`, each run; every run must succeed.
fn process_runs(program: &str, args: &[&str]) -> Vec<Duration> {
    (0..RUN_CALLS)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{program} {args:?}: {status}");
            started.elapsed()
        })
        .collect()
}

/// Stops the daemon and writes `HISTORY` released leases into its database.
async fn add_history(daemon: Daemon, state: &Path) {
    daemon.stop();
    let store = Store::open(state).await.unwrap();
    let ready = store
        .clusters(Some(PROFILE), &[ClusterState::Ready])
        .await
        .unwrap();
    let cluster = ready.first().expect("a ready cluster");
    store
        .add_released_leases(&cluster.id, PROFILE, HISTORY, time::now())
        .await
        .unwrap();
    store.close().await;
}

/// Starts the daemon on its state and times it to SERVING.
async fn start(config: &Path, state: &Path, port: u16) -> (Daemon, Duration) {
    let started = Instant::now();
    let daemon = Daemon::spawn(config, state, port);
    let took = wait_serving(&daemon.addr, started).await;
    (daemon, took)
}

struct Report {
    floor: (Duration, Duration),
    one: RoundTrips,
    many: RoundTrips,
    status_idle: Duration,
    status_history: Duration,
    one_history: RoundTrips,
    run: Duration,
    spawn_floor: Duration,
    rss_idle: f64,
    rss_history: f64,
    restart: Vec<Duration>,
    stop: Vec<Duration>,
}

impl Report {
    fn print(&self) {
        let pair = |(p50, p99): (Duration, Duration)| format!("p50 {} p99 {}", ms(p50), ms(p99));
        let trips = |t: &RoundTrips| {
            format!(
                "{} (Acquire alone: {})",
                pair(p50_p99(t.whole.clone())),
                pair(p50_p99(t.acquire.clone()))
            )
        };
        println!("\ninfrad RPCs on 127.0.0.1 (release build, warm pool of {WARM}, instant reset)");
        println!(
            "  floor: grpc.health.v1 Check, 1 client, {FLOOR_CALLS} calls: {}",
            pair(self.floor)
        );
        println!(
            "  Acquire→Release, 1 client, {ROUNDS_ONE_CLIENT} round trips: {}  (goal p50 ≤ 1ms)",
            trips(&self.one)
        );
        println!(
            "  Acquire→Release, {CLIENTS} clients, {} round trips: {}  (goal p99 ≤ 10ms)",
            CLIENTS * ROUNDS_PER_CLIENT,
            trips(&self.many)
        );
        println!(
            "  Status, {STATUS_CALLS} calls: p50 {} with no history, {} with {HISTORY} leases  (goal ≤ 2ms)",
            ms(self.status_idle),
            ms(self.status_history)
        );
        println!(
            "  Acquire→Release with that history, 1 client: {}",
            trips(&self.one_history)
        );
        println!(
            "  `infrad run -- true`, {RUN_CALLS} runs: median {}  (goal ≤ 10ms; spawning `true` alone: {})",
            ms(self.run),
            ms(self.spawn_floor)
        );
        println!(
            "  daemon RSS: {:.1} MiB idle, {:.1} MiB with the history  (goal ≤ 64 MiB)",
            self.rss_idle, self.rss_history
        );
        let list = |v: &[Duration]| v.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ");
        println!(
            "  restart with the history, {RESTARTS} times: start to SERVING {}  (goal ≤ 500ms); SIGTERM to exit {}",
            list(&self.restart),
            list(&self.stop)
        );
    }
}

#[tokio::main]
async fn main() {
    let world = FakeWorld::new().await;
    world.fake_docker(0.0);
    world.set_kind_env(&[("FAKE_KIND_NO_DOCKER", "1")]);
    let recipe = Recipe::new(PROFILE)
        .toml(&format!(
            "[daemon]\nmax_concurrent_builds = 8\n\
             [profiles.{PROFILE}.pool]\nwarm = {WARM}\nmax = {}\nrecycle = \"reset\"\nacquire_wait = \"30s\"",
            WARM + CLIENTS
        ))
        .step("app", &[], &deployment("app", "default", "app:v1", None));
    let config = world.config_file(&recipe.write(&world));
    let state = world.dir.path().join("state");
    let port = free_port();

    let (daemon, _) = start(&config, &state, port).await;
    let mut client = Client::connect(&daemon.addr).await.unwrap();
    wait_warm(&mut client).await;
    // Connections and caches warm before anything is timed.
    round_trips(daemon.addr.clone(), 50).await;

    let floor = p50_p99(health_calls(&daemon.addr).await);
    let one = round_trips(daemon.addr.clone(), ROUNDS_ONE_CLIENT).await;
    wait_warm(&mut client).await;
    let many = concurrent_round_trips(&daemon.addr).await;
    wait_warm(&mut client).await;
    let status_idle = p50_p99(status_calls(&daemon.addr).await).0;
    let run_args = [
        "run",
        "--addr",
        daemon.addr.as_str(),
        "--profile",
        PROFILE,
        "--",
        "true",
    ];
    let run = p50_p99(process_runs(INFRAD, &run_args)).0;
    let spawn_floor = p50_p99(process_runs("true", &[])).0;
    let rss_idle = daemon.rss_mib();

    add_history(daemon, &state).await;
    let (mut daemon, took) = start(&config, &state, port).await;
    let (mut restart, mut stop) = (vec![took], Vec::new());
    for _ in 1..RESTARTS {
        stop.push(daemon.stop());
        let (started, took) = start(&config, &state, port).await;
        restart.push(took);
        daemon = started;
    }
    let mut client = Client::connect(&daemon.addr).await.unwrap();
    wait_warm(&mut client).await;
    let status_history = p50_p99(status_calls(&daemon.addr).await).0;
    let one_history = round_trips(daemon.addr.clone(), ROUNDS_ONE_CLIENT).await;
    let rss_history = daemon.rss_mib();
    daemon.stop();

    Report {
        floor,
        one,
        many,
        status_idle,
        status_history,
        one_history,
        run,
        spawn_floor,
        rss_idle,
        rss_history,
        restart,
        stop,
    }
    .print();
}

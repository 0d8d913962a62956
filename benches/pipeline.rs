//! How close the real pipeline gets to its critical path, and what a warm pool saves over
//! one-shot builds. Run: `cargo bench --bench pipeline` (about 1.5 minutes; prints a report,
//! asserts nothing about speed).
//!
//! The tools are fakes at latencies proportional to DESIGN.md's table "The problem, in numbers",
//! scaled 1 s per minute: `docker build` 3 s per image (test-support/fixtures/fake-docker), `kind create
//! cluster` 0.5 s and `kind load` 0.75 s (test-support/fixtures/fake-kind), and deploy steps whose
//! workloads a fake Kubernetes API server (test-support/src/fake_apiserver) reports ready after
//! a per-object delay (`infrad.test/ready-after`): `db` 1.5 s, `api` after `db` 2.0 s, `tekton`
//! 3.0 s. Everything runs on 127.0.0.1; no Docker, kind or network is needed.
use std::{
    collections::HashMap,
    fmt::Write as _,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use infrad::{
    config::Config,
    pipeline::Pipeline,
    pool::{ClusterSpec, Provisioner, Recorder},
    store::{StepRow, Store},
    time,
    timings::{phases_of_run, run_total},
};
use infrad_client::Client;
use infrad_test_support::{
    FAKE_DOCKER, FAKE_KIND,
    fake_apiserver::{FakeApiServer, READY_AFTER},
};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot};

const PROFILE: &str = "we-e2e";
/// DESIGN.md's table, 1 s per minute.
const BUILD_SECS: f64 = 3.0;
const CREATE_SECS: f64 = 0.5;
const LOAD_SECS: f64 = 0.75;
const IMAGES: [(&str, &str); 2] = [
    ("controller:dev", "controller"),
    ("datastorage:dev", "datastorage"),
];
/// Deploy steps: name, the steps it waits for, ready delay of its workload (ms).
const DEPLOY: [(&str, &[&str], u64); 3] = [
    ("db", &[], 1_500),
    ("api", &["db"], 2_000),
    ("tekton", &[], 3_000),
];
const EFFICIENCY_RUNS: usize = 3;
/// Added to every ready delay in one extra run, to take them off the 250 ms readiness poll's grid
/// (1.5 s, 2 s and 3 s are multiples of it, which flatters polling).
const OFF_GRID_MS: u64 = 130;
const POOL_SIZE: usize = 4;

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn dur(step: &StepRow) -> Duration {
    time::duration_between(step.started_at, step.ended_at.unwrap_or(step.started_at))
}

/// The configured latencies' own critical path: what a pipeline with zero overhead would take.
fn ideal_critical_path(ready_offset_ms: u64) -> Duration {
    let deploy_ms = longest_deploy_chain(|name| {
        DEPLOY
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, ms)| Duration::from_millis(*ms + ready_offset_ms))
    })
    .0;
    Duration::from_secs_f64(BUILD_SECS + CREATE_SECS + LOAD_SECS) + deploy_ms
}

/// Longest chain through the deploy steps (`after` edges), with each step's duration.
fn longest_deploy_chain(duration: impl Fn(&str) -> Option<Duration>) -> (Duration, Vec<String>) {
    fn finish(
        name: &str,
        duration: &dyn Fn(&str) -> Option<Duration>,
        memo: &mut HashMap<String, (Duration, Vec<String>)>,
    ) -> (Duration, Vec<String>) {
        if let Some(done) = memo.get(name) {
            return done.clone();
        }
        let after = DEPLOY
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, a, _)| *a)
            .unwrap_or(&[]);
        let mut best = (Duration::ZERO, Vec::new());
        for dep in after {
            let candidate = finish(dep, duration, memo);
            if candidate.0 > best.0 {
                best = candidate;
            }
        }
        best.0 += duration(name).unwrap_or_default();
        best.1.push(name.to_string());
        memo.insert(name.to_string(), best.clone());
        best
    }
    let mut memo = HashMap::new();
    DEPLOY
        .iter()
        .map(|(name, _, _)| finish(name, &duration, &mut memo))
        .max_by_key(|(d, _)| *d)
        .unwrap_or_default()
}

/// The critical path of a recorded run, each step counted at its own recorded duration:
/// slowest image build + the cluster steps (in sequence) + load + longest deploy chain.
/// Returns its length and the steps on it, in order.
fn critical_path(steps: &[StepRow]) -> (Duration, Vec<&StepRow>) {
    let mut chain: Vec<&StepRow> = Vec::new();
    if let Some(build) = steps
        .iter()
        .filter(|s| s.phase == "build")
        .max_by_key(|s| dur(s))
    {
        chain.push(build);
    }
    chain.extend(
        steps
            .iter()
            .filter(|s| s.phase == "cluster" || s.phase == "load"),
    );
    let find = |name: &str| steps.iter().find(|s| s.phase == "deploy" && s.step == name);
    let (_, deploy_chain) = longest_deploy_chain(|name| find(name).map(dur));
    chain.extend(deploy_chain.iter().filter_map(|name| find(name)));
    (chain.iter().map(|s| dur(s)).sum(), chain)
}

/// A folder with the recipe, the fake tools behind wrapper scripts that set their latencies,
/// and fake API servers: each `kind create cluster` takes the next server, so that every
/// cluster has an API server (and workloads) of its own.
struct World {
    dir: TempDir,
    _apis: Vec<FakeApiServer>,
    config: Config,
}

impl World {
    /// Fake API servers for `clusters` clusters; every ready delay plus `ready_offset_ms`.
    async fn new(clusters: usize, max_concurrent_builds: usize, ready_offset_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut apis = Vec::new();
        for _ in 0..clusters {
            let api = FakeApiServer::start().await;
            api.set_ready_delay(Duration::ZERO);
            apis.push(api);
        }
        let root = dir.path();
        write_recipe(root, ready_offset_ms);
        write_tools(
            root,
            &apis.iter().map(FakeApiServer::url).collect::<Vec<_>>(),
        );
        let config = write_config(root, max_concurrent_builds);
        Self {
            dir,
            _apis: apis,
            config,
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `docker build` calls so far, from fake-docker's log.
    fn docker_builds(&self) -> usize {
        std::fs::read_to_string(self.path("docker.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("BUILD "))
            .count()
    }

    fn pipeline(&self, state: &str) -> Pipeline {
        Pipeline::new(&self.config.tools, &self.path(state)).expect("a state directory")
    }
}

fn write(root: &Path, relative: &str, content: &str) -> PathBuf {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

fn write_script(root: &Path, relative: &str, content: &str) -> PathBuf {
    let path = write(root, relative, content);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn write_recipe(root: &Path, ready_offset_ms: u64) {
    for (name, context) in IMAGES {
        write(
            root,
            &format!("{context}/Dockerfile"),
            &format!("FROM busybox:1.36.1\nRUN echo {name} > /image.txt\n"),
        );
    }
    write(
        root,
        "bootstrap.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: pipelines.tekton.dev\nspec:\n  group: tekton.dev\n  scope: Namespaced\n  names:\n    plural: pipelines\n    singular: pipeline\n    kind: Pipeline\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n",
    );
    let ready = |name: &str| {
        let ms = DEPLOY.iter().find(|(n, _, _)| *n == name).unwrap().2 + ready_offset_ms;
        format!("  annotations:\n    {READY_AFTER}: \"{ms}\"\n")
    };
    write(
        root,
        "db.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: postgres\n  namespace: app\n{}spec:\n  replicas: 1\n  serviceName: postgres\n  selector:\n    matchLabels: {{app: postgres}}\n  template:\n    metadata:\n      labels: {{app: postgres}}\n    spec:\n      containers:\n      - name: postgres\n        image: datastorage:dev\n",
            ready("db")
        ),
    );
    write(
        root,
        "api.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: controller\n  namespace: app\n{}spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: controller}}\n  template:\n    metadata:\n      labels: {{app: controller}}\n    spec:\n      containers:\n      - name: controller\n        image: controller:dev\n",
            ready("api")
        ),
    );
    write(
        root,
        "tekton.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tekton-pipelines-controller\n  namespace: tekton-pipelines\n{}spec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: tekton}}\n  template:\n    metadata:\n      labels: {{app: tekton}}\n    spec:\n      containers:\n      - name: controller\n        image: tekton:v1\n",
            ready("tekton")
        ),
    );
}

fn write_tools(root: &Path, api_urls: &[String]) {
    let dir = root.display();
    write_script(
        root,
        "docker",
        &format!(
            "#!/bin/sh\nexport FAKE_DOCKER_DELAY_BUILD='{BUILD_SECS}'\nexport FAKE_DOCKER_LOG='{dir}/docker.log'\nexec '{FAKE_DOCKER}' \"$@\"\n"
        ),
    );
    let servers: Vec<String> = api_urls.iter().map(|u| format!("'{u}'")).collect();
    write_script(
        root,
        "kind",
        &format!(
            r#"#!/usr/bin/env bash
set -euo pipefail
export FAKE_KIND_STATE='{dir}/kind-state'
export FAKE_KIND_LOG='{dir}/kind.log'
export FAKE_KIND_DELAY_CREATE='{CREATE_SECS}'
export FAKE_KIND_DELAY_LOAD='{LOAD_SECS}'
export FAKE_KIND_NO_DOCKER=1
servers=({servers})
if [[ ${{1:-}} == create ]]; then
# Each new cluster gets the next fake API server.
exec 9>>'{dir}/api-servers.lock'
flock 9
n=$(cat '{dir}/api-servers.next' 2>/dev/null || echo 0)
echo $((n + 1)) >'{dir}/api-servers.next'
exec 9>&-
export FAKE_KIND_API_SERVER=${{servers[n % ${{#servers[@]}}]}}
fi
exec '{FAKE_KIND}' "$@"
"#,
            servers = servers.join(" ")
        ),
    );
    std::fs::create_dir_all(root.join("kind-state")).unwrap();
}

fn write_config(root: &Path, max_concurrent_builds: usize) -> Config {
    let mut text = format!(
        "[daemon]\nmax_concurrent_builds = {max_concurrent_builds}\n\n[tools]\ndocker = \"{}\"\nkind = \"{}\"\n\n[profiles.{PROFILE}.pool]\nwarm = {POOL_SIZE}\nmax = {POOL_SIZE}\n",
        root.join("docker").display(),
        root.join("kind").display()
    );
    for (name, context) in IMAGES {
        let _ = write!(
            text,
            "\n[[profiles.{PROFILE}.images]]\nname = \"{name}\"\ncontext = \"{context}\"\n"
        );
    }
    let _ = write!(
        text,
        "\n[profiles.{PROFILE}.cluster]\nready_timeout = \"30s\"\n\n[profiles.{PROFILE}.bootstrap]\nmanifests = [\"bootstrap.yaml\"]\n"
    );
    for (name, after, _) in DEPLOY {
        let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = write!(
            text,
            "\n[[profiles.{PROFILE}.deploy]]\nname = \"{name}\"\nmanifests = [\"{name}.yaml\"]\nafter = [{}]\ntimeout = \"60s\"\n",
            after.join(", ")
        );
    }
    let path = write(root, "infrad.toml", &text);
    Config::load(&path).unwrap_or_else(|e| panic!("the bench config is valid: {e}"))
}

/// One cluster built by a pipeline, as `infrad build` does it, with its recorded steps.
struct OneShot {
    /// The `Provisioner::build` call.
    wall: Duration,
    called_at: i64,
    returned_at: i64,
    steps: Vec<StepRow>,
}

async fn one_shot(world: &World, pipeline: &Pipeline, n: usize) -> OneShot {
    let profile = world.config.profile(PROFILE).unwrap().clone();
    let id = format!("{n:08x}");
    let cluster = ClusterSpec {
        name: format!("build-{PROFILE}-{id}"),
        id,
        profile,
    };
    let store = Store::in_memory().await.expect("an in-memory store");
    let run_id = store
        .insert_building(&cluster.id, &cluster.name, PROFILE, "local", time::now())
        .await
        .expect("a run row");
    let recorder = Recorder::new(store.clone(), run_id);
    let called_at = time::now();
    let started = Instant::now();
    pipeline
        .build(&cluster, &recorder)
        .await
        .unwrap_or_else(|f| panic!("the build failed in {}/{}: {}", f.phase, f.step, f.error));
    let wall = started.elapsed();
    let returned_at = time::now();
    let steps = store.build_steps_of_run(run_id).await.unwrap();
    store.close().await;
    OneShot {
        wall,
        called_at,
        returned_at,
        steps,
    }
}

fn print_run_detail(run: &OneShot) {
    let origin = run.called_at;
    let at = |ms: i64| format!("{:>6.2}s", (ms - origin) as f64 / 1000.0);
    println!("  steps of the last run (t = 0 when Provisioner::build was called):");
    println!(
        "    {:<8} {:<24} {:>7} {:>7} {:>7}  configured latency",
        "phase", "step", "start", "end", "took"
    );
    for s in &run.steps {
        let configured = match (s.phase.as_str(), s.step.as_str()) {
            ("build", _) => format!("{BUILD_SECS:.2}s (docker build)"),
            ("cluster", "kind create cluster") => format!("{CREATE_SECS:.2}s"),
            ("load", _) => format!("{LOAD_SECS:.2}s"),
            ("deploy", name) => DEPLOY
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, _, delay)| {
                    let over = dur(s).saturating_sub(Duration::from_millis(*delay));
                    format!(
                        "{:.2}s ready delay (+{} spent above it)",
                        *delay as f64 / 1000.0,
                        ms(over)
                    )
                })
                .unwrap_or_default(),
            _ => "0 (fake API answers at once)".into(),
        };
        println!(
            "    {:<8} {:<24} {} {} {:>7}  {}",
            s.phase,
            s.step,
            at(s.started_at),
            at(s.ended_at.unwrap_or(s.started_at)),
            secs(dur(s)),
            configured
        );
    }
    println!("  phases (infrad::timings::phases_of_run):");
    println!(
        "    {:<10} {:>8}  steps (in parallel inside a phase)",
        "phase", "took"
    );
    for phase in phases_of_run(&run.steps) {
        let inner: Vec<String> = phase
            .steps
            .iter()
            .map(|(step, took)| format!("{step} {}", secs(*took)))
            .collect();
        println!(
            "    {:<10} {:>8}  {}",
            phase.phase,
            secs(phase.duration),
            inner.join(", ")
        );
    }
    println!("    {:<10} {:>8}", "total", secs(run_total(&run.steps)));
    let (_, chain) = critical_path(&run.steps);
    println!("  critical path, with the idle gap before each step:");
    let mut previous_end = run.called_at;
    let mut gaps = Duration::ZERO;
    for s in &chain {
        let gap = time::duration_between(previous_end, s.started_at);
        gaps += gap;
        println!(
            "    gap {:>6}  then {}/{} {}",
            ms(gap),
            s.phase,
            s.step,
            secs(dur(s))
        );
        previous_end = s.ended_at.unwrap_or(s.started_at);
    }
    let tail = time::duration_between(previous_end, run.returned_at);
    println!(
        "    gap {:>6}  then return (namespace baseline, kubeconfig read)",
        ms(tail)
    );
    println!(
        "    idle time on the critical path: {} (wall - critical path, in ms resolution)",
        ms(gaps + tail)
    );
}

async fn pipeline_efficiency() {
    println!(
        "1. PIPELINE EFFICIENCY: one cluster, Pipeline::build, {EFFICIENCY_RUNS} runs (fresh image cache each)"
    );
    println!("   critical path = slowest image build + kind create + api ready + bootstrap + load");
    println!(
        "                   + longest deploy chain (db -> api vs tekton), each step at its own recorded duration"
    );
    let ideal = ideal_critical_path(0);
    println!(
        "   configured latencies alone give {} (3.00 build + 0.50 create + 0.75 load + 3.50 db->api)",
        secs(ideal)
    );
    println!();
    println!(
        "   {:<4} {:>8} {:>9} {:>14} {:>11} {:>10} {:>16} {:>11}",
        "run",
        "wall",
        "span",
        "critical path",
        "wall/crit",
        "naive sum",
        "wall/configured",
        "docker builds"
    );
    let mut ratios = Vec::new();
    let mut last = None;
    for run in 1..=EFFICIENCY_RUNS {
        let world = World::new(1, 2, 0).await;
        let pipeline = world.pipeline("state");
        pipeline
            .preflight()
            .await
            .expect("the fake tools are found");
        let result = one_shot(&world, &pipeline, run).await;
        let (critical, _) = critical_path(&result.steps);
        let naive: Duration = result.steps.iter().map(dur).sum();
        let ratio = result.wall.as_secs_f64() / critical.as_secs_f64();
        ratios.push(ratio);
        println!(
            "   {:<4} {:>8} {:>9} {:>14} {:>11.3} {:>10} {:>16.3} {:>11}",
            run,
            secs(result.wall),
            secs(run_total(&result.steps)),
            secs(critical),
            ratio,
            secs(naive),
            result.wall.as_secs_f64() / ideal.as_secs_f64(),
            world.docker_builds()
        );
        last = Some(result);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!();
    println!(
        "   wall / critical path: median {median:.3}, worst {:.3} (goal <= 1.05) -> {}",
        ratios[ratios.len() - 1],
        if median <= 1.05 { "met" } else { "NOT met" }
    );
    println!(
        "   (span = first step start to last step end; naive sum = every step one after another)"
    );
    println!();
    if let Some(run) = last {
        print_run_detail(&run);
    }
    println!();
    off_grid_run().await;
}

/// One more run with every ready delay moved off the readiness poll's 250 ms grid.
async fn off_grid_run() {
    let world = World::new(1, 2, OFF_GRID_MS).await;
    let pipeline = world.pipeline("state");
    pipeline
        .preflight()
        .await
        .expect("the fake tools are found");
    let result = one_shot(&world, &pipeline, 0).await;
    let (critical, _) = critical_path(&result.steps);
    let ideal = ideal_critical_path(OFF_GRID_MS);
    let over: Vec<String> = DEPLOY
        .iter()
        .filter_map(|(name, _, delay)| {
            let step = result
                .steps
                .iter()
                .find(|s| s.phase == "deploy" && s.step == *name)?;
            let over = dur(step).saturating_sub(Duration::from_millis(delay + OFF_GRID_MS));
            Some(format!("{name} +{}", ms(over)))
        })
        .collect();
    println!(
        "  off the poll grid (one more run, every ready delay +{OFF_GRID_MS} ms, so not a multiple of POLL = 250 ms):"
    );
    println!(
        "    wall {}  critical path {}  wall/crit {:.3}  configured {}  wall/configured {:.3}",
        secs(result.wall),
        secs(critical),
        result.wall.as_secs_f64() / critical.as_secs_f64(),
        secs(ideal),
        result.wall.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "    time deploy steps spent above their ready delay: {}",
        over.join(", ")
    );
    println!(
        "    (readiness is polled every 250 ms: a workload ready just after a poll waits for the next one,"
    );
    println!(
        "    once per step of a deploy chain; this lands inside the steps, so wall/crit does not show it)"
    );
}

/// The daemon with the real pipeline filling a pool of [`POOL_SIZE`]; time until all are ready.
async fn pool_fill(max_concurrent_builds: usize) -> (Duration, Vec<Duration>, usize) {
    let world = World::new(POOL_SIZE, max_concurrent_builds, 0).await;
    let state = world.path("daemon-state");
    let pipeline = Arc::new(world.pipeline("daemon-state"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = world.config.clone();
    let started = Instant::now();
    let daemon = tokio::spawn(async move {
        infrad::daemon::serve(config, &state, listener, pipeline, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut client = Client::connect(&addr.to_string())
        .await
        .expect("the daemon answers");
    let mut ready_at = Vec::new();
    loop {
        let status = client.status(Some(PROFILE)).await.expect("Status answers");
        let profile = &status.profiles[0];
        if let Some(failure) = &profile.last_failure {
            panic!("a pool build failed: {failure:?}");
        }
        let ready = profile.counts.map_or(0, |c| c.ready as usize);
        while ready_at.len() < ready {
            ready_at.push(started.elapsed());
        }
        if ready >= POOL_SIZE {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the pool did not fill in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    daemon
        .await
        .expect("the daemon task")
        .expect("the daemon stops cleanly");
    (elapsed, ready_at, world.docker_builds())
}

/// [`POOL_SIZE`] one-shot builds one after another, each with a fresh pipeline (so a fresh
/// image cache), as [`POOL_SIZE`] suites running `infrad build` each would.
async fn sequential_one_shots() -> (Duration, Vec<Duration>, usize) {
    let world = World::new(POOL_SIZE, 2, 0).await;
    let started = Instant::now();
    let mut each = Vec::new();
    for n in 0..POOL_SIZE {
        let one = Instant::now();
        let pipeline = world.pipeline(&format!("state-{n}"));
        pipeline
            .preflight()
            .await
            .expect("the fake tools are found");
        one_shot(&world, &pipeline, n).await;
        each.push(one.elapsed());
    }
    (started.elapsed(), each, world.docker_builds())
}

async fn pool_versus_one_shots() {
    println!(
        "2. POOL OF {POOL_SIZE} (daemon, real pipeline) vs {POOL_SIZE} ONE-SHOT BUILDS ONE AFTER ANOTHER"
    );
    println!(
        "   pool: infrad::daemon::serve on 127.0.0.1:0, warm = max = {POOL_SIZE}, time from start until Status says {POOL_SIZE} ready"
    );
    println!();
    let list = |v: &[Duration]| v.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(", ");
    let mut pools = Vec::new();
    for limit in [2, 4] {
        let (total, ready_at, builds) = pool_fill(limit).await;
        let note = if limit == 2 {
            " (default; kind's limit)"
        } else {
            ""
        };
        println!(
            "   pool, max_concurrent_builds = {limit}{note}: {} until {POOL_SIZE} ready; ready at [{}]; docker builds: {builds}",
            secs(total),
            list(&ready_at)
        );
        pools.push((limit, total));
    }
    let (seq_total, each, seq_builds) = sequential_one_shots().await;
    println!(
        "   {POOL_SIZE} one-shot builds in sequence: {} in all; each [{}]; docker builds: {seq_builds}",
        secs(seq_total),
        list(&each)
    );
    println!();
    for (limit, total) in &pools {
        println!(
            "   speed-up with max_concurrent_builds = {limit}: {:.2}x ({} vs {})",
            seq_total.as_secs_f64() / total.as_secs_f64(),
            secs(seq_total),
            secs(*total)
        );
    }
    println!();
    println!(
        "   Why: the pool builds each image once for all its clusters (phase 1 is shared per profile:"
    );
    println!(
        "   {} docker builds for {POOL_SIZE} clusters instead of {}), and runs up to max_concurrent_builds",
        IMAGES.len(),
        IMAGES.len() * POOL_SIZE
    );
    println!(
        "   pipelines at once, so clusters 2..{POOL_SIZE} pay only create + load + deploy, overlapped."
    );
    println!("   And the pool does it ahead of demand: a suite's Acquire then takes milliseconds.");
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches`/`--all-targets` runs this binary
    // without it, and must not spend a minute and a half here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline benchmark skipped: run it with `cargo bench --bench pipeline`");
        return;
    }
    let started = Instant::now();
    println!("infrad pipeline benchmark");
    println!("reproduce: cargo bench --bench pipeline");
    println!();
    println!("Fake tools at DESIGN.md's measured latencies, scaled 1 s per minute:");
    println!(
        "  build {BUILD_SECS:.2}s per image ({} images, in parallel) | kind create {CREATE_SECS:.2}s | kind load {LOAD_SECS:.2}s",
        IMAGES.len()
    );
    let deploy: Vec<String> = DEPLOY
        .iter()
        .map(|(name, after, ms)| {
            let after = if after.is_empty() {
                String::new()
            } else {
                format!(" after {}", after.join(","))
            };
            format!("{name} {:.2}s{after}", *ms as f64 / 1000.0)
        })
        .collect();
    println!(
        "  deploy (ready delay per workload): {}",
        deploy.join(" | ")
    );
    println!("  everything on 127.0.0.1: fake docker, fake kind, in-process fake API servers");
    println!();
    pipeline_efficiency().await;
    println!();
    pool_versus_one_shots().await;
    println!();
    println!("benchmark took {}", secs(started.elapsed()));
}

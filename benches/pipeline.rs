//! How close the real pipeline gets to the ideal its configured latencies allow, what a warm
//! pool saves over one-shot builds, and what an Acquire with the caller's own images costs
//! against a full pipeline. Run: `cargo bench --bench pipeline` (about 2 minutes).
//! It measures first, then prints the report; it asserts nothing about speed.
//!
//! The tools are fakes at latencies proportional to the measured ones in docs/architecture.md
//! ("The problem"), 1 s per minute: `docker build` per image (the fake docker), `kind create
//! cluster` and `kind load` (the fake kind), and deploy steps whose workloads a fake Kubernetes
//! API server reports ready after a per-object delay. Each cluster gets an API server of its
//! own. Everything runs on 127.0.0.1; no Docker, kind or network is needed.
use std::time::{Duration, Instant};

use infrad::{
    config::Config,
    pipeline::Pipeline,
    pool::{ClusterSpec, Provisioner, Recorder},
    store::{StepRow, Store},
    time::{self, Millis},
    timings::{phase_table, run_total},
};
use infrad_client::{Acquire, Client, proto};
use infrad_test_support::{
    recipe::{Recipe, crd, deployment, documents, namespace, stateful_set},
    world::FakeWorld,
};

const PROFILE: &str = "we-e2e";
/// One image build (both build in parallel).
const BUILD_SECS: f64 = 3.0;
const CREATE_SECS: f64 = 0.5;
const LOAD_SECS: f64 = 0.75;
const IMAGES: [(&str, &str); 2] = [
    ("controller:dev", "controller"),
    ("datastorage:dev", "datastorage"),
];
/// Deploy steps in the seed's proportions: name, the steps it waits for, ready delay of its
/// workload (ms), its image. Tekton, PostgreSQL and Redis run registry images, none of the
/// profile's: they start while the images load, and Tekton is the longest wait, as in the seed.
const DEPLOY: [(&str, &[&str], u64, &str); 5] = [
    ("tekton", &[], 3_000, "tekton:v1"),
    ("postgres", &[], 1_000, "postgres:15"),
    ("redis", &[], 500, "redis:7"),
    (
        "datastorage",
        &["postgres", "redis"],
        1_000,
        "datastorage:dev",
    ),
    (
        "controller",
        &["datastorage", "tekton"],
        1_000,
        "controller:dev",
    ),
];
/// The one deploy step run as a StatefulSet (the rest are Deployments).
const STATEFUL: &str = "postgres";
const RUNS: usize = 3;
/// Added to every ready delay in one extra run, to take them off a 250 ms grid (every configured
/// delay is a multiple of it, which would flatter readiness that polls at that period).
const OFF_GRID_MS: u64 = 130;
const POOL_SIZE: usize = 4;
/// The images Acquire overrides, one scenario each: the controller alone (the usual commit),
/// then both images the commit builds.
const OVERLAYS: [&[&str]; 2] = [&["controller:dev"], &["controller:dev", "datastorage:dev"]];

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn took(step: &StepRow) -> Duration {
    time::duration_between(step.started_at, step.ended_at.unwrap_or(step.started_at))
}

fn ready_delay(step: &str, offset_ms: u64) -> Option<Duration> {
    DEPLOY
        .iter()
        .find(|s| s.0 == step)
        .map(|s| Duration::from_millis(s.2 + offset_ms))
}

/// Whether a deploy step runs one of the profile's images (and so waits for the load phase).
fn uses_profile_image(step: &str) -> bool {
    DEPLOY
        .iter()
        .find(|s| s.0 == step)
        .is_some_and(|s| IMAGES.iter().any(|(image, _)| *image == s.3))
}

/// When the last deploy step ends, and the chain of steps leading to it: each step starts when
/// its `after` steps have ended and not before `start(step)`, then takes `duration(step)`.
fn deploy_finish(
    duration: &dyn Fn(&str) -> Option<Duration>,
    start: &dyn Fn(&str) -> Duration,
) -> (Duration, Vec<&'static str>) {
    DEPLOY
        .iter()
        .map(|s| step_finish(s.0, duration, start))
        .max_by_key(|(d, _)| *d)
        .unwrap_or_default()
}

/// When one deploy step ends (by the rules of [`deploy_finish`]), and the chain leading to it.
fn step_finish(
    name: &'static str,
    duration: &dyn Fn(&str) -> Option<Duration>,
    start: &dyn Fn(&str) -> Duration,
) -> (Duration, Vec<&'static str>) {
    let after = DEPLOY.iter().find(|s| s.0 == name).map_or(&[][..], |s| s.1);
    let mut best = after
        .iter()
        .map(|dep| step_finish(dep, duration, start))
        .max_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d >= start(name))
        .unwrap_or((start(name), Vec::new()));
    best.0 += duration(name).unwrap_or_default();
    best.1.push(name);
    best
}

/// What a pipeline with zero overhead would take with the configured latencies: slowest image
/// build, create, then the deploy steps, those that use a profile image after the load; with
/// the parts of its critical path, for the report.
struct Ideal {
    total: Duration,
    parts: Vec<(String, Duration)>,
}

fn ideal(offset_ms: u64) -> Ideal {
    let build = Duration::from_secs_f64(BUILD_SECS);
    let create = Duration::from_secs_f64(CREATE_SECS);
    let load = Duration::from_secs_f64(LOAD_SECS);
    let start = |name: &str| {
        build
            + create
            + if uses_profile_image(name) {
                load
            } else {
                Duration::ZERO
            }
    };
    let (end, chain) = deploy_finish(&|name| ready_delay(name, offset_ms), &start);
    let mut parts = vec![("build".to_string(), build), ("create".to_string(), create)];
    if chain.first().is_none_or(|first| uses_profile_image(first)) {
        parts.push(("load".to_string(), load));
    }
    let deploy = end.saturating_sub(parts.iter().map(|(_, d)| *d).sum());
    parts.push((chain.join("->"), deploy));
    Ideal {
        total: end.max(build + create + load),
        parts,
    }
}

/// The critical path of a recorded run, each step at its own recorded duration: slowest image
/// build, the cluster steps, the load if the deciding deploy chain waits for it, then that chain.
fn critical_path(steps: &[StepRow]) -> Vec<&StepRow> {
    let mut chain: Vec<&StepRow> = Vec::new();
    chain.extend(
        steps
            .iter()
            .filter(|s| s.phase == "build")
            .max_by_key(|s| took(s)),
    );
    chain.extend(steps.iter().filter(|s| s.phase == "cluster"));
    let load = steps.iter().find(|s| s.phase == "load");
    let find = |name: &str| steps.iter().find(|s| s.phase == "deploy" && s.step == name);
    let before: Duration = chain.iter().map(|s| took(s)).sum();
    let start = |name: &str| match load {
        Some(load) if uses_profile_image(name) => before + took(load),
        _ => before,
    };
    let (_, deploy) = deploy_finish(&|name| find(name).map(took), &start);
    if deploy.first().is_none_or(|first| uses_profile_image(first)) {
        chain.extend(load);
    }
    chain.extend(deploy.into_iter().filter_map(find));
    chain
}

/// A world for `clusters` clusters (the pool's `warm` and `max`): fake docker and kind at the
/// configured latencies, and the recipe (ready delays plus `offset_ms`) with its configuration
/// text.
async fn world(
    clusters: usize,
    max_concurrent_builds: usize,
    offset_ms: u64,
) -> (FakeWorld, String) {
    let world = FakeWorld::with_api_servers(clusters).await;
    world.fake_docker(BUILD_SECS);
    world.set_kind_env(&[
        ("FAKE_KIND_DELAY_CREATE", &CREATE_SECS.to_string()),
        ("FAKE_KIND_DELAY_LOAD", &LOAD_SECS.to_string()),
        ("FAKE_KIND_NO_DOCKER", "1"),
    ]);
    let ready = |name: &str| {
        ready_delay(name, offset_ms)
            .unwrap()
            .as_millis()
            .to_string()
    };
    let mut recipe = Recipe::new(PROFILE).toml(&format!(
        "[daemon]\nmax_concurrent_builds = {max_concurrent_builds}\n\
         [profiles.{PROFILE}.pool]\nwarm = {clusters}\nmax = {clusters}\n\
         [profiles.{PROFILE}.cluster]\nready_timeout = \"30s\""
    ));
    for (name, context) in IMAGES {
        recipe = recipe.image(name, context);
    }
    recipe = recipe.bootstrap(
        "bootstrap.yaml",
        &documents(&[
            &crd("pipelines", "tekton.dev", "Pipeline"),
            &namespace("app"),
        ]),
    );
    // The database as a StatefulSet, the rest as Deployments, each of its step's image.
    for (name, after, _, image) in DEPLOY {
        let ready = Some(ready(name));
        let manifest = if name == STATEFUL {
            stateful_set(name, "app", image, ready.as_deref())
        } else {
            deployment(name, "app", image, ready.as_deref())
        };
        recipe = recipe.step(name, after, &manifest).timeout("60s");
    }
    let text = recipe.write(&world);
    (world, text)
}

fn pipeline(world: &FakeWorld, config: &Config, state: &str) -> Pipeline {
    Pipeline::new(&config.tools, &world.dir.path().join(state)).expect("a state directory")
}

/// One cluster built by a fresh pipeline (so a fresh image cache), as `infrad build` does it.
struct OneShot {
    /// The `Provisioner::build` call.
    wall: Duration,
    called_at: Millis,
    returned_at: Millis,
    steps: Vec<StepRow>,
    docker_builds: usize,
}

async fn one_shot(world: &FakeWorld, config: &Config, n: usize) -> OneShot {
    let pipeline = pipeline(world, config, &format!("state-{n}"));
    pipeline
        .preflight()
        .await
        .expect("the fake tools are found");
    let id = format!("{n:08x}");
    let cluster = ClusterSpec {
        name: format!("build-{PROFILE}-{id}"),
        id,
        profile: config.profile(PROFILE).unwrap().clone(),
    };
    let store = Store::in_memory().await.expect("an in-memory store");
    let run_id = store
        .insert_building(&cluster.id, &cluster.name, PROFILE, "local", time::now())
        .await
        .expect("a run row");
    let recorder = Recorder::new(store.clone(), run_id);
    let called_at = time::now();
    let started = Instant::now();
    if let Err(failure) = pipeline.build(&cluster, &recorder).await {
        panic!("the build failed in {failure}");
    }
    let wall = started.elapsed();
    let returned_at = time::now();
    let steps = store.build_steps_of_run(run_id).await.unwrap();
    store.close().await;
    OneShot {
        wall,
        called_at,
        returned_at,
        steps,
        docker_builds: world.docker_builds(),
    }
}

/// A pool of [`POOL_SIZE`] filled by the daemon with the real pipeline.
struct PoolFill {
    max_concurrent_builds: usize,
    total: Duration,
    ready_at: Vec<Duration>,
    docker_builds: usize,
}

async fn pool_fill(max_concurrent_builds: usize) -> PoolFill {
    let (world, text) = world(POOL_SIZE, max_concurrent_builds, 0).await;
    let started = Instant::now();
    let daemon = world.daemon(&text).await;
    let ready_at = until_ready(&mut daemon.client().await, POOL_SIZE, started).await;
    let total = ready_at[POOL_SIZE - 1];
    daemon.stop().await;
    PoolFill {
        max_concurrent_builds,
        total,
        ready_at,
        docker_builds: world.docker_builds(),
    }
}

/// When (since `started`) each of the first `n` clusters became ready, as Status tells.
async fn until_ready(client: &mut Client, n: usize, started: Instant) -> Vec<Duration> {
    let mut ready_at = Vec::new();
    while ready_at.len() < n {
        let status = client.status(Some(PROFILE)).await.expect("Status answers");
        let profile = &status.profiles[0];
        if let Some(failure) = &profile.last_failure {
            panic!("a pool build failed: {failure:?}");
        }
        let ready = profile.counts.map_or(0, |c| c.ready as usize);
        while ready_at.len() < ready.min(n) {
            ready_at.push(started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the pool did not fill in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ready_at
}

/// [`RUNS`] Acquires with the caller's images for one scenario of [`OVERLAYS`].
struct OverlayRun {
    images: &'static [&'static str],
    walls: Vec<Duration>,
    /// The overlay's timings of the last Acquire, as its lease reports them.
    last: proto::BuildTimings,
}

/// Every scenario on a pool of ready clusters, one cluster per Acquire (none is released, so
/// no rebuild runs beside the measured calls). Each reference is new, so each load imports.
async fn overlays() -> Vec<OverlayRun> {
    let clusters = RUNS * OVERLAYS.len();
    let (world, text) = world(clusters, clusters, 0).await;
    let daemon = world.daemon(&text).await;
    let mut client = daemon.client().await;
    until_ready(&mut client, clusters, Instant::now()).await;
    let mut scenarios = Vec::new();
    for (k, images) in OVERLAYS.into_iter().enumerate() {
        let mut walls = Vec::new();
        let mut last = None;
        for run in 0..RUNS {
            let mut acquire = Acquire::new(PROFILE)
                .holder(format!("overlay-{k}-{run}"))
                .wait(Duration::from_secs(60));
            for image in images {
                let repository = image.split(':').next().unwrap_or(image);
                acquire = acquire.image(*image, format!("{repository}:pr-{k}-{run}"));
            }
            let started = Instant::now();
            let lease = client
                .acquire_lease(acquire)
                .await
                .expect("the overlay succeeds");
            walls.push(started.elapsed());
            last = lease.overlay;
        }
        scenarios.push(OverlayRun {
            images,
            walls,
            last: last.expect("a lease with images carries the overlay's timings"),
        });
    }
    daemon.stop().await;
    scenarios
}

/// What an overlay with zero overhead would take: the load, then the deploy steps that use an
/// overridden image, each after its `after` steps (the others are ready already and cost
/// nothing); with that chain.
fn overlay_ideal(images: &[&str]) -> (Duration, Vec<&'static str>) {
    let load = Duration::from_secs_f64(LOAD_SECS);
    let affected = |name: &str| DEPLOY.iter().any(|s| s.0 == name && images.contains(&s.3));
    let (end, chain) = deploy_finish(
        &|name| {
            if affected(name) {
                ready_delay(name, 0)
            } else {
                Some(Duration::ZERO)
            }
        },
        &|_| load,
    );
    (end, chain.into_iter().filter(|s| affected(s)).collect())
}

/// [`POOL_SIZE`] one-shot builds one after another, as that many suites running
/// `infrad build` each would.
struct Sequential {
    total: Duration,
    each: Vec<Duration>,
    docker_builds: usize,
}

async fn sequential_one_shots() -> Sequential {
    let (world, text) = world(POOL_SIZE, 2, 0).await;
    let config = world.config(&text);
    let started = Instant::now();
    let mut each = Vec::new();
    for n in 0..POOL_SIZE {
        let one = Instant::now();
        one_shot(&world, &config, n).await;
        each.push(one.elapsed());
    }
    Sequential {
        total: started.elapsed(),
        each,
        docker_builds: world.docker_builds(),
    }
}

/// The seed's order as a plain shell script, which is what a suite would run without infrad:
/// images built in parallel, the cluster, bootstrap, the load, then the deploy steps in parallel
/// (`&` + `wait`), each applied with kubectl and waited for with `rollout status`.
fn seed_order_script() -> String {
    let mut script = String::from(
        "set -euo pipefail\nexport KUBECONFIG=\"$PWD/seed.kubeconfig\"\n\
         apply() { kubectl apply --server-side --validate=false -f \"$1\" >/dev/null; }\n",
    );
    for (name, context) in IMAGES {
        script.push_str(&format!(
            "docker build --tag {name} --file {context}/Dockerfile {context} 2>/dev/null &\n"
        ));
    }
    script.push_str(
        "wait\nkind create cluster --name seed-order --kubeconfig \"$KUBECONFIG\" 2>/dev/null\n",
    );
    script.push_str("apply bootstrap.yaml\nkubectl wait --for=condition=established --timeout=60s crd/pipelines.tekton.dev >/dev/null\n");
    let names: Vec<&str> = IMAGES.iter().map(|(name, _)| *name).collect();
    script.push_str(&format!(
        "kind load docker-image {} --name seed-order 2>/dev/null\n",
        names.join(" ")
    ));
    // Every step in the background once the steps it needs have ended (`wait` on their
    // PIDs), started in the order of their earliest possible start: a wait never holds back
    // a step that could already run, so the script reaches its own ideal.
    let never_before = |_: &str| Duration::ZERO;
    let delay = |name: &str| ready_delay(name, 0);
    let start_of = |name: &'static str| {
        step_finish(name, &delay, &never_before).0 - delay(name).unwrap_or_default()
    };
    let mut order: Vec<_> = DEPLOY.iter().collect();
    order.sort_by_key(|s| start_of(s.0));
    for (name, after, _, _) in order {
        let kind = if *name == STATEFUL {
            "statefulset"
        } else {
            "deployment"
        };
        for dep in *after {
            script.push_str(&format!("wait \"$pid_{dep}\"\n"));
        }
        script.push_str(&format!(
            "(apply {name}.yaml && kubectl rollout status --timeout=60s {kind}/{name} -n app >/dev/null) &\npid_{name}=$!\n"
        ));
    }
    // The steps nobody waited for yet; a failed step fails the script (`set -e`).
    for (name, _, _, _) in DEPLOY
        .iter()
        .filter(|s| !DEPLOY.iter().any(|d| d.1.contains(&s.0)))
    {
        script.push_str(&format!("wait \"$pid_{name}\"\n"));
    }
    script
}

/// Runs [`seed_order_script`] in a fresh world (fresh fake API server) with the same fake tools.
async fn seed_order() -> Duration {
    let (world, _) = world(1, 2, 0).await;
    let dir = world.dir.path();
    std::fs::write(dir.join("seed-order.sh"), seed_order_script()).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let output = tokio::process::Command::new("bash")
        .arg("seed-order.sh")
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .await
        .expect("bash runs");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "the seed-order script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

fn configured_latency(step: &StepRow, offset_ms: u64) -> String {
    match (step.phase.as_str(), step.step.as_str()) {
        ("build", _) => format!("{BUILD_SECS:.2}s (docker build)"),
        ("cluster", "kind create cluster") => format!("{CREATE_SECS:.2}s"),
        ("load", _) => format!("{LOAD_SECS:.2}s"),
        ("deploy", name) => ready_delay(name, offset_ms)
            .map(|delay| {
                let over = took(step).saturating_sub(delay);
                format!("{} ready delay (+{} above it)", secs(delay), ms(over))
            })
            .unwrap_or_default(),
        _ => "0 (the fake API server answers at once)".into(),
    }
}

fn report_run(run: &OneShot, offset_ms: u64) {
    let at = |t: Millis| format!("{:>6.2}s", (t - run.called_at) as f64 / 1000.0);
    println!("  steps of the last run (t = 0 when Provisioner::build was called):");
    println!(
        "    {:<8} {:<24} {:>7} {:>7} {:>7}  configured latency",
        "phase", "step", "start", "end", "took"
    );
    for s in &run.steps {
        println!(
            "    {:<8} {:<24} {} {} {:>7}  {}",
            s.phase,
            s.step,
            at(s.started_at),
            at(s.ended_at.unwrap_or(s.started_at)),
            secs(took(s)),
            configured_latency(s, offset_ms)
        );
    }
    println!("  phases:");
    for line in phase_table(&run.steps).lines() {
        println!("    {line}");
    }
    println!("  critical path, with the idle gap before each step:");
    let mut previous_end = run.called_at;
    let mut idle = Duration::ZERO;
    for s in critical_path(&run.steps) {
        let gap = time::duration_between(previous_end, s.started_at);
        idle += gap;
        println!(
            "    gap {:>6}  then {}/{} {}",
            ms(gap),
            s.phase,
            s.step,
            secs(took(s))
        );
        previous_end = s.ended_at.unwrap_or(s.started_at);
    }
    let tail = time::duration_between(previous_end, run.returned_at);
    println!(
        "    gap {:>6}  then return (namespace baseline, kubeconfig read)",
        ms(tail)
    );
    println!("    idle time on the critical path: {}", ms(idle + tail));
}

fn report_efficiency(runs: &[OneShot], off_grid: &OneShot, scripts: &[Duration]) {
    let ideal0 = ideal(0);
    let parts: Vec<String> = ideal0
        .parts
        .iter()
        .map(|(what, d)| format!("{what} {}", secs(*d)))
        .collect();
    println!(
        "1. PIPELINE EFFICIENCY: one cluster, Pipeline::build, {RUNS} runs (fresh image cache each)"
    );
    println!(
        "   ideal (configured latencies, zero overhead): {} = {}",
        secs(ideal0.total),
        parts.join(" + ")
    );
    println!("   critical path = the same chain at each step's *recorded* duration");
    println!();
    println!(
        "   {:<4} {:>8} {:>9} {:>14} {:>10} {:>11} {:>11} {:>14}",
        "run",
        "wall",
        "span",
        "critical path",
        "wall/crit",
        "wall/ideal",
        "naive sum",
        "docker builds"
    );
    let mut ratios: Vec<f64> = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        let critical: Duration = critical_path(&run.steps).iter().map(|s| took(s)).sum();
        let ratio = run.wall.as_secs_f64() / ideal0.total.as_secs_f64();
        ratios.push(ratio);
        println!(
            "   {:<4} {:>8} {:>9} {:>14} {:>10.3} {:>11.3} {:>11} {:>14}",
            n + 1,
            secs(run.wall),
            secs(run_total(&run.steps)),
            secs(critical),
            run.wall.as_secs_f64() / critical.as_secs_f64(),
            ratio,
            secs(run.steps.iter().map(took).sum()),
            run.docker_builds
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!();
    println!(
        "   wall / ideal: median {:.3}, worst {:.3}",
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
    println!(
        "   (span = first step start to last step end; naive sum = every step one after another)"
    );
    let script = median(scripts.to_vec());
    let infrad = median(runs.iter().map(|r| r.wall).collect());
    println!(
        "   baseline, the seed's order as a shell script (docker build &, kind create, kubectl apply \
         --server-side, kubectl wait / rollout status, & + wait): [{}]",
        scripts
            .iter()
            .map(|d| secs(*d))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "   infrad / script: {:.3} (medians {} / {})",
        infrad.as_secs_f64() / script.as_secs_f64(),
        secs(infrad),
        secs(script)
    );
    println!();
    if let Some(last) = runs.last() {
        report_run(last, 0);
    }
    println!();
    let ideal = ideal(OFF_GRID_MS);
    println!(
        "  off a 250 ms grid (every ready delay +{OFF_GRID_MS} ms; a poller would lose up to 250 ms a step):"
    );
    println!(
        "    wall {}  ideal {}  wall/ideal {:.3}",
        secs(off_grid.wall),
        secs(ideal.total),
        off_grid.wall.as_secs_f64() / ideal.total.as_secs_f64()
    );
    let over: Vec<String> = off_grid
        .steps
        .iter()
        .filter(|s| s.phase == "deploy")
        .filter_map(|s| {
            let delay = ready_delay(&s.step, OFF_GRID_MS)?;
            Some(format!("{} +{}", s.step, ms(took(s).saturating_sub(delay))))
        })
        .collect();
    println!(
        "    time deploy steps spent above their ready delay: {}",
        over.join(", ")
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report_overlays(scenarios: &[OverlayRun], runs: &[OneShot], scripts: &[Duration]) {
    let full = median(runs.iter().map(|r| r.wall).collect());
    let script = median(scripts.to_vec());
    let full_ideal = ideal(0).total;
    println!(
        "3. FRESH CODE ON A WARM BASE: Acquire with the caller's images on a ready cluster \
         (daemon, real pipeline), {RUNS} Acquires each"
    );
    println!(
        "   against a full pipeline (section 1, same run): median wall {}, ideal {}; the seed-order script: median {}",
        secs(full),
        secs(full_ideal),
        secs(script)
    );
    println!(
        "   own ideal = kind load {LOAD_SECS:.2}s + the chain of deploy steps using an overridden image"
    );
    println!();
    println!(
        "   {:<34} {:>40} {:>22} {:>8} {:>10} {:>10} {:>12} {:>16}",
        "images overridden",
        "own ideal",
        "walls",
        "median",
        "wall/own",
        "wall/full",
        "wall/script",
        "own/full ideals"
    );
    for scenario in scenarios {
        let (own, chain) = overlay_ideal(scenario.images);
        let wall = median(scenario.walls.clone());
        let walls: Vec<String> = scenario.walls.iter().map(|d| secs(*d)).collect();
        println!(
            "   {:<34} {:>40} {:>22} {:>8} {:>10.3} {:>10.3} {:>12.3} {:>16.3}",
            scenario.images.join(" + "),
            format!("{} (load->{})", secs(own), chain.join("->")),
            walls.join(" "),
            secs(wall),
            wall.as_secs_f64() / own.as_secs_f64(),
            wall.as_secs_f64() / full.as_secs_f64(),
            wall.as_secs_f64() / script.as_secs_f64(),
            own.as_secs_f64() / full_ideal.as_secs_f64()
        );
    }
    println!(
        "   (own/full ideals: the best wall/full any overlay could reach with these latencies)"
    );
    for scenario in scenarios {
        let steps: Vec<String> = scenario
            .last
            .phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
            .map(|(p, s)| {
                let took = s
                    .duration
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or_default();
                format!("{}/{} {}", p.phase, s.step, secs(took))
            })
            .collect();
        println!(
            "   last overlay of {}: {}",
            scenario.images.join(" + "),
            steps.join(", ")
        );
    }
}

fn report_pool(pools: &[PoolFill], sequential: &Sequential) {
    let list = |v: &[Duration]| v.iter().map(|d| secs(*d)).collect::<Vec<_>>().join(", ");
    println!(
        "2. POOL OF {POOL_SIZE} (daemon, real pipeline) vs {POOL_SIZE} ONE-SHOT BUILDS ONE AFTER ANOTHER"
    );
    println!("   pool: time from the daemon's start until Status says {POOL_SIZE} ready");
    println!();
    for pool in pools {
        println!(
            "   pool, max_concurrent_builds = {}: {} until {POOL_SIZE} ready; ready at [{}]; docker builds: {}",
            pool.max_concurrent_builds,
            secs(pool.total),
            list(&pool.ready_at),
            pool.docker_builds
        );
    }
    println!(
        "   {POOL_SIZE} one-shot builds in sequence: {} in all; each [{}]; docker builds: {}",
        secs(sequential.total),
        list(&sequential.each),
        sequential.docker_builds
    );
    println!();
    for pool in pools {
        println!(
            "   speed-up with max_concurrent_builds = {}: {:.2}x",
            pool.max_concurrent_builds,
            sequential.total.as_secs_f64() / pool.total.as_secs_f64()
        );
    }
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
    let mut runs = Vec::new();
    for n in 0..RUNS {
        let (world, text) = world(1, 2, 0).await;
        runs.push(one_shot(&world, &world.config(&text), n).await);
    }
    let (world, text) = world(1, 2, OFF_GRID_MS).await;
    let off_grid = one_shot(&world, &world.config(&text), 0).await;
    let mut pools = Vec::new();
    for limit in [2, 4] {
        pools.push(pool_fill(limit).await);
    }
    let sequential = sequential_one_shots().await;
    let overlays = overlays().await;
    let mut scripts = Vec::new();
    for _ in 0..RUNS {
        scripts.push(seed_order().await);
    }

    println!("infrad pipeline benchmark (cargo bench --bench pipeline)");
    println!();
    let deploy: Vec<String> = DEPLOY
        .iter()
        .map(|(name, after, delay, _)| {
            let after = if after.is_empty() {
                String::new()
            } else {
                format!(" after {}", after.join(","))
            };
            format!("{name} {}{after}", secs(Duration::from_millis(*delay)))
        })
        .collect();
    println!(
        "fake tools, 1 s per measured minute: build {BUILD_SECS:.2}s per image ({} images, in parallel) | \
         kind create {CREATE_SECS:.2}s | kind load {LOAD_SECS:.2}s | deploy ready delays: {}",
        IMAGES.len(),
        deploy.join(" | ")
    );
    println!();
    report_efficiency(&runs, &off_grid, &scripts);
    println!();
    report_pool(&pools, &sequential);
    println!();
    report_overlays(&overlays, &runs, &scripts);
    println!();
    println!("benchmark took {}", secs(started.elapsed()));
}

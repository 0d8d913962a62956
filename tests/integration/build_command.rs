//! `infrad build` — the built binary running the pipeline once in the foreground — against real
//! Docker, the fake kind and a fake Kubernetes API server (served by this test process on
//! 127.0.0.1; the binary reaches it over loopback). Also: a daemon whose kind is missing
//! degrades every profile, naming the tool to install.

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    sync::Arc,
    time::Duration,
};

use infrad::{config::Config, pipeline::Pipeline};
use infrad_client::Acquire;
use infrad_test_support::{
    TestDaemon,
    docker::docker_available,
    eventually,
    recipe::{Recipe, deployment, namespace},
    state_dir,
    world::{FakeWorld, is_private},
};
use tempfile::TempDir;

/// A liveness bound for one `infrad build` against the fakes; never a speed assertion.
const LIVENESS: Duration = Duration::from_secs(120);

/// Two images, a namespace as bootstrap, and two deploy steps: `web` after `db` (which takes a
/// moment to become ready). Image names are this file's own, so that other tests building at
/// the same time never see them change.
fn recipe(world: &FakeWorld) -> String {
    Recipe::new("demo")
        .toml("[profiles.demo.cluster]\nready_timeout = \"10s\"")
        .image("infrad-build-test/app:dev", "app")
        .image("infrad-build-test/db:dev", "db")
        .bootstrap("namespace.yaml", &namespace("app"))
        .step(
            "db",
            &[],
            &deployment("db", "app", "infrad-build-test/db:dev", Some("300")),
        )
        .timeout("20s")
        .step(
            "web",
            &["db"],
            &deployment("web", "app", "infrad-build-test/app:dev", Some("0")),
        )
        .timeout("20s")
        .write(world)
}

/// `infrad build --config <world>/infrad.toml --state-dir <state> ARGS…`, run to completion.
async fn infrad_build(world: &FakeWorld, state: &Path, args: &[&str]) -> Output {
    tokio::time::timeout(LIVENESS, build_command(world, state, args).output())
        .await
        .unwrap_or_else(|_| panic!("infrad build {args:?} did not finish within {LIVENESS:?}"))
        .expect("run infrad build")
}

/// `infrad build --config <world>/infrad.toml --state-dir <state> ARGS…`, not started yet.
fn build_command(world: &FakeWorld, state: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_infrad"));
    for var in [
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "INFRAD_LOG",
        "INFRAD_CONFIG",
        "INFRAD_STATE_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("build")
        .arg("--config")
        .arg(world.dir.path().join("infrad.toml"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Both streams, for assertion messages.
fn shown(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Start,
    Done,
    Failed,
}

/// The step lines of `infrad build`'s output, in order: (mark, "phase / step").
fn step_lines(stdout: &str) -> Vec<(Mark, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            // "    0.3s  start  build / x", "done   build / x (0.1s)", "FAILED … (0.1s): why"
            let (_at, rest) = line.trim_start().split_once("  ")?;
            let (mark, rest) = if let Some(r) = rest.strip_prefix("start  ") {
                (Mark::Start, r)
            } else if let Some(r) = rest.strip_prefix("done   ") {
                (Mark::Done, r)
            } else {
                (Mark::Failed, rest.strip_prefix("FAILED ")?)
            };
            let step = match mark {
                Mark::Start => rest,
                Mark::Done | Mark::Failed => &rest[..rest.find(" (")?],
            };
            Some((mark, step.to_string()))
        })
        .collect()
}

/// Index of the line marking `step` with `mark`; panics showing the output if there is none.
fn at(lines: &[(Mark, String)], mark: Mark, step: &str, stdout: &str) -> usize {
    lines
        .iter()
        .position(|(m, s)| *m == mark && s == step)
        .unwrap_or_else(|| panic!("no {mark:?} line for `{step}` in:\n{stdout}"))
}

/// The cluster named in `building cluster NAME (profile demo)`.
fn cluster_name(stdout: &str) -> String {
    let name = stdout
        .lines()
        .find_map(|l| l.strip_prefix("building cluster "))
        .and_then(|rest| rest.strip_suffix(" (profile demo)"))
        .unwrap_or_else(|| panic!("no `building cluster … (profile demo)` line:\n{stdout}"));
    assert!(name.starts_with("build-demo-"), "{name}");
    name.to_string()
}

/// A successful build: every step started and ended in order, then the phase table.
fn assert_built(output: &Output) -> String {
    assert!(output.status.success(), "{}", shown(output));
    let stdout = text(&output.stdout);
    let lines = step_lines(&stdout);
    for (mark, step) in &lines {
        assert_ne!(*mark, Mark::Failed, "{step} failed:\n{stdout}");
        if *mark == Mark::Start {
            assert!(
                at(&lines, Mark::Start, step, &stdout) < at(&lines, Mark::Done, step, &stdout),
                "`{step}` is done before it started:\n{stdout}"
            );
        }
    }
    let start = |step: &str| at(&lines, Mark::Start, step, &stdout);
    let done = |step: &str| at(&lines, Mark::Done, step, &stdout);
    let create = start("cluster / kind create cluster");
    for image in ["infrad-build-test/app:dev", "infrad-build-test/db:dev"] {
        assert!(done(&format!("build / {image}")) < create, "{stdout}");
    }
    assert!(done("cluster / kind create cluster") < start("cluster / bootstrap"));
    assert!(done("cluster / bootstrap") < start("load / kind load docker-image"));
    assert!(done("load / kind load docker-image") < start("deploy / db"));
    assert!(
        done("deploy / db") < start("deploy / web"),
        "web starts only once db is ready:\n{stdout}"
    );

    let mut rows = Vec::new();
    for line in stdout
        .lines()
        .skip_while(|l| !l.starts_with("phase "))
        .skip(1)
    {
        let first = line.split_whitespace().next().unwrap_or_default();
        rows.push(first);
        if first == "total" {
            break;
        }
    }
    assert_eq!(
        rows,
        ["build", "cluster", "load", "deploy", "total"],
        "the phase table:\n{stdout}"
    );
    cluster_name(&stdout)
}

#[tokio::test]
async fn build_leaves_a_ready_cluster_and_its_kubeconfig() {
    if !docker_available("build_leaves_a_ready_cluster_and_its_kubeconfig") {
        return;
    }
    let world = FakeWorld::new().await;
    world.config(&recipe(&world));
    let state = TempDir::new().unwrap();
    let output = infrad_build(&world, state.path(), &["--profile", "demo"]).await;
    let name = assert_built(&output);
    let stdout = text(&output.stdout);

    assert!(
        stdout.contains(&format!("cluster {name} is ready\n")),
        "{stdout}"
    );
    let kubeconfig = PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("kubeconfig: "))
            .unwrap_or_else(|| panic!("no `kubeconfig:` line:\n{stdout}")),
    );
    assert!(
        kubeconfig.starts_with(state.path()),
        "{}",
        kubeconfig.display()
    );
    assert!(
        is_private(&kubeconfig),
        "{} is not mode 0600",
        kubeconfig.display()
    );
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains(&world.api.url()), "{config}");
    assert_eq!(
        world.kind_clusters(),
        [name.as_str()],
        "the cluster is left standing"
    );
    let loaded = world.loaded_images(&name);
    assert!(
        loaded.contains("infrad-build-test/app:dev") && loaded.contains("infrad-build-test/db:dev"),
        "{loaded}"
    );
    assert!(world.api.object("Deployment", Some("app"), "web").is_some());
}

#[tokio::test]
async fn build_rm_deletes_the_cluster_at_the_end() {
    if !docker_available("build_rm_deletes_the_cluster_at_the_end") {
        return;
    }
    let world = FakeWorld::new().await;
    world.config(&recipe(&world));
    let state = TempDir::new().unwrap();
    let output = infrad_build(&world, state.path(), &["--profile", "demo", "--rm"]).await;
    let name = assert_built(&output);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("deleted cluster {name}\n")),
        "{stdout}"
    );
    assert!(!stdout.contains("is ready"), "{stdout}");
    assert!(!stdout.contains("kubeconfig:"), "{stdout}");
    assert_eq!(world.kind_clusters(), Vec::<String>::new());
    let kubeconfig = state
        .path()
        .join("clusters")
        .join(format!("{name}.kubeconfig"));
    assert!(
        !kubeconfig.exists(),
        "{} is left behind",
        kubeconfig.display()
    );
}

/// `infrad build` with the fake kind failing as `FAKE_KIND_FAIL` says.
async fn failed_build(fail: &str) -> (FakeWorld, Output) {
    let world = FakeWorld::new().await;
    world.config(&recipe(&world));
    world.set_kind_env(&[("FAKE_KIND_FAIL", fail)]);
    let state = TempDir::new().unwrap();
    let output = infrad_build(&world, state.path(), &["--profile", "demo"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let stdout = text(&output.stdout);
    let lines = step_lines(&stdout);
    at(
        &lines,
        Mark::Failed,
        "cluster / kind create cluster",
        &stdout,
    );
    assert!(
        !lines
            .iter()
            .any(|(_, s)| s.starts_with("load / ") || s.starts_with("deploy / ")),
        "nothing runs after the failed step:\n{stdout}"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("build failed in phase cluster step kind create cluster (exit code 1)"),
        "{}",
        shown(&output)
    );
    let name = cluster_name(&stdout);
    assert!(
        stdout.contains(&format!("deleted the half-built cluster {name}")),
        "{stdout}"
    );
    assert!(
        world
            .kind_calls()
            .iter()
            .any(|c| c.args.starts_with(&["delete".into(), "cluster".into()])
                && c.args.contains(&name)),
        "infrad asks kind to delete {name}: {:?}",
        world.kind_calls()
    );
    assert_eq!(world.kind_clusters(), Vec::<String>::new());
    (world, output)
}

#[tokio::test]
async fn a_failed_cluster_create_names_phase_and_step_and_cleans_up() {
    if !docker_available("a_failed_cluster_create_names_phase_and_step_and_cleans_up") {
        return;
    }
    let (_world, output) = failed_build("create").await;
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("failed to init node with kubeadm"),
        "kind's error is passed on: {stderr}"
    );
}

/// kind leaves the nodes when only the kubeconfig cannot be written: infrad's delete is what
/// removes them.
#[tokio::test]
async fn a_cluster_kind_left_behind_is_deleted() {
    if !docker_available("a_cluster_kind_left_behind_is_deleted") {
        return;
    }
    let (_world, output) = failed_build("kubeconfig").await;
    let stderr = text(&output.stderr);
    assert!(stderr.contains("failed to lock config file"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_profile_is_refused_naming_the_known_ones() {
    let world = FakeWorld::new().await;
    let profiles = format!("{}[profiles.other]\n", recipe(&world));
    world.config(&profiles);
    let state = TempDir::new().unwrap();
    let output = infrad_build(&world, state.path(), &["--profile", "nope"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no profile \"nope\""), "{stderr}");
    assert!(stderr.contains("it has: demo, other"), "{stderr}");
    assert!(world.kind_calls().is_empty(), "nothing was run");
}

#[tokio::test]
async fn a_missing_kind_degrades_every_profile() {
    const MISSING: &str = "/nonexistent/kind not found: install kind";
    let config = Config::parse(
        Path::new("test.toml"),
        "[tools]\nkind = \"/nonexistent/kind\"\n[profiles.demo]\n[profiles.other]\n",
    )
    .expect("test config is valid");
    let state = TempDir::new().unwrap();
    let pipeline = Pipeline::new(&config.tools, &state_dir(&state)).unwrap();
    let daemon = TestDaemon::serve(config, Arc::new(pipeline), state).await;
    let client = daemon.client().await;
    eventually("every profile is degraded", || {
        let mut client = client.clone();
        async move {
            let status = client.status(None).await.unwrap();
            status.profiles.len() == 2 && status.profiles.iter().all(|p| p.degraded)
        }
    })
    .await;
    let mut client = client.clone();
    for profile in client.status(None).await.unwrap().profiles {
        assert!(
            profile.degraded_reason.contains(MISSING),
            "{}: {}",
            profile.profile,
            profile.degraded_reason
        );
    }
    let e = client
        .acquire_lease(
            Acquire::new("demo")
                .holder("job")
                .wait(Duration::from_secs(60)),
        )
        .await
        .expect_err("no cluster can be built");
    assert_eq!(e.code(), Some(tonic::Code::Unavailable), "{e}");
    assert!(e.to_string().contains(MISSING), "{e}");
    daemon.stop().await;
}

#[tokio::test]
async fn an_interrupted_build_deletes_its_cluster_and_exits_130() {
    if !docker_available("an_interrupted_build_deletes_its_cluster_and_exits_130") {
        return;
    }
    use tokio::io::{AsyncBufReadExt, BufReader};
    let world = FakeWorld::new().await;
    world.config(&recipe(&world));
    world.set_kind_env(&[("FAKE_KIND_DELAY_CREATE", "60")]);
    let state = TempDir::new().unwrap();
    let mut child = build_command(&world, state.path(), &["--profile", "demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run infrad build");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    tokio::time::timeout(LIVENESS, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("start  cluster / kind create cluster") {
                return;
            }
        }
        panic!("infrad build ended before kind create:\n{seen}");
    })
    .await
    .expect("kind create starts");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let mut rest = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut rest)
        .await
        .unwrap();
    let status = tokio::time::timeout(LIVENESS, child.wait())
        .await
        .expect("infrad build stops when interrupted")
        .unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("interrupted; deleted the half-built cluster build-demo-"),
        "{rest}"
    );
    assert_eq!(world.kind_clusters(), Vec::<String>::new());
}

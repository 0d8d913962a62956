//! `infrad acquire | renew | release | run` (the built binary) against a daemon served here.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Output, Stdio},
    time::Duration,
};

use infrad_test_support::{TestDaemon, config, eventually, ready};
use tokio::process::Command;

pub(crate) fn infrad<P>(daemon: &TestDaemon<P>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_infrad"));
    command
        .args(args)
        .env("INFRAD_ADDR", daemon.addr.to_string())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

pub(crate) async fn output(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the command finishes")
        .unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sends SIGTERM to `infrad run` and waits for it to end.
async fn terminate(child: tokio::process::Child) -> Output {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("infrad run ends after SIGTERM")
        .unwrap()
}

async fn started() -> TestDaemon {
    let daemon = TestDaemon::start(&config("warm = 1\nmax = 1")).await;
    ready(&daemon.client().await, 1).await;
    daemon
}

async fn live_leases(daemon: &TestDaemon) -> usize {
    let mut client = daemon.client().await;
    client.status(Some("demo")).await.unwrap().profiles[0]
        .leases
        .len()
}

#[tokio::test]
async fn acquire_renew_release_by_hand() {
    let daemon = started().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc.yaml");
    let out = output(infrad(
        &daemon,
        &[
            "acquire",
            "--profile",
            "demo",
            "--holder",
            "by-hand",
            "--ttl",
            "5m",
            "--json",
            "--kubeconfig-out",
            kubeconfig.to_str().unwrap(),
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lease: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, token) = (
        lease["lease_id"].as_str().unwrap(),
        lease["token"].as_str().unwrap(),
    );
    assert_eq!(lease["kubeconfig_path"], kubeconfig.to_str().unwrap());
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains(lease["cluster"].as_str().unwrap())
    );
    assert_eq!(
        std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = output(infrad(
        &daemon,
        &["renew", id, "--token", token, "--ttl", "10m"],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("expires_at: "));
    let wrong = output(infrad(&daemon, &["release", id, "--token", "nope"])).await;
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("PermissionDenied"),
        "{}",
        text(&wrong.stderr)
    );
    let out = output(infrad(&daemon, &["release", id, "--token", token])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(live_leases(&daemon).await, 0);
}

#[tokio::test]
async fn run_names_the_artifacts_directory_of_a_profile_with_artifacts() {
    let profile =
        config("warm = 1\nmax = 1\n[profiles.demo.artifacts]\nnode_path = \"/infrad/artifacts\"");
    let daemon = TestDaemon::start(&profile).await;
    ready(&daemon.client().await, 1).await;
    let script = r#"test -d "$INFRAD_ARTIFACTS_DIR" && echo "$INFRAD_ARTIFACTS_DIR""#;
    let out = output(infrad(
        &daemon,
        &["run", "--profile", "demo", "--", "sh", "-c", script],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = text(&out.stdout).trim().to_string();
    assert!(dir.contains("infrad-demo-"), "the cluster's own: {dir}");

    let plain = started().await;
    let script = r#"test -z "${INFRAD_ARTIFACTS_DIR+set}" && echo unset"#;
    let out = output(infrad(
        &plain,
        &["run", "--profile", "demo", "--", "sh", "-c", script],
    ))
    .await;
    assert_eq!(text(&out.stdout).trim(), "unset", "{}", text(&out.stderr));
}

#[tokio::test]
async fn run_with_artifacts_collects_and_copies_the_tree_after_sigterm() {
    let profile = config(
        "warm = 1\nmax = 1\n[profiles.demo.artifacts]\nnode_path = \"/infrad/artifacts\"\n\
         [[profiles.demo.deploy]]\nname = \"app\"\nmanifests = []",
    );
    let daemon = TestDaemon::start(&profile).await;
    ready(&daemon.client().await, 1).await;
    let dest = tempfile::tempdir().unwrap();
    let out_dir = dest.path().join("out");
    let running = dest.path().join("running");
    let script = format!(
        r#"trap 'exit 3' TERM; mkdir -p "$INFRAD_ARTIFACTS_DIR/coverdata" && echo counters > "$INFRAD_ARTIFACTS_DIR/coverdata/covcounters.1"; touch {}; while :; do sleep 0.1; done"#,
        running.display()
    );
    let mut command = infrad(
        &daemon,
        &[
            "run",
            "--profile",
            "demo",
            "--artifacts",
            out_dir.to_str().unwrap(),
            "--flush",
            "app",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let child = command.spawn().unwrap();
    eventually("the command runs", || async { running.exists() }).await;
    let out = terminate(child).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "the command's: {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("coverdata/covcounters.1")).unwrap(),
        "counters\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("collected.txt")).unwrap(),
        "app"
    );
    assert!(out_dir.join("lease.json").exists());
    assert!(
        text(&out.stderr).contains(&format!("infrad: artifacts in {}", out_dir.display())),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(live_leases(&daemon).await, 0);

    let out = output(infrad(
        &daemon,
        &["run", "--profile", "demo", "--flush", "app", "--", "true"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "--flush needs --artifacts");
    assert!(
        text(&out.stderr).contains("--artifacts"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn run_passes_the_cluster_in_and_the_exit_code_out() {
    let daemon = started().await;
    let script = r#"test -f "$KUBECONFIG" && grep -q "$INFRAD_CLUSTER" "$KUBECONFIG" && test -n "$INFRAD_LEASE_ID" && echo "ran on $INFRAD_CLUSTER""#;
    let out = output(infrad(
        &daemon,
        &["run", "--profile", "demo", "--", "sh", "-c", script],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ran on infrad-demo-"),
        "{}",
        text(&out.stdout)
    );
    eventually("the lease is released after the command", || async {
        live_leases(&daemon).await == 0
    })
    .await;

    ready(&daemon.client().await, 1).await;
    let out = output(infrad(
        &daemon,
        &["run", "--profile", "demo", "--", "sh", "-c", "exit 3"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(3));
    eventually("released after a failing command too", || async {
        live_leases(&daemon).await == 0
    })
    .await;
}

#[tokio::test]
async fn run_forwards_sigterm_and_releases() {
    let daemon = started().await;
    let dir = tempfile::tempdir().unwrap();
    let running = dir.path().join("running");
    let script = format!(
        "trap 'echo got TERM; exit 7' TERM; touch {}; while :; do sleep 0.1; done",
        running.display()
    );
    let mut command = infrad(
        &daemon,
        &["run", "--profile", "demo", "--", "sh", "-c", &script],
    );
    let child = command.spawn().unwrap();
    eventually("the command runs on a leased cluster", || async {
        running.exists()
    })
    .await;
    assert_eq!(live_leases(&daemon).await, 1);
    let out = terminate(child).await;
    assert_eq!(
        out.status.code(),
        Some(7),
        "the command's own exit code: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("got TERM"));
    assert_eq!(live_leases(&daemon).await, 0, "released on SIGTERM");
}

#[tokio::test]
async fn acquire_shows_plain_progress_lines_when_not_on_a_terminal() {
    let daemon = TestDaemon::start(&config("warm = 0\nmax = 1")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(1_500));
    let out = output(infrad(&daemon, &["acquire", "--profile", "demo"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("waiting: 1 of 1 in the queue"))
        .unwrap_or_else(|| panic!("a progress line: {stderr}"));
    assert!(line.starts_with("20"), "timestamped: {line}");
    assert!(
        !stderr.contains('\r'),
        "no live display when stderr is not a terminal"
    );
    assert!(text(&out.stdout).contains("token:"));
}

#[tokio::test]
async fn grpcurl_streams_progress_then_the_lease() {
    let Some(grpcurl) =
        infrad_test_support::grpcurl::find_grpcurl("grpcurl_streams_progress_then_the_lease")
    else {
        return;
    };
    let daemon = TestDaemon::start(&config("warm = 0\nmax = 1")).await;
    daemon
        .provisioner
        .set_build_delay(Duration::from_millis(1_500));
    let mut command = Command::new(grpcurl);
    command.args([
        "-plaintext",
        "-max-time",
        "30",
        "-d",
        r#"{"profile":"demo","holder":"grpcurl","wait":"20s"}"#,
        &daemon.addr.to_string(),
        "infrad.v1.LeaseService/AcquireWithProgress",
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = output(command).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // grpcurl prints one JSON object per message.
    let messages: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let (last, waiting) = messages.split_last().expect("messages");
    assert!(
        !waiting.is_empty(),
        "progress before the lease: {messages:?}"
    );
    assert!(
        waiting.iter().all(|m| m["waiting"]["position"] == 1),
        "{messages:?}"
    );
    assert_eq!(last["lease"]["holder"], "grpcurl");
    assert!(
        last["lease"]["token"]
            .as_str()
            .is_some_and(|t| t.len() == 64)
    );
}

#[tokio::test]
async fn run_signals_reach_the_whole_command_group() {
    let daemon = started().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild.pid");
    // The command's own child is what must stop: `make` running `go test`, say.
    let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
    let mut command = infrad(
        &daemon,
        &["run", "--profile", "demo", "--", "sh", "-c", &script],
    );
    let child = command.spawn().unwrap();
    eventually("the grandchild runs", || async {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| !p.trim().is_empty())
    })
    .await;
    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = terminate(child).await;
    assert_eq!(
        out.status.code(),
        Some(143),
        "sh died of SIGTERM: {}",
        text(&out.stderr)
    );
    eventually("the grandchild is gone", || async {
        std::fs::read_to_string(format!("/proc/{grandchild}/stat")).map_or(true, |stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    })
    .await;
    assert_eq!(live_leases(&daemon).await, 0);
}

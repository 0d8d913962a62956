//! The fake kind fixture (`test-support/fixtures/fake-kind`) keeps kind's command-line contract
//! (docs/kind-contract.md): outputs on the right stream, exit codes and exact error texts.
//!
//! These run the script without Docker (`FAKE_KIND_NO_DOCKER=1`), except the Docker-backed test,
//! which is skipped loudly when `docker info` fails, unless `INFRAD_REQUIRE_DOCKER=1` is set, when
//! it fails instead.
use infrad_test_support::docker::docker_available;

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Command, Stdio},
    thread,
};

use tempfile::TempDir;

use infrad_test_support::FAKE_KIND;

/// Every variable the fake reads; cleared so the caller's environment cannot leak in.
const FAKE_ENV: &[&str] = &[
    "FAKE_KIND_STATE",
    "FAKE_KIND_API_SERVER",
    "FAKE_KIND_DELAY_CREATE",
    "FAKE_KIND_DELAY_LOAD",
    "FAKE_KIND_DELAY_DELETE",
    "FAKE_KIND_FAIL",
    "FAKE_KIND_WAIT_TIMES_OUT",
    "FAKE_KIND_LOG",
    "FAKE_KIND_DOCKER",
    "FAKE_KIND_NO_DOCKER",
    "KIND_CLUSTER_NAME",
];

/// One fake kind "host": a state directory, and a default kubeconfig inside it so no test
/// touches the user's `~/.kube/config`.
struct Kind {
    dir: TempDir,
    env: Vec<(String, String)>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success; stderr:\n{}", self.stderr);
        self
    }

    /// Asserts kind's failure shape: exit 1, empty stdout, and `ERROR: <msg>` on stderr.
    fn fails_with(self, msg: &str) -> Self {
        assert_eq!(self.code, 1, "expected exit 1; stderr:\n{}", self.stderr);
        assert_eq!(self.stdout, "", "errors write nothing to stdout");
        let line = format!("ERROR: {msg}");
        assert!(
            self.stderr.lines().any(|l| l == line),
            "expected the line {line:?} in stderr:\n{}",
            self.stderr
        );
        self
    }
}

impl Kind {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            (
                "FAKE_KIND_STATE".into(),
                dir.path().join("state").display().to_string(),
            ),
            ("FAKE_KIND_NO_DOCKER".into(), "1".into()),
            (
                "KUBECONFIG".into(),
                dir.path().join("default-kubeconfig").display().to_string(),
            ),
        ];
        Self { dir, env }
    }

    /// Sets an environment variable for every later run.
    fn with(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(FAKE_KIND);
        cmd.args(args).stdin(Stdio::null());
        for key in FAKE_ENV {
            cmd.env_remove(key);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd.envs(env.iter().copied());
        cmd
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().expect("fake-kind runs");
        Run {
            code: out.status.code().expect("fake-kind exits, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// `create cluster --name NAME --kubeconfig <tmp>/NAME.kubeconfig`, which must succeed.
    fn create(&self, name: &str) -> PathBuf {
        let kubeconfig = self.path(&format!("{name}.kubeconfig"));
        let run = self
            .run(&[
                "create",
                "cluster",
                "--name",
                name,
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ])
            .ok();
        assert_eq!(run.stdout, "", "create writes progress to stderr only");
        kubeconfig
    }

    fn clusters(&self) -> Vec<String> {
        let run = self.run(&["get", "clusters"]).ok();
        run.stdout.lines().map(str::to_owned).collect()
    }
}

#[test]
fn version_goes_to_stdout() {
    let kind = Kind::new();
    let run = kind.run(&["version"]).ok();
    assert_eq!(run.stdout, "kind v0.32.0 go1.25.1 linux/amd64\n");
    assert_eq!(run.stderr, "");
    assert_eq!(
        kind.run(&["--version"]).ok().stdout,
        "kind version 0.32.0\n"
    );
}

#[test]
fn state_directory_is_required() {
    let kind = Kind::new();
    let run = kind
        .command(&["get", "clusters"], &[])
        .env_remove("FAKE_KIND_STATE")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "ERROR: FAKE_KIND_STATE is not set\n"
    );
}

#[test]
fn no_clusters_is_reported_on_stderr() {
    let kind = Kind::new();
    let run = kind.run(&["get", "clusters"]).ok();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "No kind clusters found.\n");
}

#[test]
fn create_lists_the_cluster_and_writes_a_private_kubeconfig() {
    let server = "http://127.0.0.1:43210";
    let kind = Kind::new().with("FAKE_KIND_API_SERVER", server);
    let kubeconfig = kind.create("alpha");
    kind.create("beta");
    assert_eq!(kind.clusters(), ["alpha", "beta"]);

    let mode = fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "kubeconfig mode");
    let text = fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&format!("server: {server}\n")), "{text}");
    assert!(text.contains("current-context: kind-alpha\n"), "{text}");
    assert!(text.contains("  name: kind-alpha\n"), "{text}");
    assert!(
        text.contains("token: fake-token-alpha\n"),
        "plain HTTP gets a token: {text}"
    );
    assert!(!text.contains("client-certificate-data"), "{text}");

    // `get kubeconfig` prints the same YAML (and a trailing blank line, as kind's Println does).
    let run = kind.run(&["get", "kubeconfig", "--name", "alpha"]).ok();
    assert_eq!(run.stdout, format!("{text}\n"));
    let run = kind.run(&["get", "nodes", "-n", "alpha"]).ok();
    assert_eq!(run.stdout, "alpha-control-plane\n");
}

#[test]
fn create_prints_kinds_progress_lines() {
    let kind = Kind::new();
    let kubeconfig = kind.path("k");
    let run = kind
        .run(&[
            "create",
            "cluster",
            "-n",
            "steps",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .ok();
    for line in [
        "Creating cluster \"steps\" ...",
        " • Starting control-plane 🕹️  ...",
        " ✓ Starting control-plane 🕹️",
        " ✓ Installing StorageClass 💾",
        "Set kubectl context to \"kind-steps\"",
    ] {
        assert!(
            run.stderr.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn create_of_an_existing_name_fails_and_changes_nothing() {
    let kind = Kind::new();
    let kubeconfig = kind.create("dup");
    let before = fs::read_to_string(&kubeconfig).unwrap();
    kind.run(&[
        "create",
        "cluster",
        "--name",
        "dup",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ])
    .fails_with(
        r#"failed to create cluster: node(s) already exist for a cluster with the name "dup""#,
    );
    assert_eq!(fs::read_to_string(&kubeconfig).unwrap(), before);
    assert_eq!(kind.clusters(), ["dup"]);
}

#[test]
fn concurrent_creates_of_one_name_have_one_winner() {
    let kind = Kind::new().with("FAKE_KIND_DELAY_CREATE", "0.3");
    let runs: Vec<Run> = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let kind = &kind;
                s.spawn(move || {
                    let kubeconfig = kind.path(&format!("race{i}"));
                    kind.run(&[
                        "create",
                        "cluster",
                        "-n",
                        "race",
                        "--kubeconfig",
                        kubeconfig.to_str().unwrap(),
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    assert!(codes.contains(&0) && codes.contains(&1), "codes {codes:?}");
    assert_eq!(kind.clusters(), ["race"]);
}

#[test]
fn invalid_names_are_rejected() {
    let kind = Kind::new();
    kind.run(&["create", "cluster", "--name", "Bad_Name"]).fails_with(
        "failed to create cluster: 'Bad_Name' is not a valid cluster name, cluster names must match `^[a-z0-9.-]+$`",
    );
    assert_eq!(kind.clusters(), Vec::<String>::new());
}

#[test]
fn name_comes_from_env_then_config_then_default() {
    let kind = Kind::new();
    let config = kind.path("cluster.yaml");
    fs::write(
        &config,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: fromconfig\n",
    )
    .unwrap();
    kind.run(&["create", "cluster", "--config", config.to_str().unwrap()])
        .ok();
    kind.run_env(&["create", "cluster"], &[("KIND_CLUSTER_NAME", "fromenv")])
        .ok();
    kind.run(&["create", "cluster"]).ok();
    assert_eq!(kind.clusters(), ["fromconfig", "fromenv", "kind"]);

    let missing = kind.path("missing.yaml");
    let missing = missing.to_str().unwrap();
    kind.run(&["create", "cluster", "--config", missing]).fails_with(&format!(
        "failed to create cluster: error reading file: open {missing}: no such file or directory"
    ));
}

#[test]
fn missing_clusters() {
    let kind = Kind::new();
    kind.run(&["get", "kubeconfig", "--name", "ghost"])
        .fails_with(
            "could not locate any control plane nodes for cluster named 'ghost'. \
         Use the --name option to select a different cluster",
        );
    let run = kind.run(&["get", "nodes", "--name", "ghost"]).ok();
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("", "No kind nodes found for cluster \"ghost\".\n")
    );
    let run = kind.run(&["delete", "cluster", "--name", "ghost"]).ok();
    assert_eq!(run.stderr, "Deleting cluster \"ghost\" ...\n");
    kind.run(&["load", "docker-image", "app:1", "--name", "ghost"])
        .fails_with(r#"no nodes found for cluster "ghost""#);
}

#[test]
fn delete_removes_cluster_and_its_kubeconfig_entries() {
    let kind = Kind::new();
    let kubeconfig = kind.create("gone");
    let run = kind
        .run(&[
            "delete",
            "cluster",
            "--name",
            "gone",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        run.stderr,
        "Deleting cluster \"gone\" ...\nDeleted nodes: [\"gone-control-plane\"]\n"
    );
    assert_eq!(kind.clusters(), Vec::<String>::new());
    let left = fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        !left.contains("kind-gone"),
        "kind drops its entries, keeps the file: {left}"
    );

    kind.create("a");
    kind.create("b");
    let run = kind.run(&["delete", "clusters", "a", "b", "never"]).ok();
    assert!(
        run.stderr
            .ends_with("Deleted clusters: [\"a\" \"b\" \"never\"]\n"),
        "{}",
        run.stderr
    );
    assert_eq!(kind.clusters(), Vec::<String>::new());
}

#[test]
fn failed_create_deletes_its_nodes() {
    let kind = Kind::new().with("FAKE_KIND_FAIL", "create");
    let kubeconfig = kind.path("broken.kubeconfig");
    let run = kind
        .run(&["create", "cluster", "-n", "broken", "--kubeconfig", kubeconfig.to_str().unwrap()])
        .fails_with(
            "failed to create cluster: failed to init node with kubeadm: command \"docker exec --privileged \
             broken-control-plane kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6\" \
             failed with error: exit status 1",
        );
    let lines: Vec<&str> = run.stderr.lines().collect();
    let failed = lines
        .iter()
        .position(|l| *l == " ✗ Starting control-plane 🕹️")
        .expect("✗ step");
    assert_eq!(
        lines[failed + 1],
        "Deleted nodes: [\"broken-control-plane\"]"
    );
    assert!(lines[failed + 2].starts_with("ERROR: "));
    assert_eq!(lines[failed + 3], "");
    assert!(lines[failed + 4].starts_with("Command Output: "));
    assert_eq!(kind.clusters(), Vec::<String>::new());
    assert!(!kubeconfig.exists());
}

#[test]
fn failed_kubeconfig_write_leaves_the_cluster() {
    let kind = Kind::new().with("FAKE_KIND_FAIL", "kubeconfig");
    let kubeconfig = kind.path("kc");
    let kubeconfig = kubeconfig.to_str().unwrap();
    kind.run(&[
        "create",
        "cluster",
        "-n",
        "half",
        "--kubeconfig",
        kubeconfig,
    ])
    .fails_with(&format!(
        "failed to create cluster: failed to lock config file: open {kubeconfig}.lock: file exists"
    ));
    assert_eq!(kind.clusters(), ["half"]);
    assert!(
        kind.run(&["get", "kubeconfig", "-n", "half"])
            .ok()
            .stdout
            .contains("kind-half")
    );
}

#[test]
fn wait_timeout_still_exits_zero() {
    let kind = Kind::new().with("FAKE_KIND_WAIT_TIMES_OUT", "1");
    let run = kind
        .run(&["create", "cluster", "-n", "slow", "--wait", "60s"])
        .ok();
    assert!(
        run.stderr
            .contains(" ✗ Waiting ≤ 1m0s for control-plane = Ready ⏳\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(" • WARNING: Timed out waiting for Ready ⚠️\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn load_records_images_and_skips_ones_present() {
    let kind = Kind::new();
    kind.create("img");
    let run = kind
        .run(&[
            "load",
            "docker-image",
            "app:1",
            "tool:2",
            "app:1",
            "--name",
            "img",
        ])
        .ok();
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr
            .matches("not yet present on node \"img-control-plane\", loading...")
            .count(),
        2
    );
    let run = kind
        .run(&["load", "docker-image", "app:1", "-n", "img"])
        .ok();
    assert!(
        run.stderr.starts_with("Image: \"app:1\" with ID \"sha256:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("\" found to be already present on all nodes.\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn load_fails_and_load_once_fails_only_once() {
    let kind = Kind::new();
    kind.create("flaky");
    let load_error = "failed to load image: command \"docker exec --privileged -i flaky-control-plane ctr \
                      --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -\" \
                      failed with error: exit status 1";
    let args = ["load", "docker-image", "app:1", "--name", "flaky"];
    kind.run_env(&args, &[("FAKE_KIND_FAIL", "load")])
        .fails_with(load_error);
    kind.run_env(&args, &[("FAKE_KIND_FAIL", "load")])
        .fails_with(load_error);

    let run = kind
        .run_env(&args, &[("FAKE_KIND_FAIL", "load-once")])
        .fails_with(load_error);
    assert!(
        run.stderr
            .contains("\nCommand Output: ctr: wrong diff id calculated on extraction \"sha256:")
    );
    kind.run_env(&args, &[("FAKE_KIND_FAIL", "load-once")]).ok();
    kind.run_env(
        &["load", "docker-image", "other:1", "-n", "flaky"],
        &[("FAKE_KIND_FAIL", "load-once")],
    )
    .ok();
}

#[test]
fn log_records_start_and_end_of_each_run() {
    let kind = Kind::new();
    let log = kind.path("calls.log");
    let log_env = [("FAKE_KIND_LOG", log.to_str().unwrap())];
    kind.run_env(&["create", "cluster", "--name", "logged"], &log_env)
        .ok();
    kind.run_env(&["get", "kubeconfig", "--name", "nope"], &log_env);

    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0][0], "START");
    assert_eq!(lines[0][3..], ["create", "cluster", "--name", "logged"]);
    assert_eq!(
        (lines[1][0], lines[1][2], lines[1][3]),
        ("END", lines[0][2], "0")
    );
    assert_eq!(lines[2][3..], ["get", "kubeconfig", "--name", "nope"]);
    assert_eq!((lines[3][0], lines[3][3]), ("END", "1"));
    let ms = |l: &Vec<&str>| l[1].parse::<u64>().expect("epoch ms");
    assert!(ms(&lines[0]) <= ms(&lines[1]) && ms(&lines[1]) <= ms(&lines[2]));
}

#[test]
fn usage_errors_look_like_cobras() {
    let kind = Kind::new();
    kind.run(&["get", "clusters", "--bogus"])
        .fails_with("unknown flag: --bogus");
    kind.run(&["create", "cluster", "-x"])
        .fails_with("unknown shorthand flag: 'x' in -x");
    kind.run(&["frobnicate"])
        .fails_with("unknown command \"frobnicate\" for \"kind\"");
    kind.run(&["create", "cluster", "--name"])
        .fails_with("flag needs an argument: --name");
}

#[test]
fn docker_down_fails_create() {
    let kind = Kind::new();
    let run = kind.run_env(
        &["create", "cluster"],
        &[("FAKE_KIND_NO_DOCKER", ""), ("FAKE_KIND_DOCKER", "false")],
    );
    run.fails_with(
        "failed to create cluster: failed to get docker info: command \"docker info --format '{{json .}}'\" \
         failed with error: exit status 1",
    );
    assert_eq!(kind.clusters(), Vec::<String>::new());
}

#[test]
fn docker_load_checks_images_and_records_their_ids() {
    if !docker_available("docker_load_checks_images_and_records_their_ids") {
        return;
    }
    let kind = Kind::new().with("FAKE_KIND_NO_DOCKER", "");
    kind.create("dockered");
    let missing = "infrad-fake-kind-test/never-built:0";
    kind.run(&["load", "docker-image", missing, "--name", "dockered"])
        .fails_with(&format!("image: \"{missing}\" not present locally"));

    // An empty image made offline (`docker import` of an empty tar), unique to this run.
    let suffix = kind
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    let image = format!(
        "infrad-fake-kind-test/empty:{}",
        suffix.trim_start_matches('.')
    );
    let tar = kind.path("empty.tar");
    let made = Command::new("tar")
        .args(["-cf", tar.to_str().unwrap(), "--files-from", "/dev/null"])
        .status()
        .unwrap();
    assert!(made.success());
    let imported = Command::new("docker")
        .args(["import", tar.to_str().unwrap(), &image])
        .output()
        .unwrap();
    assert!(imported.status.success(), "docker import: {imported:?}");
    let id = String::from_utf8(imported.stdout)
        .unwrap()
        .trim()
        .to_owned();

    let first = kind.run(&["load", "docker-image", &image, "--name", "dockered"]);
    let second = kind.run(&["load", "docker-image", &image, "--name", "dockered"]);
    let _ = Command::new("docker").args(["rmi", &image]).output();
    assert_eq!(
        first.ok().stderr,
        format!(
            "Image: \"{image}\" with ID \"{id}\" not yet present on node \"dockered-control-plane\", loading...\n"
        )
    );
    assert_eq!(
        second.ok().stderr,
        format!("Image: \"{image}\" with ID \"{id}\" found to be already present on all nodes.\n")
    );
}

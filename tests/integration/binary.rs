//! The built `infrad` binary, driven as a user would: `serve` on a loopback port (probed with
//! `infrad status` and grpcurl), shutdown on SIGTERM, `check-config`, and start-up errors.
//!
//! grpcurl is looked up on PATH; without it the grpcurl test is skipped, unless `CI` or
//! `INFRAD_REQUIRE_DOCKER=1` is set, when it fails instead.

use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use infrad_test_support::grpcurl::find_grpcurl;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const EXAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/infrad.example.toml");
/// A liveness bound for anything that should happen at once; never a speed assertion.
const LIVENESS: Duration = Duration::from_secs(20);
/// The requirement: SIGTERM stops the daemon within 10 s.
const SHUTDOWN: Duration = Duration::from_secs(10);

/// The binary under test, unaffected by the environment the tests run in.
fn infrad() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infrad"));
    for var in [
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "INFRAD_LOG",
        "INFRAD_CONFIG",
        "INFRAD_LISTEN",
        "INFRAD_STATE_DIR",
        "INFRAD_ADDR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a command to completion, capturing its output; kills it and panics if it hangs.
fn output_of(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = pid_of(&child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(LIVENESS) {
        Ok(output) => output.expect("collecting output"),
        Err(_) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("{cmd:?} did not finish within {LIVENESS:?}");
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"))
}

/// A loopback address nothing listens on (the port was free a moment ago).
fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().to_string()
}

/// Polls `check` until it holds; panics naming `what` after [`LIVENESS`].
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIVENESS;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "gave up after {LIVENESS:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// `infrad status --addr ADDR` with extra arguments.
fn status(addr: &str, extra: &[&str]) -> Output {
    output_of(infrad().args(["status", "--addr", addr]).args(extra))
}

/// `infrad serve` on the example config, a fresh state directory and a free loopback port;
/// its log goes to a file. Dropping it kills the process.
struct Daemon {
    child: Child,
    addr: String,
    dir: TempDir,
}

impl Daemon {
    /// Starts the daemon and returns once it answers `infrad status`.
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let log = File::create(dir.path().join("infrad.log")).expect("log file");
        let child = infrad()
            .args([
                "--log",
                "info",
                "serve",
                "--config",
                EXAMPLE_CONFIG,
                "--listen",
                &addr,
            ])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn infrad serve");
        let mut daemon = Self { child, addr, dir };
        wait_until("the daemon answers `infrad status`", || {
            daemon.assert_running();
            status(&daemon.addr, &[]).status.success()
        });
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("infrad.log")).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(exit) = self.child.try_wait().expect("try_wait") {
            panic!("infrad exited early ({exit}); its log:\n{}", self.log());
        }
    }

    /// Sends SIGTERM and waits (at most [`SHUTDOWN`]) for the process to exit.
    fn terminate(&mut self) -> ExitStatus {
        kill(pid_of(&self.child), Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + SHUTDOWN;
        loop {
            if let Some(exit) = self.child.try_wait().expect("try_wait") {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "infrad still running {SHUTDOWN:?} after SIGTERM; its log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gRPC error as grpcurl prints it on stderr (`Code: X` / `Message: …`).
#[derive(Debug)]
struct GrpcError {
    code: String,
    message: String,
}

/// grpcurl pointed at one daemon, over plaintext.
struct Grpcurl {
    exe: PathBuf,
    addr: String,
}

impl Grpcurl {
    /// grpcurl from PATH; `None` (after saying so loudly) when it is missing and not required.
    fn find(addr: &str) -> Option<Self> {
        find_grpcurl("grpcurl_sees_the_api_and_bad_input_gets_precise_codes").map(|exe| Self {
            exe,
            addr: addr.to_string(),
        })
    }

    fn run(&self, flags: &[&str], rest: &[&str]) -> Output {
        output_of(
            Command::new(&self.exe)
                .args(["-plaintext", "-max-time", "20"])
                .args(flags)
                .arg(&self.addr)
                .args(rest),
        )
    }

    /// `list`, `describe` and the like: must succeed; returns stdout.
    fn text(&self, rest: &[&str]) -> String {
        let output = self.run(&[], rest);
        assert!(
            output.status.success(),
            "grpcurl {rest:?} failed:\n{}",
            stderr(&output)
        );
        stdout(&output)
    }

    /// Calls `infrad.v1.LeaseService/<method>` with a JSON request.
    fn call(&self, method: &str, data: &str) -> Result<Value, GrpcError> {
        let method = format!("infrad.v1.LeaseService/{method}");
        let output = self.run(&["-emit-defaults", "-d", data], &[&method]);
        if output.status.success() {
            return Ok(parse_json(&stdout(&output)));
        }
        let err = stderr(&output);
        let field = |name: &str| {
            err.lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .map(|value| value.trim().to_string())
                .unwrap_or_else(|| panic!("no `{name}` in grpcurl's error output:\n{err}"))
        };
        Err(GrpcError {
            code: field("Code:"),
            message: field("Message:"),
        })
    }

    /// Calls `method` expecting it to fail with one of `codes`; returns the error.
    fn fails(&self, method: &str, data: &str, codes: &[&str]) -> GrpcError {
        match self.call(method, data) {
            Ok(reply) => panic!("{method} {data} succeeded, expected {codes:?}: {reply}"),
            Err(err) => {
                assert!(
                    codes.contains(&err.code.as_str()),
                    "{method} {data}: expected {codes:?}, got {err:?}"
                );
                err
            }
        }
    }
}

/// The one profile of the example config, as Status reports it.
fn assert_demo_profile(status: &Value) {
    let demo = &status["profiles"][0];
    assert_eq!(demo["profile"], "demo", "{status:#}");
    assert_eq!(demo["warm"], 1, "{status:#}");
    assert_eq!(demo["max"], 2, "{status:#}");
}

#[test]
fn grpcurl_sees_the_api_and_bad_input_gets_precise_codes() {
    let daemon = Daemon::start();
    let Some(grpcurl) = Grpcurl::find(&daemon.addr) else {
        return;
    };

    wait_until("grpcurl's health check says SERVING", || {
        grpcurl
            .run(&[], &["grpc.health.v1.Health/Check"])
            .stdout
            .windows(b"SERVING".len())
            .any(|w| w == b"SERVING")
    });

    let services = grpcurl.text(&["list"]);
    for service in ["infrad.v1.LeaseService", "grpc.health.v1.Health"] {
        assert!(
            services.lines().any(|l| l.trim() == service),
            "{service} not listed:\n{services}"
        );
    }
    let service = grpcurl.text(&["describe", "infrad.v1.LeaseService"]);
    for rpc in ["rpc Acquire", "rpc Renew", "rpc Release", "rpc Status"] {
        assert!(service.contains(rpc), "{rpc} missing:\n{service}");
    }
    let lease = grpcurl.text(&["describe", "infrad.v1.Lease"]);
    for field in ["lease_id", "token", "kubeconfig", "expires_at"] {
        assert!(lease.contains(field), "{field} missing:\n{lease}");
    }

    let before = grpcurl.call("Status", "{}").expect("Status answers");
    assert_demo_profile(&before);
    assert_eq!(before["profiles"][0]["counts"]["leased"], 0, "{before:#}");

    const INVALID: &[&str] = &["InvalidArgument"];
    const NOT_FOUND: &[&str] = &["NotFound"];
    grpcurl.fails("Acquire", r#"{"profile":""}"#, INVALID);
    grpcurl.fails("Acquire", r#"{"profile":"nope","holder":"job"}"#, NOT_FOUND);
    let ttl = grpcurl.fails("Acquire", r#"{"profile":"demo","ttl":"-1s"}"#, INVALID);
    assert!(
        ttl.message.contains("at most 4h"),
        "the maximum ttl is not stated: {ttl:?}"
    );
    let long_holder = json!({ "profile": "demo", "holder": "h".repeat(257) }).to_string();
    grpcurl.fails("Acquire", &long_holder, INVALID);
    grpcurl.fails(
        "Acquire",
        r#"{"profile":"demo","holder":"job\u0007"}"#,
        INVALID,
    );
    grpcurl.fails("Renew", r#"{"lease_id":"not-a-uuid","token":"x"}"#, INVALID);
    let unknown = uuid::Uuid::new_v4();
    let unknown_lease = json!({ "lease_id": unknown.to_string(), "token": "x" }).to_string();
    grpcurl.fails("Renew", &unknown_lease, NOT_FOUND);
    grpcurl.fails("Release", &unknown_lease, NOT_FOUND);
    // This build cannot build clusters, so none is ever ready (or the profile is degraded).
    grpcurl.fails(
        "Acquire",
        r#"{"profile":"demo","holder":"job","wait":"0s"}"#,
        &["ResourceExhausted", "Unavailable"],
    );

    let after = grpcurl.call("Status", "{}").expect("Status answers");
    assert_demo_profile(&after);
    let demo = &after["profiles"][0];
    assert_eq!(demo["counts"]["leased"], 0, "{after:#}");
    assert_eq!(demo["counts"]["waiting"], 0, "{after:#}");
    assert_eq!(demo["leases"], json!([]), "{after:#}");
}

#[test]
fn status_command_prints_a_table_and_json() {
    let daemon = Daemon::start();

    let table = status(&daemon.addr, &[]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = stdout(&table);
    let line = table
        .lines()
        .find(|l| l.starts_with("profile demo"))
        .unwrap_or_else(|| panic!("no `profile demo` line:\n{table}"));
    assert!(line.contains("(warm 1, max 2)"), "{line}");

    let json = status(&daemon.addr, &["--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    assert_demo_profile(&parse_json(&stdout(&json)));
}

#[test]
fn status_command_says_when_nothing_listens() {
    let addr = free_addr();
    let output = status(&addr, &[]);
    assert!(!output.status.success(), "status succeeded against {addr}");
    let err = stderr(&output);
    assert!(err.contains("cannot connect"), "{err}");
    assert!(err.contains(&addr), "the address is not named: {err}");
}

#[test]
fn sigterm_shuts_the_daemon_down_cleanly() {
    let mut daemon = Daemon::start();
    let exit = daemon.terminate();
    let log = daemon.log();
    assert!(exit.success(), "exit {exit}; log:\n{log}");
    assert!(log.contains("shutting down"), "log:\n{log}");
}

fn check_config(path: &Path) -> Output {
    output_of(infrad().arg("check-config").arg("--config").arg(path))
}

/// Writes `text` as a config file in `dir` and checks it, expecting a failure; returns stderr.
fn rejected_config(dir: &TempDir, text: &str) -> (PathBuf, String) {
    let path = dir.path().join("infrad.toml");
    std::fs::write(&path, text).expect("write config");
    let output = check_config(&path);
    assert!(!output.status.success(), "accepted:\n{text}");
    (path, stderr(&output))
}

#[test]
fn check_config_accepts_the_example() {
    let output = check_config(Path::new(EXAMPLE_CONFIG));
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("OK"), "{out}");
    assert!(out.contains("profile demo: warm 1, max 2"), "{out}");
}

#[test]
fn check_config_locates_an_impossible_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (path, err) = rejected_config(
        &dir,
        "[profiles.demo]\n[profiles.demo.pool]\nwarm = 3\nmax = 2\n",
    );
    let located = format!("{}:3: profiles.demo.pool.warm", path.display());
    assert!(err.contains(&located), "expected `{located}` in:\n{err}");
}

#[test]
fn check_config_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let (path, err) = rejected_config(&dir, "[profiles.demo]\n[profiles.demo.pool]\nbogus = 1\n");
    let located = format!("{}:3:", path.display());
    assert!(err.contains(&located), "expected `{located}` in:\n{err}");
    assert!(err.contains("profiles.demo.pool.bogus"), "{err}");
}

#[test]
fn serve_refuses_a_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let output = output_of(
        infrad()
            .args(["serve", "--listen", &free_addr(), "--config"])
            .arg(&missing)
            .arg("--state-dir")
            .arg(dir.path().join("state")),
    );
    assert!(!output.status.success(), "serve started without a config");
    let err = stderr(&output);
    assert!(
        err.contains(&missing.display().to_string()),
        "the path is not named: {err}"
    );
}

#[test]
fn serve_refuses_a_non_loopback_address_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Refused before anything is bound: this test never listens beyond loopback.
    let output = output_of(
        infrad()
            .args([
                "serve",
                "--listen",
                "0.0.0.0:50051",
                "--config",
                EXAMPLE_CONFIG,
            ])
            .arg("--state-dir")
            .arg(&state),
    );
    assert!(!output.status.success(), "serve started on 0.0.0.0");
    let err = stderr(&output);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:50051: it is not a loopback address")
            && err.contains("--insecure-allow-remote"),
        "{err}"
    );
    assert!(!state.exists(), "nothing was set up");
}

#[test]
fn serve_names_a_taken_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = output_of(
        infrad()
            .args(["serve", "--listen", &addr, "--config", EXAMPLE_CONFIG])
            .arg("--state-dir")
            .arg(dir.path().join("state")),
    );
    assert!(!output.status.success(), "serve started on a taken port");
    let err = stderr(&output);
    assert!(
        err.contains(&format!("cannot listen on {addr}: ")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn serve_names_a_state_dir_it_cannot_make() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: refused even as root.
    let state = dir.path().join("state");
    std::fs::write(&state, "").unwrap();
    let output = output_of(
        infrad()
            .args([
                "serve",
                "--listen",
                &free_addr(),
                "--config",
                EXAMPLE_CONFIG,
            ])
            .arg("--state-dir")
            .arg(&state),
    );
    assert!(
        !output.status.success(),
        "serve started without a state dir"
    );
    let err = stderr(&output);
    assert!(
        err.contains(&format!("state directory {}", state.display())),
        "the path is not named: {err}"
    );
}

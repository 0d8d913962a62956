//! `infrad run -- CMD ARGS…`: a cluster for the length of one command.
use std::{io::IsTerminal, process::ExitCode};

use infrad_client::{Client, LeaseGuard};
use nix::{sys::signal::Signal, unistd::Pid};
use tokio::signal::unix::{SignalKind, signal};

use super::{RunArgs, lease::acquire_showing_progress};
use anyhow::{Context, Result};

/// Acquires, runs the command with `KUBECONFIG`, `INFRAD_LEASE_ID` and `INFRAD_CLUSTER` set
/// (and `INFRAD_ARTIFACTS_DIR` for a profile with artifacts),
/// renews meanwhile, forwards SIGINT/SIGTERM to it, releases after (collecting artifacts
/// into `--artifacts DIR` if asked, also after a signal); exits as it did.
pub async fn run(args: RunArgs) -> Result<ExitCode> {
    // Signals are ours from the start: one during the wait gives up the wait (no lease is left).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut client = Client::connect(&args.addr.addr).await?;
    let lease = tokio::select! {
        lease = acquire_showing_progress(&mut client, &args.request) => lease?,
        _ = term.recv() => return Ok(ExitCode::from(128 + Signal::SIGTERM as u8)),
        _ = int.recv() => return Ok(ExitCode::from(128 + Signal::SIGINT as u8)),
    };
    let mut guard = LeaseGuard::new(client, lease, args.request.ttl)?;
    eprintln!(
        "infrad: leased cluster {} (lease {})",
        guard.cluster(),
        guard.lease_id()
    );

    let (program, rest) = args.command.split_first().expect("clap requires a command");
    // On a terminal the command stays in our process group, in the foreground, and Ctrl-C
    // reaches it directly (forwarding would interrupt it twice). Elsewhere it leads a group
    // of its own, and signals are forwarded to the whole group (`make` → `go test` → …).
    let interactive = std::io::stdin().is_terminal();
    let mut command = tokio::process::Command::new(program);
    command
        .args(rest)
        .env("KUBECONFIG", guard.kubeconfig_path())
        .env("INFRAD_LEASE_ID", guard.lease_id())
        .env("INFRAD_CLUSTER", guard.cluster());
    if !guard.lease().artifacts_dir.is_empty() {
        command.env("INFRAD_ARTIFACTS_DIR", &guard.lease().artifacts_dir);
    }
    if !interactive {
        command.process_group(0);
    }
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            guard.release().await?;
            return Err(e).with_context(|| format!("cannot run {}", program.to_string_lossy()));
        }
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let forward = |signal: Signal| {
        if let Some(pid) = pid {
            let _ = if interactive {
                nix::sys::signal::kill(pid, signal)
            } else {
                nix::sys::signal::killpg(pid, signal)
            };
        }
    };
    let mut lost = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = term.recv() => forward(Signal::SIGTERM),
            // On a terminal the command got the same Ctrl-C already.
            _ = int.recv() => if !interactive { forward(Signal::SIGINT) },
            reason = guard.wait_lost(), if !lost => {
                lost = true;
                eprintln!("infrad: {reason}; stopping the command");
                forward(Signal::SIGTERM);
            }
        }
    };
    match &args.artifacts {
        Some(dest) => collect(guard, dest, &args.flush).await,
        None => {
            if let Err(e) = guard.release().await {
                eprintln!("infrad: releasing the lease: {e}");
            }
        }
    }
    Ok(exit_code(status))
}

/// Releases collecting, copies the artifacts to `dest` and says what came: the command's
/// exit code stays the run's, whatever collecting met.
async fn collect(guard: LeaseGuard, dest: &std::path::Path, flush: &[String]) {
    match guard.release_collect(dest, flush).await {
        Ok(collected) => {
            let took = collected
                .took
                .and_then(|t| std::time::Duration::try_from(t).ok())
                .unwrap_or_default();
            eprintln!(
                "infrad: artifacts in {}: logs of {} pods ({} container logs), events, lease.json; collected in {:.1}s",
                dest.display(),
                collected.pods,
                collected.logs,
                took.as_secs_f64()
            );
            for problem in &collected.problems {
                eprintln!("infrad: not collected: {problem}");
            }
        }
        Err(e) => eprintln!("infrad: collecting the artifacts: {e}"),
    }
}

/// The command's exit code; 128 + the signal's number if a signal ended it, as shells do.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

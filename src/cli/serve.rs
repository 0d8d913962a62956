use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, Result};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};
use tracing::{info, warn};

use super::{ConfigArgs, ServeArgs};
use crate::{config::Config, daemon, pipeline::Pipeline};

pub async fn serve(args: ServeArgs) -> Result<()> {
    check_listen(args.listen, args.insecure_allow_remote)?;
    let config = Config::load(&args.config.config)?;
    let state_dir = args.state_dir.unwrap_or_else(default_state_dir);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    info!(config = %args.config.config.display(), profiles = config.profiles.len(), "configuration loaded");
    let in_state_dir = || format!("state directory {}", state_dir.display());
    daemon::prepare_state_dir(&state_dir).with_context(in_state_dir)?;
    let pipeline = Pipeline::new(&config.tools, &state_dir).with_context(in_state_dir)?;
    let shutdown = shutdown_signal().context("cannot handle SIGTERM and SIGINT")?;
    daemon::serve(config, &state_dir, listener, pipeline, shutdown)
        .await
        .with_context(in_state_dir)
}

/// No open door by accident: a lease hands out a cluster-admin kubeconfig, and nothing
/// authenticates callers, so only loopback is served unless the operator says otherwise.
fn check_listen(listen: SocketAddr, allow_remote: bool) -> Result<()> {
    if listen.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        anyhow::bail!(
            "refusing to listen on {listen}: it is not a loopback address, and infrad does not \
             authenticate callers, so anyone who can reach it could lease a cluster and its \
             cluster-admin kubeconfig. Listen on 127.0.0.1 (the default) or ::1, or pass \
             --insecure-allow-remote if only trusted hosts can reach {listen}"
        );
    }
    warn!(%listen, "serving a non-loopback address without authentication (--insecure-allow-remote)");
    Ok(())
}

pub fn check_config(args: ConfigArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    println!("{}: OK", args.config.display());
    for profile in config.profiles.values() {
        let pool = &profile.pool;
        println!(
            "  profile {}: warm {}, max {}, recycle {}, lease ttl {} (max {})",
            profile.name,
            pool.warm,
            pool.max,
            pool.recycle,
            humantime::format_duration(pool.lease_ttl),
            humantime::format_duration(pool.max_lease_ttl),
        );
        for step in &profile.deploy {
            println!("    deploy step {}: {}", step.name, step.image_use());
        }
    }
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// `/var/lib/infrad` as root, else `$XDG_STATE_HOME/infrad` (`~/.local/state/infrad`).
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/infrad");
    }
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state_home.join("infrad")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_served_unless_allowed() {
        for addr in [
            "127.0.0.1:50051",
            "127.0.0.2:1",
            "[::1]:50051",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(check_listen(addr.parse().unwrap(), false).is_ok(), "{addr}");
        }
        for addr in ["0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051"] {
            let e = check_listen(addr.parse().unwrap(), false)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("refusing to listen on {addr}")),
                "{e}"
            );
            assert!(e.contains("--insecure-allow-remote"), "{e}");
            assert!(check_listen(addr.parse().unwrap(), true).is_ok());
        }
    }
}

use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};
use tracing::info;

use super::{ConfigArgs, ServeArgs};
use crate::{config::Config, daemon, pipeline::Pipeline};

pub async fn serve(args: ServeArgs) -> Result<()> {
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

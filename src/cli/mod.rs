//! The command line: `infrad serve | check-config | status`.
mod build;
mod serve;
mod status;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

pub use build::build;
pub use serve::{check_config, default_state_dir, serve};
pub use status::{refresh, status};

/// Keeps warm kind clusters and leases them to end-to-end test runs over gRPC.
#[derive(Debug, Parser)]
#[command(name = "infrad", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `infrad=debug`.
    #[arg(long, env = "INFRAD_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: keep pools warm and serve leases over gRPC.
    Serve(ServeArgs),
    /// Validate a configuration file without starting anything.
    CheckConfig(ConfigArgs),
    /// Show pools, clusters, leases and build timings of a running daemon.
    Status(StatusArgs),
    /// Rebuild a profile's images in a running daemon; clusters of older images are replaced.
    Refresh(RefreshArgs),
    /// Run the pipeline once in the foreground (no daemon) and leave the cluster standing.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration file (TOML); `deploy/infrad.example.toml` documents every key.
    #[arg(long, env = "INFRAD_CONFIG", default_value = "infrad.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to serve gRPC on.
    #[arg(long, env = "INFRAD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Where the database and kubeconfigs live
    /// [default: /var/lib/infrad as root, else $XDG_STATE_HOME/infrad].
    #[arg(long, env = "INFRAD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Address of the daemon.
    #[arg(long, env = "INFRAD_ADDR", default_value = infrad_client::DEFAULT_ADDR)]
    pub addr: String,
    /// Only this profile (default: all).
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The profile to build.
    #[arg(long)]
    pub profile: String,
    /// Delete the cluster at the end instead of leaving it.
    #[arg(long)]
    pub rm: bool,
    /// Where the kubeconfig goes (in `clusters/`); as for `serve`.
    #[arg(long, env = "INFRAD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Address of the daemon.
    #[arg(long, env = "INFRAD_ADDR", default_value = infrad_client::DEFAULT_ADDR)]
    pub addr: String,
    /// Only this profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

//! The command line: `infrad serve | check-config | status`.
mod build;
mod lease;
mod progress;
mod run;
mod serve;
mod status;

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

pub use build::build;
pub use lease::{acquire, release, renew};
pub use run::run;
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
    /// Acquire a lease and print it; nothing renews it (see `renew`, or use `run`).
    Acquire(AcquireArgs),
    /// Extend a lease.
    Renew(RenewArgs),
    /// End a lease.
    Release(ReleaseArgs),
    /// Acquire a lease, run a command with KUBECONFIG set, renew meanwhile, release after;
    /// exits with the command's exit code.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct AddrArgs {
    /// Address of the daemon.
    #[arg(long, env = "INFRAD_ADDR", default_value = infrad_client::DEFAULT_ADDR)]
    pub addr: String,
}

#[derive(Debug, Args)]
pub struct LeaseRequestArgs {
    /// The profile to lease a cluster of.
    #[arg(long)]
    pub profile: String,
    /// Who holds it [default: the CI job's identity, else user@host:pid].
    #[arg(long)]
    pub holder: Option<String>,
    /// Time to live, e.g. 30m [default: the profile's].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<std::time::Duration>,
    /// How long to wait for a ready cluster, e.g. 10m; 0s answers at once [default: the profile's].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct AcquireArgs {
    #[command(flatten)]
    pub addr: AddrArgs,
    #[command(flatten)]
    pub request: LeaseRequestArgs,
    /// Write the kubeconfig here (mode 0600) [default: a new file in the temp directory].
    #[arg(long)]
    pub kubeconfig_out: Option<PathBuf>,
    /// Print JSON: lease_id, token, cluster, kubeconfig_path, expires_at.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    #[command(flatten)]
    pub addr: AddrArgs,
    /// The lease id.
    pub lease_id: String,
    /// The lease's token.
    #[arg(long, env = "INFRAD_LEASE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// New time to live from now [default: the profile's].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub addr: AddrArgs,
    /// The lease id.
    pub lease_id: String,
    /// The lease's token.
    #[arg(long, env = "INFRAD_LEASE_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub addr: AddrArgs,
    #[command(flatten)]
    pub request: LeaseRequestArgs,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
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

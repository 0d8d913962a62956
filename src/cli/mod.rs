//! The command line: `infrad serve | check-config | status | refresh | build | acquire | renew
//! | release | run`. Errors are `anyhow` with the context a person needs (which address, which
//! directory); [`Exit`] carries a command's documented exit code.
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
    ///
    /// Exit codes: 0 the cluster is ready; 1 the build failed (the message names the phase,
    /// the step and its error) or cannot start (a tool is missing); 2 the configuration is
    /// invalid or has no such profile; 130 interrupted (the half-built cluster is deleted).
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

/// A failure that ends the process with a documented exit code (else 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    /// The exit code `error` should end the process with.
    pub fn code_of(error: &anyhow::Error) -> u8 {
        error.downcast_ref::<Exit>().map_or(1, |exit| exit.code)
    }
}

/// `context: cause: cause…`, leaving out a cause the message before it already ends with
/// (errors that show their source in their own message).
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if message.is_empty() {
            message = cause;
        } else if !message.ends_with(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
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
    /// NAME=REF: run the local image REF (a tag or an image ID on the daemon's Docker host) in
    /// place of the profile's image NAME; the steps that use it are deployed again with it
    /// before the lease is answered. Repeatable.
    #[arg(long = "image", value_name = "NAME=REF", value_parser = image_override)]
    pub images: Vec<(String, String)>,
}

/// `kubernaut/we:dev=we:pr-42` → (`kubernaut/we:dev`, `we:pr-42`). Image names hold `:` but
/// never `=`.
fn image_override(arg: &str) -> std::result::Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, reference)) if !name.is_empty() && !reference.is_empty() => {
            Ok((name.to_string(), reference.to_string()))
        }
        _ => Err(format!(
            "expected NAME=REF (the profile's image name, then a local image), got {arg:?}"
        )),
    }
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
    /// After the command, have the daemon collect the cluster's logs, events and lease.json
    /// into its artifacts directory, and copy that directory here (a profile with
    /// [profiles.P.artifacts]).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// With --artifacts: stop this deploy step's Deployments and StatefulSets first, so that
    /// they write what they write on exit (Go coverage data). Repeatable.
    #[arg(long, value_name = "STEP", requires = "artifacts")]
    pub flush: Vec<String>,
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
    /// Address to serve gRPC on. Only loopback unless --insecure-allow-remote.
    #[arg(long, env = "INFRAD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Serve a non-loopback --listen address although callers are not authenticated: anyone
    /// who reaches it can lease a cluster and its cluster-admin kubeconfig.
    #[arg(long)]
    pub insecure_allow_remote: bool,
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_come_from_the_error_chain() {
        let exit = anyhow::Error::from(Exit {
            code: 130,
            message: "interrupted".into(),
        });
        assert_eq!(Exit::code_of(&exit.context("infrad build")), 130);
        assert_eq!(Exit::code_of(&anyhow::anyhow!("any other error")), 1);
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "File exists");
        let error = anyhow::Error::from(crate::Error::from(io)).context("state directory /x");
        assert_eq!(error_message(&error), "state directory /x: File exists");
        let chained = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_message(&chained), "outer: middle: inner");
    }
}

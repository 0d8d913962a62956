use std::io::IsTerminal;

use clap::Parser;
use infrad::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => cli::serve(args).await?,
        Command::CheckConfig(args) => cli::check_config(args)?,
        Command::Status(args) => cli::status(args).await?,
    }
    Ok(())
}

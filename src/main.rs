use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;
use infrad::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            // The message is for people: no backtrace, whatever RUST_BACKTRACE says.
            eprintln!("infrad: {}", cli::error_message(&e));
            ExitCode::from(cli::Exit::code_of(&e))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Serve(args) => cli::serve(args).await?,
        Command::CheckConfig(args) => cli::check_config(args)?,
        Command::Status(args) => cli::status(args).await?,
        Command::Refresh(args) => cli::refresh(args).await?,
        Command::Build(args) => cli::build(args).await?,
        Command::Acquire(args) => cli::acquire(args).await?,
        Command::Renew(args) => cli::renew(args).await?,
        Command::Release(args) => cli::release(args).await?,
        Command::Run(args) => return cli::run(args).await,
    }
    Ok(ExitCode::SUCCESS)
}

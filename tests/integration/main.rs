//! infrad's integration tests, one binary (a real server on 127.0.0.1:0, reached through
//! `infrad-client`, the CLI binary or grpcurl); shared helpers live in `infrad-test-support`.
//! `tests/processes.rs` has a harness of its own because it re-executes itself.
mod artifacts;
mod binary;
mod build_command;
mod cli_lease;
mod client;
mod collect;
mod concurrency;
mod e2e_kind;
mod example;
mod fake_apiserver;
mod fake_kind;
mod leases;
mod overlay;
mod pipeline;
mod pool;

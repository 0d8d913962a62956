//! The `kind` CLI, as described in docs/kind-contract.md: progress on stderr, `ERROR:` lines
//! and exit 1 on failure, idempotent deletes.
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use tracing::warn;

use super::command::{ToolError, run};

const INSTALL: &str = "install kind v0.32 (a static binary on PATH) or set tools.kind";

/// Load errors kind users see now and then, which a retry cures.
const TRANSIENT_LOAD_ERRORS: [&str; 2] = ["wrong diff id", "content digest"];
const LOAD_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct Kind {
    program: PathBuf,
}

/// What `kind create cluster` is asked to make.
pub struct CreateSpec<'a> {
    pub name: &'a str,
    pub config: Option<&'a Path>,
    pub node_image: &'a str,
    pub wait: Duration,
    pub kubeconfig: &'a Path,
}

impl Kind {
    pub fn new(program: &Path) -> Self {
        Self {
            program: program.to_path_buf(),
        }
    }

    /// `kind v0.32.0 go1.25.1 linux/amd64`.
    pub async fn version(&self) -> Result<String, ToolError> {
        Ok(run(&self.program, ["version"], INSTALL)
            .await?
            .trim()
            .to_string())
    }

    /// Creates a cluster. kind's own `--wait` running out still exits 0, so the caller checks
    /// readiness itself.
    pub async fn create(&self, spec: &CreateSpec<'_>) -> Result<(), ToolError> {
        let mut args: Vec<OsString> = vec![
            "create".into(),
            "cluster".into(),
            "--name".into(),
            spec.name.into(),
        ];
        if let Some(config) = spec.config {
            args.extend(["--config".into(), config.as_os_str().to_owned()]);
        }
        args.extend([
            "--image".into(),
            spec.node_image.into(),
            "--wait".into(),
            format!("{}s", spec.wait.as_secs()).into(),
            "--kubeconfig".into(),
            spec.kubeconfig.as_os_str().to_owned(),
        ]);
        run(&self.program, &args, INSTALL).await.map(drop)
    }

    /// Deletes a cluster; a missing one is fine (kind exits 0).
    pub async fn delete(&self, name: &str, kubeconfig: &Path) -> Result<(), ToolError> {
        let args: [&std::ffi::OsStr; 6] = [
            "delete".as_ref(),
            "cluster".as_ref(),
            "--name".as_ref(),
            name.as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
        ];
        run(&self.program, args, INSTALL).await.map(drop)
    }

    /// Names of all kind clusters on this host.
    pub async fn clusters(&self) -> Result<Vec<String>, ToolError> {
        let out = run(&self.program, ["get", "clusters"], INSTALL).await?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    /// Loads all `images` in one call (one `docker save`, kind#927), retrying the known
    /// transient errors.
    pub async fn load(&self, cluster: &str, images: &[String]) -> Result<(), ToolError> {
        let mut args: Vec<&str> = vec!["load", "docker-image"];
        args.extend(images.iter().map(String::as_str));
        args.extend(["--name", cluster]);
        let mut attempt = 1;
        loop {
            match run(&self.program, &args, INSTALL).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < LOAD_ATTEMPTS && is_transient(&e) => {
                    warn!(cluster, attempt, error = %e, "transient load error; retrying");
                    tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_transient(e: &ToolError) -> bool {
    TRANSIENT_LOAD_ERRORS
        .iter()
        .any(|known| e.stderr_tail.contains(known))
}

//! The `docker` CLI: honours the user's docker context, BuildKit setting and credentials,
//! because it is the user's own CLI with the daemon's environment.
use std::path::{Path, PathBuf};

use super::command::{ToolError, run};
use crate::config::ImageSpec;

const INSTALL: &str = "install Docker (Debian: apt-get install docker.io) or set tools.docker";

#[derive(Debug, Clone)]
pub struct Docker {
    program: PathBuf,
}

impl Docker {
    pub fn new(program: &Path) -> Self {
        Self {
            program: program.to_path_buf(),
        }
    }

    /// The engine's version; fails when the CLI or the engine is missing.
    pub async fn server_version(&self) -> Result<String, ToolError> {
        let out = run(
            &self.program,
            ["version", "--format", "{{.Server.Version}}"],
            INSTALL,
        )
        .await?;
        Ok(out.trim().to_string())
    }

    /// Builds `image` and returns its image ID.
    pub async fn build(&self, image: &ImageSpec) -> Result<String, ToolError> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["build".into(), "--tag".into(), image.name.clone().into()];
        args.extend(["--file".into(), image.dockerfile.clone().into_os_string()]);
        for (key, value) in &image.build_args {
            args.extend(["--build-arg".into(), format!("{key}={value}").into()]);
        }
        if let Some(target) = &image.target {
            args.extend(["--target".into(), target.into()]);
        }
        args.push(image.context.clone().into_os_string());
        run(&self.program, &args, INSTALL).await?;
        self.image_id(&image.name).await
    }

    pub async fn image_id(&self, name: &str) -> Result<String, ToolError> {
        let out = run(
            &self.program,
            ["image", "inspect", "--format", "{{.Id}}", name],
            INSTALL,
        )
        .await?;
        Ok(out.trim().to_string())
    }
}

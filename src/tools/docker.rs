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

    /// The image ID of a local image (a tag or an ID); `None` when the host has no such image.
    pub async fn find_image(&self, reference: &str) -> Result<Option<String>, ToolError> {
        match self.image_id(reference).await {
            Ok(id) => Ok(Some(id)),
            Err(e) if is_no_such_image(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives the image `source` (a tag or an ID) the tag `target` too.
    pub async fn tag(&self, source: &str, target: &str) -> Result<(), ToolError> {
        run(&self.program, ["tag", source, target], INSTALL).await?;
        Ok(())
    }

    /// Removes one tag; the image stays while other tags name it. A tag already gone is fine.
    pub async fn remove_tag(&self, tag: &str) -> Result<(), ToolError> {
        match run(&self.program, ["image", "rm", "--no-prune", tag], INSTALL).await {
            Err(e) if !is_no_such_image(&e) => Err(e),
            _ => Ok(()),
        }
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

/// Docker's answer for an image the host does not have ("No such image", "no such image").
fn is_no_such_image(e: &ToolError) -> bool {
    e.exit_code == Some(1) && e.stderr_tail.to_lowercase().contains("no such image")
}

//! A fake world for the real pipeline: the fake `kind` (`fixtures/fake-kind`, behind a
//! wrapper script that sets its knobs), a fake Kubernetes API server its kubeconfigs point
//! at, and a folder for the recipe's files. Docker is the real one.
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use infrad::{config::Config, pipeline::Pipeline};
use tempfile::TempDir;

use crate::{FAKE_KIND, TestDaemon, fake_apiserver::FakeApiServer, state_dir};

/// One call of the fake kind, from its log.
#[derive(Debug, Clone)]
pub struct KindCall {
    pub pid: i32,
    pub args: Vec<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

pub struct FakeWorld {
    pub dir: TempDir,
    pub api: FakeApiServer,
}

impl FakeWorld {
    pub async fn new() -> Self {
        let world = Self {
            dir: tempfile::tempdir().unwrap(),
            api: FakeApiServer::start().await,
        };
        std::fs::create_dir_all(world.kind_state()).unwrap();
        world.set_kind_env(&[]);
        world
    }

    fn kind_state(&self) -> PathBuf {
        self.dir.path().join("kind-state")
    }

    fn kind_log(&self) -> PathBuf {
        self.dir.path().join("kind.log")
    }

    pub fn kind(&self) -> PathBuf {
        self.dir.path().join("kind")
    }

    /// (Re)writes the `kind` the pipeline runs: the fixture with these extra knobs.
    pub fn set_kind_env(&self, extra: &[(&str, &str)]) {
        let mut script = String::from("#!/bin/sh\n");
        let base = [
            ("FAKE_KIND_STATE", self.kind_state().display().to_string()),
            ("FAKE_KIND_API_SERVER", self.api.url()),
            ("FAKE_KIND_LOG", self.kind_log().display().to_string()),
        ];
        for (key, value) in base
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(extra.iter().copied())
        {
            script.push_str(&format!("export {key}='{value}'\n"));
        }
        script.push_str(&format!("exec '{FAKE_KIND}' \"$@\"\n"));
        let path = self.kind();
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, script).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    /// Writes a recipe file (a Dockerfile, a manifest) relative to the config file.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// `infrad.toml` in the world's folder, with `[tools] kind` set to the fake.
    pub fn config(&self, profiles: &str) -> Config {
        let text = format!("[tools]\nkind = \"{}\"\n{profiles}", self.kind().display());
        let path = self.write("infrad.toml", &text);
        Config::load(&path).expect("test config is valid")
    }

    /// A daemon running the real pipeline in this world.
    pub async fn daemon(&self, profiles: &str) -> TestDaemon<Arc<Pipeline>> {
        let config = self.config(profiles);
        let state = tempfile::tempdir().unwrap();
        let pipeline = Pipeline::new(&config.tools, &state_dir(&state)).unwrap();
        TestDaemon::serve(config, Arc::new(pipeline), state).await
    }

    /// Clusters the fake kind holds now.
    pub fn kind_clusters(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.kind_state())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Images the fake kind loaded into a cluster's node.
    pub fn loaded_images(&self, cluster: &str) -> String {
        let node = format!("{cluster}-control-plane");
        std::fs::read_to_string(self.kind_state().join(cluster).join("images").join(node))
            .unwrap_or_default()
    }

    /// Every call of the fake kind so far, from its log.
    pub fn kind_calls(&self) -> Vec<KindCall> {
        let log = std::fs::read_to_string(self.kind_log()).unwrap_or_default();
        let mut calls: Vec<KindCall> = Vec::new();
        for line in log.lines() {
            let mut fields = line.split_whitespace();
            let (Some(what), Some(ms), Some(pid)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (ms, pid): (i64, i32) = (ms.parse().unwrap(), pid.parse().unwrap());
            match what {
                "START" => calls.push(KindCall {
                    pid,
                    args: fields.map(String::from).collect(),
                    started_ms: ms,
                    ended_ms: None,
                }),
                "END" => {
                    if let Some(call) = calls
                        .iter_mut()
                        .rev()
                        .find(|c| c.pid == pid && c.ended_ms.is_none())
                    {
                        call.ended_ms = Some(ms);
                    }
                }
                _ => {}
            }
        }
        calls
    }
}

/// Whether a path is a file only its owner can read and write.
pub fn is_private(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600)
}

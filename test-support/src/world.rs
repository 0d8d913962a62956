//! A fake world for the real pipeline: the fake `kind` (`fixtures/fake-kind`, behind a
//! wrapper script that sets its knobs), fake Kubernetes API servers its kubeconfigs point at
//! (one, or one per cluster), and a folder for the recipe's files. Docker is the real one
//! unless [`FakeWorld::fake_docker`] puts the fake in its place (benchmarks).
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use infrad::{config::Config, pipeline::Pipeline};
use tempfile::TempDir;

use crate::{FAKE_DOCKER, FAKE_KIND, TestDaemon, fake_apiserver::FakeApiServer, state_dir};

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
    /// The API server of every cluster (of the first, with [`FakeWorld::with_api_servers`]).
    pub api: FakeApiServer,
    /// The API servers of the second and later clusters, round robin.
    more_apis: Vec<FakeApiServer>,
}

impl FakeWorld {
    pub async fn new() -> Self {
        Self::with_api_servers(1).await
    }

    /// A world whose clusters get API servers of their own, in turn, so that nothing one
    /// cluster applied is seen by the next (up to `n` clusters).
    pub async fn with_api_servers(n: usize) -> Self {
        let api = FakeApiServer::start().await;
        let mut more_apis = Vec::new();
        for _ in 1..n {
            more_apis.push(FakeApiServer::start().await);
        }
        let world = Self {
            dir: tempfile::tempdir().unwrap(),
            api,
            more_apis,
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
        if !self.more_apis.is_empty() {
            script.push_str(&self.next_api_server());
        }
        script.push_str(&format!("exec '{FAKE_KIND}' \"$@\"\n"));
        install_script(&self.kind(), &script);
    }

    /// Shell that gives each `kind create` the next API server, counting under a lock.
    fn next_api_server(&self) -> String {
        let dir = self.dir.path().display();
        let mut script = format!(
            "if [ \"${{1:-}}\" = create ]; then\n\
             exec 9>>'{dir}/api-servers.lock'\nflock 9\n\
             n=$(cat '{dir}/api-servers.next' 2>/dev/null || echo 0)\n\
             echo $((n + 1)) >'{dir}/api-servers.next'\nexec 9>&-\n\
             case $((n % {})) in\n",
            self.more_apis.len() + 1
        );
        let servers = std::iter::once(&self.api).chain(&self.more_apis);
        for (i, api) in servers.enumerate() {
            script.push_str(&format!(
                "{i}) export FAKE_KIND_API_SERVER='{}' ;;\n",
                api.url()
            ));
        }
        script.push_str("esac\nfi\n");
        script
    }

    /// Puts the fake `docker` (each build taking `build_secs`) in place of the real one for
    /// the configs written from now on.
    pub fn fake_docker(&self, build_secs: f64) {
        let script = format!(
            "#!/bin/sh\nexport FAKE_DOCKER_DELAY_BUILD='{build_secs}'\n\
             export FAKE_DOCKER_LOG='{}'\nexec '{FAKE_DOCKER}' \"$@\"\n",
            self.docker_log().display()
        );
        install_script(&self.docker(), &script);
    }

    fn docker(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    fn docker_log(&self) -> PathBuf {
        self.dir.path().join("docker.log")
    }

    /// `docker build` calls of the fake docker so far.
    pub fn docker_builds(&self) -> usize {
        std::fs::read_to_string(self.docker_log())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("BUILD "))
            .count()
    }

    /// Writes a recipe file (a Dockerfile, a manifest) relative to the config file.
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// `infrad.toml` in the world's folder, with `[tools] kind` set to the fake (and `docker`,
    /// after [`FakeWorld::fake_docker`]).
    pub fn config(&self, profiles: &str) -> Config {
        Config::load(&self.config_file(profiles)).expect("test config is valid")
    }

    /// Writes that `infrad.toml` and returns its path (for an `infrad serve` process).
    pub fn config_file(&self, profiles: &str) -> PathBuf {
        let mut text = format!("[tools]\nkind = \"{}\"\n", self.kind().display());
        if self.docker().exists() {
            text.push_str(&format!("docker = \"{}\"\n", self.docker().display()));
        }
        text.push_str(profiles);
        self.write("infrad.toml", &text)
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

/// Writes an executable script, replacing any old one at once (a running pipeline may call it).
fn install_script(path: &Path, script: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, script).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// Whether a path is a file only its owner can read and write.
pub fn is_private(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600)
}

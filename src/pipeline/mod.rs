//! The four-phase hybrid pipeline that builds a cluster: build images ‖ → create cluster →
//! load images ‖ → deploy services ‖ (each step once the steps it waits for are ready, and the
//! images loaded if it uses one: a step that uses none deploys while they load).
//! Every step is recorded; a failure names its phase and step with the tool's exit code and
//! the tail of its stderr. Cancelling (dropping) a build kills its child processes.
mod artifacts;
mod cluster;
mod deploy;
mod images;
mod kind_config;
mod overlay;
mod reset;

use std::{
    collections::HashMap,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use futures::{FutureExt, future::try_join_all};
use tracing::info;

pub use images::BuiltImage;

use crate::{
    artifacts::Collected,
    config::{Profile, Tools},
    overlay::Override,
    pool::{Built, ClusterSpec, ProvisionResult, Provisioner, Recorder},
    store::RunFailure,
    tools::{ToolError, docker::Docker, kind::Kind, kube::Kube},
};

/// Builds clusters with docker, kind and the Kubernetes API.
pub struct Pipeline {
    docker: Docker,
    kind: Kind,
    /// One kubeconfig (mode 0600) and one namespace baseline per cluster.
    clusters_dir: PathBuf,
    images: images::ImageCache,
    /// A Kubernetes client per cluster, kept from its build for its resets: a new client
    /// costs TLS set-up and API discovery, which would dominate an instant reset.
    kubes: Mutex<HashMap<String, Arc<Kube>>>,
    /// Held while overlay tags are made or removed, so that none is removed as it is used.
    tags: tokio::sync::Mutex<()>,
}

impl Pipeline {
    /// Keeps per-cluster files in `<state_dir>/clusters` (mode 0700: kubeconfigs are secrets).
    pub fn new(tools: &Tools, state_dir: &Path) -> std::io::Result<Self> {
        let clusters_dir = state_dir.join("clusters");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&clusters_dir)?;
        Ok(Self {
            docker: Docker::new(&tools.docker),
            kind: Kind::new(&tools.kind),
            clusters_dir,
            images: images::ImageCache::default(),
            kubes: Mutex::default(),
            tags: tokio::sync::Mutex::default(),
        })
    }

    /// The cluster's client: the one its build made, or a new one after a restart (a failure
    /// to make one is a failure of `phase`).
    async fn kube(&self, cluster: &str, phase: &str) -> ProvisionResult<Arc<Kube>> {
        if let Some(kube) = self.kubes().get(cluster) {
            return Ok(Arc::clone(kube));
        }
        let kube = Kube::from_kubeconfig(&self.kubeconfig_path(cluster))
            .await
            .map_err(step_failure(phase, "kubeconfig"))?;
        Ok(self.keep_kube(cluster, kube))
    }

    fn keep_kube(&self, cluster: &str, kube: Kube) -> Arc<Kube> {
        let kube = Arc::new(kube);
        self.kubes().insert(cluster.to_string(), Arc::clone(&kube));
        kube
    }

    fn kubes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Kube>>> {
        self.kubes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn kubeconfig_path(&self, cluster: &str) -> PathBuf {
        self.clusters_dir.join(format!("{cluster}.kubeconfig"))
    }

    /// The folder of a cluster's files that are more than one (its artifacts).
    fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.clusters_dir.join(cluster)
    }

    /// The host directory mounted on every node of a cluster whose profile has artifacts.
    pub fn artifacts_path(&self, cluster: &str) -> PathBuf {
        self.cluster_dir(cluster).join("artifacts")
    }

    fn baseline_path(&self, cluster: &str) -> PathBuf {
        self.clusters_dir.join(format!("{cluster}.namespaces"))
    }

    fn overlay_path(&self, cluster: &str) -> PathBuf {
        self.clusters_dir.join(format!("{cluster}.overlay"))
    }

    /// Phase 1 alone: the profile's images, built (or taken from the cache).
    pub async fn build_images(
        &self,
        profile: &Profile,
        recorder: &Recorder,
    ) -> ProvisionResult<Vec<BuiltImage>> {
        self.images
            .get_or_build(&self.docker, profile, recorder)
            .await
    }
}

/// A tool's failure as the failure of a pipeline step: the message, then stderr's tail.
pub(crate) fn step_failure(phase: &str, step: &str) -> impl Fn(ToolError) -> RunFailure {
    move |e: ToolError| RunFailure {
        phase: phase.to_string(),
        step: step.to_string(),
        exit_code: e.exit_code,
        error: if e.stderr_tail.trim().is_empty() || e.message.contains(e.stderr_tail.trim()) {
            e.message
        } else {
            format!("{}\n{}", e.message, e.stderr_tail.trim_end())
        },
    }
}

impl Provisioner for Pipeline {
    async fn refresh(&self, profile: &Arc<Profile>) -> ProvisionResult<()> {
        self.images
            .rebuild(&self.docker, profile, &Recorder::detached())
            .await
            .map(drop)
    }

    fn current_images(&self, profile: &str) -> Option<String> {
        self.images
            .current(profile)
            .map(|images| images::fingerprint(&images))
    }

    async fn preflight(&self) -> ProvisionResult<()> {
        let kind = self
            .kind
            .version()
            .await
            .map_err(step_failure("build", "kind version"))?;
        let docker = self
            .docker
            .server_version()
            .await
            .map_err(step_failure("build", "docker version"))?;
        info!(kind, docker, "tools found");
        Ok(())
    }

    async fn build(&self, cluster: &ClusterSpec, recorder: &Recorder) -> ProvisionResult<Built> {
        let profile = &cluster.profile;
        let images = self.build_images(profile, recorder).await?;
        let kubeconfig = self.kubeconfig_path(&cluster.name);
        let artifacts = self.artifacts_path(&cluster.name);
        let kind_config = self.cluster_dir(&cluster.name).join("kind-config.yaml");
        let files = cluster::ClusterFiles {
            kubeconfig: &kubeconfig,
            artifacts: &artifacts,
            kind_config: &kind_config,
        };
        let kube = cluster::create(&self.kind, cluster, &files, recorder).await?;
        let kube = self.keep_kube(&cluster.name, kube);
        let names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
        // Deploy steps that use none of the profile's images start while the images load.
        let loaded = async {
            if names.is_empty() {
                return Ok(());
            }
            recorder
                .step("load", "kind load docker-image", async {
                    self.kind
                        .load(&cluster.name, &names)
                        .await
                        .map_err(step_failure("load", "kind load docker-image"))
                })
                .await
        }
        .boxed()
        .shared();
        futures::try_join!(
            loaded.clone(),
            deploy::run(&kube, &profile.deploy, recorder, loaded.clone())
        )?;
        reset::record_baseline(&kube, &self.baseline_path(&cluster.name)).await?;
        let text = std::fs::read_to_string(&kubeconfig).map_err(|e| RunFailure {
            phase: "cluster".into(),
            step: "kubeconfig".into(),
            exit_code: None,
            error: format!("reading {}: {e}", kubeconfig.display()),
        })?;
        Ok(Built {
            kubeconfig: text,
            images: images::fingerprint(&images),
        })
    }

    async fn find_images(&self, references: &[String]) -> ProvisionResult<Vec<Option<String>>> {
        try_join_all(references.iter().map(|r| self.docker.find_image(r)))
            .await
            .map_err(step_failure("load", "docker image inspect"))
    }

    async fn overlay(
        &self,
        cluster: &ClusterSpec,
        overrides: &[Override],
        recorder: &Recorder,
    ) -> ProvisionResult<()> {
        overlay::run(self, cluster, overrides, recorder).await
    }

    async fn reset(&self, cluster: &ClusterSpec) -> ProvisionResult<()> {
        let kube = self.kube(&cluster.name, "recycle").await?;
        let overlaid = overlay::read_record(&self.overlay_path(&cluster.name))
            .map(|r| r.steps)
            .unwrap_or_default();
        reset::run(
            &kube,
            &self.baseline_path(&cluster.name),
            &cluster.profile.deploy,
            &overlaid,
        )
        .await?;
        self.forget_overlay(&cluster.name).await;
        Ok(())
    }

    async fn destroy(&self, name: &str) -> ProvisionResult<()> {
        self.kubes().remove(name);
        let kubeconfig = self.kubeconfig_path(name);
        self.kind
            .delete(name, &kubeconfig)
            .await
            .map_err(step_failure("recycle", "kind delete cluster"))?;
        self.forget_overlay(name).await;
        for file in [kubeconfig, self.baseline_path(name)] {
            let _ = std::fs::remove_file(file);
        }
        let _ = std::fs::remove_dir_all(self.cluster_dir(name));
        Ok(())
    }

    async fn list(&self) -> ProvisionResult<Vec<String>> {
        self.kind
            .clusters()
            .await
            .map_err(step_failure("reconcile", "kind get clusters"))
    }

    fn artifacts_dir(&self, cluster: &str) -> PathBuf {
        self.artifacts_path(cluster)
    }

    async fn collect(&self, cluster: &ClusterSpec, flush: &[String], report: &mut Collected) {
        artifacts::collect(self, cluster, flush, report).await;
    }
}

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::FutureExt;
use infrad::{
    artifacts::Collected,
    overlay::Override,
    pool::{Built, ClusterSpec, ProvisionResult, Provisioner, Recorder},
    store::RunFailure,
};

/// What the provisioner did, in order, with when.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    BuildStarted(String, Instant),
    BuildEnded(String, Instant),
    /// An overlay finished: the cluster and the tags it loaded.
    Overlaid(String, Vec<String>),
    /// Collecting began: the cluster and the steps to flush.
    Collected(String, Vec<String>),
    Reset(String),
    Destroyed(String),
}

#[derive(Debug, Default)]
struct Knobs {
    build_delay: Duration,
    fail_builds: bool,
    fail_resets: bool,
    overlay_delay: Duration,
    collect_delay: Duration,
    /// Bumped by a refresh: clusters of an older generation are stale.
    image_generation: u32,
}

/// Pretend clusters: a file per cluster in `dir`, so that a restarted daemon (even another
/// process) sees the same clusters. Builds take `build_delay` and can be made to fail.
#[derive(Clone)]
pub struct TestProvisioner {
    dir: PathBuf,
    knobs: Arc<Mutex<Knobs>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl TestProvisioner {
    pub fn new(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            knobs: Arc::default(),
            events: Arc::default(),
        }
    }

    pub fn set_build_delay(&self, delay: Duration) {
        self.knobs.lock().unwrap().build_delay = delay;
    }

    /// Collecting takes this long (then writes `collected.txt`).
    pub fn set_collect_delay(&self, delay: Duration) {
        self.knobs.lock().unwrap().collect_delay = delay;
    }

    pub fn set_fail_builds(&self, fail: bool) {
        self.knobs.lock().unwrap().fail_builds = fail;
    }

    pub fn set_fail_resets(&self, fail: bool) {
        self.knobs.lock().unwrap().fail_resets = fail;
    }

    /// How long each overlay's load step takes (default 0).
    pub fn set_overlay_delay(&self, delay: Duration) {
        self.knobs.lock().unwrap().overlay_delay = delay;
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn record(&self, event: Event) {
        self.events.lock().unwrap().push(event);
    }

    /// Clusters that exist now.
    pub fn existing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Makes a cluster exist behind the daemon's back.
    pub fn create_behind_the_back(&self, name: &str) {
        std::fs::write(self.dir.join(name), "").unwrap();
    }

    /// Deletes a cluster behind the daemon's back.
    pub fn delete_behind_the_back(&self, name: &str) {
        std::fs::remove_file(self.dir.join(name)).unwrap();
    }

    /// The most builds that ran at the same time, from the recorded start and end instants.
    pub fn max_concurrent_builds(&self) -> usize {
        let mut edges: Vec<(Instant, i32)> = self
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::BuildStarted(_, at) => Some((at, 1)),
                Event::BuildEnded(_, at) => Some((at, -1)),
                _ => None,
            })
            .collect();
        // Ends sort before starts at the same instant: back-to-back is not overlap.
        edges.sort();
        let mut running = 0;
        let mut most = 0;
        for (_, delta) in edges {
            running += delta;
            most = most.max(running);
        }
        usize::try_from(most).unwrap()
    }
}

/// Records the end of a build even when the build is cancelled (dropped).
struct Ending<'a>(&'a TestProvisioner, String);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.0
            .record(Event::BuildEnded(self.1.clone(), Instant::now()));
    }
}

impl Provisioner for TestProvisioner {
    async fn refresh(
        &self,
        _profile: &std::sync::Arc<infrad::config::Profile>,
    ) -> ProvisionResult<()> {
        self.knobs.lock().unwrap().image_generation += 1;
        Ok(())
    }

    fn current_images(&self, _profile: &str) -> Option<String> {
        Some(format!(
            "images-{}",
            self.knobs.lock().unwrap().image_generation
        ))
    }

    async fn build(&self, cluster: &ClusterSpec, recorder: &Recorder) -> ProvisionResult<Built> {
        self.record(Event::BuildStarted(cluster.name.clone(), Instant::now()));
        let _ending = Ending(self, cluster.name.clone());
        let (delay, fail, images) = {
            let knobs = self.knobs.lock().unwrap();
            (
                knobs.build_delay,
                knobs.fail_builds,
                format!("images-{}", knobs.image_generation),
            )
        };
        recorder
            .step("build", "images", async {
                tokio::time::sleep(delay / 2).await;
                Ok(())
            })
            .await?;
        recorder
            .step("cluster", "kind create cluster", async {
                tokio::time::sleep(delay / 2).await;
                if fail {
                    return Err(RunFailure {
                        phase: "cluster".into(),
                        step: "kind create cluster".into(),
                        exit_code: Some(1),
                        error: "ERROR: failed to create cluster: injected failure".into(),
                    });
                }
                std::fs::write(self.dir.join(&cluster.name), "").unwrap();
                Ok(())
            })
            .await?;
        Ok(Built {
            kubeconfig: format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: kind-{0}\n",
                cluster.name
            ),
            images,
        })
    }

    /// Every reference is present, its ID derived from it.
    async fn find_images(&self, references: &[String]) -> ProvisionResult<Vec<Option<String>>> {
        Ok(references
            .iter()
            .map(|r| {
                let mut hash = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(r, &mut hash);
                Some(format!("sha256:{:016x}", std::hash::Hasher::finish(&hash)))
            })
            .collect())
    }

    async fn overlay(
        &self,
        cluster: &ClusterSpec,
        overrides: &[Override],
        recorder: &Recorder,
    ) -> ProvisionResult<()> {
        let delay = self.knobs.lock().unwrap().overlay_delay;
        recorder
            .step(
                "load",
                "kind load docker-image",
                tokio::time::sleep(delay).map(Ok),
            )
            .await?;
        let tags = overrides.iter().map(|o| o.tag.clone()).collect();
        self.record(Event::Overlaid(cluster.name.clone(), tags));
        Ok(())
    }

    async fn reset(&self, cluster: &ClusterSpec) -> ProvisionResult<()> {
        self.record(Event::Reset(cluster.name.clone()));
        if self.knobs.lock().unwrap().fail_resets {
            return Err(RunFailure {
                phase: "recycle".into(),
                step: "reset".into(),
                exit_code: None,
                error: "injected reset failure".into(),
            });
        }
        Ok(())
    }

    async fn destroy(&self, name: &str) -> ProvisionResult<()> {
        self.record(Event::Destroyed(name.to_string()));
        let _ = std::fs::remove_file(self.dir.join(name));
        Ok(())
    }

    async fn list(&self) -> ProvisionResult<Vec<String>> {
        Ok(self.existing())
    }

    /// Beside `dir`, whose files are the clusters.
    fn artifacts_dir(&self, cluster: &str) -> PathBuf {
        self.dir.with_extension("artifacts").join(cluster)
    }

    /// Records the call, waits the collect delay, then writes `collected.txt` naming the
    /// flushed steps and counts it as one pod's one log.
    async fn collect(&self, cluster: &ClusterSpec, flush: &[String], report: &mut Collected) {
        self.record(Event::Collected(cluster.name.clone(), flush.to_vec()));
        let delay = self.knobs.lock().unwrap().collect_delay;
        tokio::time::sleep(delay).await;
        std::fs::write(report.dir.join("collected.txt"), flush.join("\n")).unwrap();
        report.pods += 1;
        report.logs += 1;
    }
}

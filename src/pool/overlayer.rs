//! The pool's side of an overlay: the provisioner puts a caller's images into its cluster, as
//! a run of its own in the store (kind `overlay`, phases load and deploy).
use std::{path::PathBuf, sync::Arc};

use tokio::sync::mpsc::UnboundedSender;

use super::{ClusterSpec, Provisioner, Recorder, StepEvent};
use crate::{
    Error, Result,
    artifacts::Collected,
    config::Profile,
    leases::Overlays,
    overlay::Override,
    private,
    store::{LeaseRow, StepRow, Store},
    time,
};

pub struct Overlayer<P> {
    provisioner: P,
    store: Store,
}

impl<P: Provisioner> Overlayer<P> {
    pub fn new(provisioner: P, store: Store) -> Self {
        Self { provisioner, store }
    }
}

impl<P: Provisioner> Overlays for Overlayer<P> {
    async fn find_images(&self, references: &[String]) -> Result<Vec<Option<String>>> {
        self.provisioner
            .find_images(references)
            .await
            .map_err(Error::ImageLookup)
    }

    async fn overlay(
        &self,
        lease: &LeaseRow,
        profile: &Arc<Profile>,
        overrides: &[Override],
        observer: UnboundedSender<StepEvent>,
    ) -> Result<Vec<StepRow>> {
        let run = self
            .store
            .begin_overlay(&lease.cluster_id, &profile.name, time::now())
            .await?;
        let recorder = Recorder::new(self.store.clone(), run).observed(observer);
        let cluster = ClusterSpec {
            id: lease.cluster_id.clone(),
            name: lease.cluster_name.clone(),
            profile: Arc::clone(profile),
        };
        // Cut short (the caller left, its wait ran out), the run is closed as cancelled when
        // the grant is taken back.
        let done = self
            .provisioner
            .overlay(&cluster, overrides, &recorder)
            .await;
        self.store
            .end_overlay(run, done.as_ref().err(), time::now())
            .await?;
        done.map_err(|failure| Error::Overlay {
            cluster: lease.cluster_name.clone(),
            failure,
        })?;
        self.store.build_steps_of_run(run).await
    }

    fn artifacts_dir(&self, cluster: &str) -> PathBuf {
        self.provisioner.artifacts_dir(cluster)
    }

    fn fresh_artifacts(&self, cluster: &str) -> Result<PathBuf> {
        let dir = self.provisioner.artifacts_dir(cluster);
        private::dir(&dir)?;
        // Its contents only: the nodes bind-mount the directory itself, and a new one in
        // its place would not be what they see.
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(dir)
    }

    async fn collect(
        &self,
        lease: &LeaseRow,
        profile: &Arc<Profile>,
        flush: &[String],
        record: &[u8],
        report: &mut Collected,
    ) {
        // First, so that even a collection cut short says which lease it belongs to.
        let file = report.dir.join("lease.json");
        if let Err(e) = private::write(&file, record) {
            report
                .problems
                .push(format!("writing {}: {e}", file.display()));
        }
        let cluster = ClusterSpec {
            id: lease.cluster_id.clone(),
            name: lease.cluster_name.clone(),
            profile: Arc::clone(profile),
        };
        self.provisioner.collect(&cluster, flush, report).await;
    }
}

//! The overlay: a caller's own images put into the cluster it leased, before Acquire answers.
//! Each override is tagged on the host with its content-derived tag, all are loaded with one
//! `kind load docker-image`, then the deploy steps that use an overridden image are applied
//! again with those references rewritten (Jobs deleted and created anew) and waited ready, in
//! `after` order; steps after them are checked ready again; the others see no request.
//!
//! What a cluster was overlaid with is kept in `<cluster>.overlay` (written before the load, so
//! a half-done overlay is undone too): reset restores those steps, and a tag is removed from
//! the host once no cluster's record names it.
use std::{collections::BTreeSet, path::Path};

use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{Pipeline, deploy, step_failure};
use crate::{
    config::DeployStep,
    image_ref,
    overlay::Override,
    pool::{ClusterSpec, ProvisionResult, Recorder},
    tools::ToolError,
};

/// What a cluster runs of callers' images, until its reset.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Record {
    pub overrides: Vec<Override>,
    /// The deploy steps applied with them.
    pub steps: Vec<String>,
}

pub(super) async fn run(
    pipeline: &Pipeline,
    cluster: &ClusterSpec,
    overrides: &[Override],
    recorder: &Recorder,
) -> ProvisionResult<()> {
    let steps = &cluster.profile.deploy;
    let names: BTreeSet<&str> = overrides.iter().map(|o| o.name.as_str()).collect();
    let applied: BTreeSet<&str> = steps
        .iter()
        .filter(|s| s.images.iter().any(|i| names.contains(i.as_str())))
        .map(|s| s.name.as_str())
        .collect();
    let checked = dependants(steps, &applied);
    let kube = pipeline.kube(&cluster.name, "load").await?;
    let tags: Vec<String> = overrides.iter().map(|o| o.tag.clone()).collect();
    recorder
        .step("load", "kind load docker-image", async {
            let fail = step_failure("load", "kind load docker-image");
            {
                let _tags = pipeline.tags.lock().await;
                let record = Record {
                    overrides: overrides.to_vec(),
                    steps: applied.iter().map(|s| s.to_string()).collect(),
                };
                write_record(&pipeline.overlay_path(&cluster.name), &record).map_err(&fail)?;
                for o in overrides {
                    pipeline
                        .docker
                        .tag(&o.image_id, &o.tag)
                        .await
                        .map_err(&fail)?;
                }
            }
            pipeline
                .kind
                .load(&cluster.name, &tags)
                .await
                .map_err(&fail)
        })
        .await?;
    let renames: Vec<(String, String)> = overrides
        .iter()
        .map(|o| (o.name.clone(), o.tag.clone()))
        .collect();
    let (kube, recorder, renames) = (&kube, recorder, &renames);
    deploy::in_order(steps, |step| {
        if applied.contains(step.name.as_str()) {
            Some(
                recorder
                    .step("deploy", &step.name, async move {
                        let fail = step_failure("deploy", &step.name);
                        let mut documents = deploy::documents(step).map_err(&fail)?;
                        for (_, body) in &mut documents {
                            image_ref::rewrite(body, renames);
                        }
                        let objects = kube.apply_documents(documents, true).await.map_err(&fail)?;
                        kube.wait_ready(&objects, step.timeout).await.map_err(&fail)
                    })
                    .boxed(),
            )
        } else if checked.contains(step.name.as_str()) {
            let name = format!("{} (ready check)", step.name);
            Some(
                async move {
                    recorder
                        .step("deploy", &name, async {
                            let fail = step_failure("deploy", &name);
                            let objects = deploy::objects(step).map_err(&fail)?;
                            kube.wait_ready(&objects, step.timeout).await.map_err(&fail)
                        })
                        .await
                }
                .boxed(),
            )
        } else {
            None
        }
    })
    .await
}

/// The steps that wait, directly or not, for one of `applied` and are not in it themselves.
fn dependants<'a>(steps: &'a [DeployStep], applied: &BTreeSet<&'a str>) -> BTreeSet<&'a str> {
    let mut reached: BTreeSet<&str> = applied.clone();
    loop {
        let before = reached.len();
        for step in steps {
            if step.after.iter().any(|a| reached.contains(a.as_str())) {
                reached.insert(&step.name);
            }
        }
        if reached.len() == before {
            break;
        }
    }
    reached.retain(|s| !applied.contains(s));
    reached
}

fn write_record(path: &Path, record: &Record) -> Result<(), ToolError> {
    let text = serde_json::to_string(record).unwrap_or_default();
    std::fs::write(path, text)
        .map_err(|e| ToolError::new(format!("writing {}: {e}", path.display())))
}

/// The cluster's record, if it was overlaid; one that cannot be read counts as none.
pub(super) fn read_record(path: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text)
        .inspect_err(|e| warn!(path = %path.display(), error = %e, "unreadable overlay record"))
        .ok()
}

impl Pipeline {
    /// Drops the cluster's record and removes from the host the tags no other record names.
    pub(super) async fn forget_overlay(&self, cluster: &str) {
        let _tags = self.tags.lock().await;
        let path = self.overlay_path(cluster);
        let Some(record) = read_record(&path) else {
            let _ = std::fs::remove_file(&path);
            return;
        };
        let _ = std::fs::remove_file(&path);
        let in_use = self.tags_in_use();
        for o in record.overrides.iter().filter(|o| !in_use.contains(&o.tag)) {
            if let Err(e) = self.docker.remove_tag(&o.tag).await {
                warn!(tag = %o.tag, error = %e, "cannot remove an overlay's tag");
            }
        }
    }

    /// The tags every overlay record still names.
    fn tags_in_use(&self) -> BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(&self.clusters_dir) else {
            return BTreeSet::new();
        };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "overlay"))
            .filter_map(|p| read_record(&p))
            .flat_map(|r| r.overrides.into_iter().map(|o| o.tag))
            .collect()
    }
}

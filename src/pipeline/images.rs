//! Phase 1: every image of a profile, built in parallel, once per change of inputs rather
//! than once per cluster: clusters of a profile share the result until a refresh.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::future::try_join_all;

use super::step_failure;
use crate::{
    config::Profile,
    pool::{ProvisionResult, Recorder},
    tools::docker::Docker,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub name: String,
    pub id: String,
}

type Slot = Arc<tokio::sync::Mutex<Option<Vec<BuiltImage>>>>;

#[derive(Default)]
pub(super) struct ImageCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl ImageCache {
    fn slot(&self, profile: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(profile.to_string()).or_default())
    }

    /// The profile's images; the first caller builds them while later ones wait for it.
    pub async fn get_or_build(
        &self,
        docker: &Docker,
        profile: &Profile,
        recorder: &Recorder,
    ) -> ProvisionResult<Vec<BuiltImage>> {
        let slot = self.slot(&profile.name);
        let mut built = slot.lock().await;
        if let Some(images) = built.as_ref() {
            return Ok(images.clone());
        }
        let images = try_join_all(profile.images.iter().map(|image| {
            recorder.step("build", &image.name, async {
                let id = docker
                    .build(image)
                    .await
                    .map_err(step_failure("build", &image.name))?;
                Ok(BuiltImage {
                    name: image.name.clone(),
                    id,
                })
            })
        }))
        .await?;
        *built = Some(images.clone());
        Ok(images)
    }

    pub fn invalidate(&self, profile: &str) {
        if let Ok(mut built) = self.slot(profile).try_lock() {
            *built = None;
        } else {
            // A build is running; the next one after it must rebuild.
            let slot = self.slot(profile);
            tokio::spawn(async move { *slot.lock().await = None });
        }
    }
}

/// What a cluster was built from: image names and IDs, in a stable order.
pub fn fingerprint(images: &[BuiltImage]) -> String {
    let mut parts: Vec<String> = images
        .iter()
        .map(|i| format!("{}@{}", i.name, i.id))
        .collect();
    parts.sort();
    parts.join(",")
}

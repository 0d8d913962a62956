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

#[derive(Default)]
pub(super) struct ImageCache {
    /// Per profile, held while its images build: concurrent clusters wait for one build.
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per profile, the images of its latest successful build.
    built: Mutex<HashMap<String, Vec<BuiltImage>>>,
}

impl ImageCache {
    fn lock_for(&self, profile: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(building.entry(profile.to_string()).or_default())
    }

    /// The images builds use now, if they were built.
    pub fn current(&self, profile: &str) -> Option<Vec<BuiltImage>> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.get(profile).cloned()
    }

    /// The profile's images; the first caller builds them while later ones wait for it.
    pub async fn get_or_build(
        &self,
        docker: &Docker,
        profile: &Profile,
        recorder: &Recorder,
    ) -> ProvisionResult<Vec<BuiltImage>> {
        let lock = self.lock_for(&profile.name);
        let _building = lock.lock().await;
        if let Some(images) = self.current(&profile.name) {
            return Ok(images);
        }
        self.build(docker, profile, recorder).await
    }

    /// Builds the profile's images again (docker's layer cache keeps unchanged ones cheap).
    pub async fn rebuild(
        &self,
        docker: &Docker,
        profile: &Profile,
        recorder: &Recorder,
    ) -> ProvisionResult<Vec<BuiltImage>> {
        let lock = self.lock_for(&profile.name);
        let _building = lock.lock().await;
        self.build(docker, profile, recorder).await
    }

    async fn build(
        &self,
        docker: &Docker,
        profile: &Profile,
        recorder: &Recorder,
    ) -> ProvisionResult<Vec<BuiltImage>> {
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
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.insert(profile.name.clone(), images.clone());
        Ok(images)
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

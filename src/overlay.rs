//! A caller's own images on a warm cluster ("Fresh code on a warm base"): what Acquire may ask
//! for ([`ImageOverride`]), what each one is once found on the daemon's Docker host
//! ([`Override`]), and the rules: only the profile's image names, each once, and a tag derived
//! from the content.
use serde::{Deserialize, Serialize};

use crate::{Error, Result, config::Profile};

/// One of the profile's images, to be replaced by a local image the caller built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOverride {
    /// The profile's image name, as in its configuration (`kubernaut/we:dev`).
    pub name: String,
    /// A tag or image ID on the daemon's Docker host (`we:pr-42`).
    pub reference: String,
}

/// An override found on the host: its image ID and the tag the cluster runs it under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub name: String,
    pub reference: String,
    pub image_id: String,
    pub tag: String,
}

impl Override {
    pub fn new(asked: &ImageOverride, image_id: &str) -> Self {
        Self {
            name: asked.name.clone(),
            reference: asked.reference.clone(),
            image_id: image_id.to_string(),
            tag: content_tag(&asked.name, image_id),
        }
    }
}

/// `kubernaut/we:dev` with `sha256:0123456789abcdef…` → `kubernaut/we:infrad-0123456789ab`.
/// The tag changes with the content, because loading new content under a tag a pod already
/// runs restarts nothing; and it is never `:latest` (which Kubernetes pulls) nor the profile's.
pub fn content_tag(name: &str, image_id: &str) -> String {
    let without_digest = name.split('@').next().unwrap_or(name);
    let repository = match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    };
    let hex: String = image_id
        .strip_prefix("sha256:")
        .unwrap_or(image_id)
        .chars()
        .take(12)
        .collect();
    format!("{repository}:infrad-{hex}")
}

/// Each override names one of the profile's images, and none twice.
pub fn check(profile: &Profile, asked: &[ImageOverride]) -> Result<()> {
    let names: Vec<&str> = profile.images.iter().map(|i| i.name.as_str()).collect();
    for (i, image) in asked.iter().enumerate() {
        if !names.contains(&image.name.as_str()) {
            let known = if names.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has {}", names.join(", "))
            };
            return Err(Error::InvalidArgument(format!(
                "images: {:?} is not an image of profile {:?} ({known})",
                image.name, profile.name
            )));
        }
        if asked[..i].iter().any(|earlier| earlier.name == image.name) {
            return Err(Error::InvalidArgument(format!(
                "images: {:?} is given twice",
                image.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_content_and_keeps_the_repository() {
        let id = "sha256:0123456789abcdef0123456789abcdef";
        assert_eq!(
            content_tag("kubernaut/we:dev", id),
            "kubernaut/we:infrad-0123456789ab"
        );
        assert_eq!(
            content_tag("localhost:5000/we", id),
            "localhost:5000/we:infrad-0123456789ab"
        );
        assert_ne!(
            content_tag("we:dev", id),
            content_tag("we:dev", "sha256:ffffffffffff")
        );
    }
}

//! Which of a profile's own images a deploy step's manifests use: every string value naming one
//! of the images (spelled as the runtime resolves it), wherever it appears (containers, init containers, env, fields of a
//! custom resource). A step that uses none of them (Tekton, a database from a registry) need
//! not wait for the images to be loaded.
use std::{collections::BTreeSet, path::Path};

use serde_json::Value;

use crate::image_ref;

/// The names out of `images` that the YAML documents in `text` use, in `images`' order.
pub(super) fn in_manifest(text: &str, images: &[String]) -> Result<Vec<String>, String> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut strings = BTreeSet::new();
    for document in &documents {
        image_ref::strings(document, &mut strings);
    }
    let used: BTreeSet<String> = strings.into_iter().map(image_ref::normalized).collect();
    Ok(images
        .iter()
        .filter(|name| used.contains(&image_ref::normalized(name)))
        .cloned()
        .collect())
}

/// The same over several files, read from disk.
pub(super) fn in_files(
    files: &[impl AsRef<Path>],
    images: &[String],
) -> Result<Vec<String>, String> {
    let mut used = BTreeSet::new();
    for file in files {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let found = in_manifest(&text, images)
            .map_err(|e| format!("{} is not valid YAML: {e}", file.display()))?;
        used.extend(found);
    }
    Ok(images
        .iter()
        .filter(|n| used.contains(*n))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Vec<String> {
        ["controller:dev", "datastorage:dev", "unused:dev"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn finds_image_names_anywhere_in_any_document() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  template:\n    spec:\n      initContainers:\n      - {name: init, image: busybox:1.36.1}\n      containers:\n      - name: c\n        image: registry.example/other:1\n        env:\n        - {name: STORAGE_IMAGE, value: \"datastorage:dev\"}\n---\napiVersion: example.dev/v1\nkind: Job\nmetadata: {name: b}\nspec:\n  steps: [{image: controller:dev}]\n";
        assert_eq!(
            in_manifest(text, &images()).unwrap(),
            ["controller:dev", "datastorage:dev"]
        );
    }

    #[test]
    fn a_registry_image_or_a_longer_string_is_not_a_profile_image() {
        let text = "kind: Deployment\nmetadata:\n  name: tekton\n  annotations: {note: \"controller:dev is built elsewhere\"}\nspec:\n  image: gcr.io/tekton/controller:v1\n";
        assert!(in_manifest(text, &images()).unwrap().is_empty());
    }

    #[test]
    fn spellings_of_the_same_image_match() {
        let images = ["web:dev", "tool"].map(String::from).to_vec();
        let text = "a: docker.io/library/web:dev\nb: library/tool:latest\n";
        assert_eq!(in_manifest(text, &images).unwrap(), ["web:dev", "tool"]);
        assert!(
            in_manifest("a: web:prod\nb: registry.example/tool\n", &images)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_yaml_is_an_error() {
        assert!(in_manifest("a: [unclosed", &images()).is_err());
    }
}

//! Profile recipes for the fake world: the files (Dockerfiles, manifests) and the TOML that
//! names them, built up step by step instead of written inline in every test.
use std::fmt::Write as _;

use crate::{fake_apiserver::READY_AFTER, world::FakeWorld};

/// One profile's images, bootstrap and deploy steps, plus any other TOML (pool, daemon).
#[derive(Debug, Clone)]
pub struct Recipe {
    profile: String,
    /// Image name, build context folder, and Dockerfile.
    images: Vec<(String, String, String)>,
    /// File name and content of each bootstrap manifest.
    bootstrap: Vec<(String, String)>,
    steps: Vec<Step>,
    toml: String,
}

#[derive(Debug, Clone)]
struct Step {
    name: String,
    after: Vec<String>,
    manifest: String,
    timeout: Option<String>,
}

impl Recipe {
    pub fn new(profile: &str) -> Self {
        Self {
            profile: profile.into(),
            images: Vec::new(),
            bootstrap: Vec::new(),
            steps: Vec::new(),
            toml: String::new(),
        }
    }

    /// An image built from `context/Dockerfile`: busybox labelled with the image's name, so
    /// that images of different names never share an ID.
    pub fn image(self, name: &str, context: &str) -> Self {
        let dockerfile = format!("FROM busybox:1.36.1\nLABEL infrad.test=\"{name}\"\n");
        self.image_from(name, context, &dockerfile)
    }

    pub fn image_from(mut self, name: &str, context: &str, dockerfile: &str) -> Self {
        self.images
            .push((name.into(), context.into(), dockerfile.into()));
        self
    }

    /// A bootstrap manifest, written as `file`.
    pub fn bootstrap(mut self, file: &str, manifest: &str) -> Self {
        self.bootstrap.push((file.into(), manifest.into()));
        self
    }

    /// A deploy step whose manifests (written as `<name>.yaml`) start once `after` are ready.
    pub fn step(mut self, name: &str, after: &[&str], manifest: &str) -> Self {
        self.steps.push(Step {
            name: name.into(),
            after: after.iter().map(|a| a.to_string()).collect(),
            manifest: manifest.into(),
            timeout: None,
        });
        self
    }

    /// The readiness timeout of the step added last.
    pub fn timeout(mut self, timeout: &str) -> Self {
        if let Some(step) = self.steps.last_mut() {
            step.timeout = Some(timeout.into());
        }
        self
    }

    /// More TOML, as written (`[daemon]`, `[profiles.P.pool]`, `[profiles.P.cluster]` …).
    pub fn toml(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        if !toml.ends_with('\n') {
            self.toml.push('\n');
        }
        self
    }

    /// Writes the recipe's files into `world` and returns its configuration text.
    pub fn write(&self, world: &FakeWorld) -> String {
        let p = &self.profile;
        let mut text = self.toml.clone();
        for (name, context, dockerfile) in &self.images {
            world.write(&format!("{context}/Dockerfile"), dockerfile);
            let _ = write!(
                text,
                "[[profiles.{p}.images]]\nname = \"{name}\"\ncontext = \"{context}\"\n"
            );
        }
        if !self.bootstrap.is_empty() {
            let files: Vec<String> = self
                .bootstrap
                .iter()
                .map(|(file, manifest)| {
                    world.write(file, manifest);
                    format!("\"{file}\"")
                })
                .collect();
            let _ = write!(
                text,
                "[profiles.{p}.bootstrap]\nmanifests = [{}]\n",
                files.join(", ")
            );
        }
        for step in &self.steps {
            world.write(&format!("{}.yaml", step.name), &step.manifest);
            let after: Vec<String> = step.after.iter().map(|a| format!("\"{a}\"")).collect();
            let _ = write!(
                text,
                "[[profiles.{p}.deploy]]\nname = \"{}\"\nmanifests = [\"{}.yaml\"]\nafter = [{}]\n",
                step.name,
                step.name,
                after.join(", ")
            );
            if let Some(timeout) = &step.timeout {
                let _ = writeln!(text, "timeout = \"{timeout}\"");
            }
        }
        text
    }
}

/// `metadata:` with a namespace and, when given, the fake API server's ready delay (ms,
/// `never`, `fail` …).
fn metadata(name: &str, namespace: &str, ready_after: Option<&str>) -> String {
    let mut meta = format!("metadata:\n  name: {name}\n  namespace: {namespace}\n");
    if let Some(ready) = ready_after {
        let _ = write!(meta, "  annotations:\n    {READY_AFTER}: \"{ready}\"\n");
    }
    meta
}

fn pod_template(name: &str, image: &str) -> String {
    format!(
        "  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      \
         labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: {name}\n        \
         image: {image}\n"
    )
}

/// A one-replica Deployment running `image`.
pub fn deployment(name: &str, namespace: &str, image: &str, ready_after: Option<&str>) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\n{}spec:\n  replicas: 1\n{}",
        metadata(name, namespace, ready_after),
        pod_template(name, image)
    )
}

/// A one-replica StatefulSet running `image`.
pub fn stateful_set(name: &str, namespace: &str, image: &str, ready_after: Option<&str>) -> String {
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\n{}spec:\n  replicas: 1\n  serviceName: {name}\n{}",
        metadata(name, namespace, ready_after),
        pod_template(name, image)
    )
}

/// A Job running `image` once.
pub fn job(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\n{}spec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers:\n      - name: {name}\n        image: {image}\n",
        metadata(name, namespace, None)
    )
}

pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// A namespaced CRD `<plural>.<group>` of kind `kind`, version v1, with any fields.
pub fn crd(plural: &str, group: &str, kind: &str) -> String {
    let singular = kind.to_lowercase();
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
         name: {plural}.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names:\n    \
         plural: {plural}\n    singular: {singular}\n    kind: {kind}\n  versions:\n  - name: v1\n    \
         served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        \
         x-kubernetes-preserve-unknown-fields: true\n"
    )
}

/// Several manifests in one file.
pub fn documents(manifests: &[&str]) -> String {
    manifests.join("---\n")
}

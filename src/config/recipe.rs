//! A profile's recipe: images, cluster, bootstrap manifests and the deploy step graph.
use std::{
    collections::{BTreeMap, HashSet},
    ops::Range,
    path::{Path, PathBuf},
    time::Duration,
};

use toml::Spanned;

use super::{
    Bootstrap, ClusterRecipe, DEFAULT_NODE_IMAGE, DeployStep, ImageSpec,
    error::Unlocated,
    raw::{Dur, RawBootstrap, RawCluster, RawImage, RawStep, Text},
};

pub(super) struct Recipe {
    pub images: Vec<ImageSpec>,
    pub cluster: ClusterRecipe,
    pub bootstrap: Bootstrap,
    pub deploy: Vec<DeployStep>,
}

const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn validate(
    profile: &str,
    span: &Range<usize>,
    base: &Path,
    images: Vec<RawImage>,
    cluster: RawCluster,
    bootstrap: RawBootstrap,
    deploy: Vec<Spanned<RawStep>>,
) -> Result<Recipe, Unlocated> {
    let at = |section: &str| format!("profiles.{profile}.{section}");
    let duration = |d: Dur, default: Duration| d.map_or(default, |d| d.into_inner().0);

    let mut names = HashSet::new();
    let images = images
        .into_iter()
        .map(|image| {
            let key = at("images.name");
            if image.name.get_ref().is_empty() || !names.insert(image.name.get_ref().clone()) {
                return Err(Unlocated::new(
                    image.name.span(),
                    key,
                    format!(
                        "image names must be non-empty and unique; {:?} is not",
                        image.name.get_ref()
                    ),
                ));
            }
            let context = existing(base, &image.context, &at("images.context"), true)?;
            let dockerfile = match &image.dockerfile {
                Some(file) => existing(&context, file, &at("images.dockerfile"), false)?,
                None => context.join("Dockerfile"),
            };
            Ok(ImageSpec {
                name: image.name.into_inner(),
                context,
                dockerfile,
                build_args: image.build_args,
                target: image.target.filter(|t| !t.is_empty()),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let node_image = match cluster.node_image {
        None => DEFAULT_NODE_IMAGE.to_string(),
        Some(image) if pinned(image.get_ref()) => image.into_inner(),
        Some(image) => {
            return Err(Unlocated::new(
                image.span(),
                at("cluster.node_image"),
                format!(
                    "{:?} is not pinned by digest; write it as NAME:TAG@sha256:<64 hex digits>, e.g. {DEFAULT_NODE_IMAGE}",
                    image.get_ref()
                ),
            ));
        }
    };
    let cluster = ClusterRecipe {
        config: cluster
            .config
            .map(|c| existing(base, &c, &at("cluster.config"), false))
            .transpose()?,
        node_image,
        create_wait: duration(cluster.create_wait, Duration::from_secs(60)),
        ready_timeout: duration(cluster.ready_timeout, Duration::from_secs(120)),
    };
    let bootstrap = Bootstrap {
        manifests: manifests(base, bootstrap.manifests, &at("bootstrap.manifests"))?,
        timeout: duration(bootstrap.timeout, Duration::from_secs(120)),
    };
    let image_names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
    let deploy = steps(profile, span, base, deploy, &image_names)?;
    Ok(Recipe {
        images,
        cluster,
        bootstrap,
        deploy,
    })
}

fn steps(
    profile: &str,
    span: &Range<usize>,
    base: &Path,
    raw: Vec<Spanned<RawStep>>,
    images: &[String],
) -> Result<Vec<DeployStep>, Unlocated> {
    let key = |field: &str| format!("profiles.{profile}.deploy.{field}");
    let mut spans: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for step in &raw {
        let name = step.get_ref().name.get_ref();
        if name.is_empty()
            || spans
                .insert(name.clone(), step.get_ref().name.span())
                .is_some()
        {
            return Err(Unlocated::new(
                step.get_ref().name.span(),
                key("name"),
                format!("deploy step names must be non-empty and unique; {name:?} is not"),
            ));
        }
    }
    let mut steps = Vec::with_capacity(raw.len());
    for step in raw {
        let step = step.into_inner();
        for after in &step.after {
            if !spans.contains_key(after.get_ref()) {
                return Err(Unlocated::new(
                    after.span(),
                    key("after"),
                    format!(
                        "step {:?} waits for {:?}, which is not a deploy step of this profile",
                        step.name.get_ref(),
                        after.get_ref()
                    ),
                ));
            }
        }
        let manifest_span = step.manifests.first().map_or(span.clone(), |m| m.span());
        let manifests = manifests(base, step.manifests, &key("manifests"))?;
        let images = super::images_used::in_files(&manifests, images)
            .map_err(|e| Unlocated::new(manifest_span, key("manifests"), e))?;
        steps.push(DeployStep {
            manifests,
            images,
            after: step.after.into_iter().map(Spanned::into_inner).collect(),
            timeout: step
                .timeout
                .map_or(DEFAULT_STEP_TIMEOUT, |d| d.into_inner().0),
            name: step.name.into_inner(),
        });
    }
    if let Some(cycle) = find_cycle(&steps) {
        let first = spans
            .get(&cycle[0])
            .cloned()
            .unwrap_or_else(|| span.clone());
        return Err(Unlocated::new(
            first,
            key("after"),
            format!(
                "deploy steps wait for each other in a cycle: {}",
                cycle.join(" → ")
            ),
        ));
    }
    Ok(steps)
}

/// A cycle in the `after` graph, as the step names along it (first repeated at the end).
fn find_cycle(steps: &[DeployStep]) -> Option<Vec<String>> {
    fn visit<'a>(
        name: &'a str,
        steps: &'a [DeployStep],
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == name) {
            let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if !done.insert(name) {
            return None;
        }
        path.push(name);
        let step = steps.iter().find(|s| s.name == name)?;
        for after in &step.after {
            if let Some(cycle) = visit(after, steps, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = HashSet::new();
    steps
        .iter()
        .find_map(|s| visit(&s.name, steps, &mut Vec::new(), &mut done))
}

fn manifests(base: &Path, files: Vec<Text>, key: &str) -> Result<Vec<PathBuf>, Unlocated> {
    files
        .iter()
        .map(|file| existing(base, file, key, false))
        .collect()
}

/// `path` resolved against `base`, which must exist as a directory or a file.
fn existing(base: &Path, path: &Text, key: &str, dir: bool) -> Result<PathBuf, Unlocated> {
    let resolved = base.join(path.get_ref());
    let ok = if dir {
        resolved.is_dir()
    } else {
        resolved.is_file()
    };
    if ok {
        Ok(resolved)
    } else {
        let what = if dir { "directory" } else { "file" };
        Err(Unlocated::new(
            path.span(),
            key,
            format!(
                "no such {what}: {} (paths are relative to the config file)",
                resolved.display()
            ),
        ))
    }
}

fn pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty() && digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

//! The file as written (serde; unknown keys refused) and its validation into [`Config`].
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;
use toml::Spanned;

use super::{
    Config, DaemonConfig, Profile, Recycle, Tools, artifacts, duration::HumanDuration,
    error::Unlocated, pool, recipe,
};

/// Longest profile name: `infrad-<profile>-<id>-control-plane` must stay a valid host name.
const MAX_PROFILE_NAME: usize = 32;

pub(super) type Text = Spanned<String>;
pub(super) type Dur = Option<Spanned<HumanDuration>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    tools: RawTools,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<RawProfile>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    max_concurrent_builds: Option<Spanned<usize>>,
    refresh_interval: Dur,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTools {
    docker: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    #[serde(default)]
    pub pool: RawPool,
    #[serde(default)]
    pub images: Vec<RawImage>,
    #[serde(default)]
    pub cluster: RawCluster,
    #[serde(default)]
    pub bootstrap: RawBootstrap,
    #[serde(default)]
    pub deploy: Vec<Spanned<RawStep>>,
    pub artifacts: Option<RawArtifacts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArtifacts {
    pub node_path: Text,
    pub max_log_bytes: Option<Spanned<u64>>,
    pub collect_timeout: Dur,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub warm: Option<Spanned<u32>>,
    pub max: Option<Spanned<u32>>,
    pub recycle: Option<Recycle>,
    pub lease_ttl: Dur,
    pub max_lease_ttl: Dur,
    pub acquire_wait: Dur,
    pub degraded_after: Option<Spanned<u32>>,
    pub retry_backoff: Dur,
    pub retry_backoff_max: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    pub name: Text,
    pub context: Text,
    pub dockerfile: Option<Text>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub config: Option<Text>,
    pub node_image: Option<Text>,
    pub create_wait: Dur,
    pub ready_timeout: Dur,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBootstrap {
    #[serde(default)]
    pub manifests: Vec<Text>,
    pub timeout: Dur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub name: Text,
    pub manifests: Vec<Text>,
    #[serde(default)]
    pub after: Vec<Text>,
    pub timeout: Dur,
}

pub(super) fn parse(text: &str, base: &Path) -> Result<Config, Unlocated> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| Unlocated {
        span: e.span(),
        key: String::new(),
        message: e.message().trim().to_string(),
    })?;
    if raw.profiles.is_empty() {
        return Err(Unlocated {
            span: None,
            key: "profiles".into(),
            message: "no profile is defined; add a [profiles.NAME] table".into(),
        });
    }
    let max_concurrent_builds = match raw.daemon.max_concurrent_builds {
        Some(n) if *n.get_ref() == 0 => {
            return Err(Unlocated::new(
                n.span(),
                "daemon.max_concurrent_builds",
                "must be at least 1",
            ));
        }
        Some(n) => n.into_inner(),
        None => 2,
    };
    let refresh_interval = raw
        .daemon
        .refresh_interval
        .map(|d| d.into_inner().0)
        .filter(|d| !d.is_zero());
    let profiles = raw
        .profiles
        .into_iter()
        .map(|(name, profile)| {
            let span = profile.span();
            let profile = validate_profile(&name, span, profile.into_inner(), base)?;
            Ok((name, Arc::new(profile)))
        })
        .collect::<Result<_, Unlocated>>()?;
    let tool = |path: Option<String>, default: &str| {
        PathBuf::from(
            path.filter(|p| !p.is_empty())
                .unwrap_or_else(|| default.into()),
        )
    };
    Ok(Config {
        daemon: DaemonConfig {
            max_concurrent_builds,
            refresh_interval,
        },
        tools: Tools {
            docker: tool(raw.tools.docker, "docker"),
            kind: tool(raw.tools.kind, "kind"),
        },
        profiles,
    })
}

fn validate_profile(
    name: &str,
    span: std::ops::Range<usize>,
    raw: RawProfile,
    base: &Path,
) -> Result<Profile, Unlocated> {
    let valid_name = !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid_name {
        return Err(Unlocated::new(
            span,
            format!("profiles.{name}"),
            format!(
                "profile names use a-z, 0-9 and '-' (not at either end), at most {MAX_PROFILE_NAME} characters: they become part of kind cluster names"
            ),
        ));
    }
    let pool = pool::validate(name, &span, raw.pool)?;
    let recipe = recipe::validate(
        name,
        &span,
        base,
        raw.images,
        raw.cluster,
        raw.bootstrap,
        raw.deploy,
    )?;
    let artifacts = artifacts::validate(name, raw.artifacts, recipe.cluster.config.as_deref())?;
    Ok(Profile {
        name: name.to_string(),
        pool,
        images: recipe.images,
        cluster: recipe.cluster,
        bootstrap: recipe.bootstrap,
        deploy: recipe.deploy,
        artifacts,
    })
}

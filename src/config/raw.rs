//! The file as written (serde, unknown keys refused) and its validation into [`Config`].
use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::Deserialize;
use toml::Spanned;

use super::{
    Config, DaemonConfig, PoolPolicy, Profile, Recycle, duration::HumanDuration, error::Unlocated,
};

/// Longest profile name: `infrad-<profile>-<id>-control-plane` must stay a valid host name.
const MAX_PROFILE_NAME: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<RawProfile>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    max_concurrent_builds: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    pool: RawPool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPool {
    warm: Option<Spanned<u32>>,
    max: Option<Spanned<u32>>,
    recycle: Option<Recycle>,
    lease_ttl: Option<Spanned<HumanDuration>>,
    max_lease_ttl: Option<Spanned<HumanDuration>>,
    acquire_wait: Option<Spanned<HumanDuration>>,
    degraded_after: Option<Spanned<u32>>,
    retry_backoff: Option<Spanned<HumanDuration>>,
    retry_backoff_max: Option<Spanned<HumanDuration>>,
}

pub(crate) fn parse(text: &str) -> Result<Config, Unlocated> {
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
    let profiles = raw
        .profiles
        .into_iter()
        .map(|(name, profile)| {
            let span = profile.span();
            let profile = validate_profile(&name, span.clone(), profile.into_inner())?;
            Ok((name, Arc::new(profile)))
        })
        .collect::<Result<_, Unlocated>>()?;
    Ok(Config {
        daemon: DaemonConfig {
            max_concurrent_builds,
        },
        profiles,
    })
}

fn validate_profile(
    name: &str,
    span: std::ops::Range<usize>,
    raw: RawProfile,
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
    let key = |field: &str| format!("profiles.{name}.pool.{field}");
    let pool = raw.pool;
    let value = |v: Option<Spanned<u32>>, default: u32| {
        v.map_or((default, span.clone()), |v| (*v.get_ref(), v.span()))
    };
    let duration = |v: Option<Spanned<HumanDuration>>, default: Duration| {
        v.map_or((default, span.clone()), |v| (v.get_ref().0, v.span()))
    };

    let (max, max_span) = value(pool.max, 2);
    let (warm, warm_span) = value(pool.warm, 1.min(max));
    let (lease_ttl, ttl_span) = duration(pool.lease_ttl, Duration::from_secs(30 * 60));
    let (max_lease_ttl, max_ttl_span) = duration(
        pool.max_lease_ttl,
        Duration::from_secs(4 * 3600).max(lease_ttl),
    );
    let (acquire_wait, _) = duration(pool.acquire_wait, Duration::from_secs(10 * 60));
    let (degraded_after, degraded_span) = value(pool.degraded_after, 3);
    let (retry_backoff, backoff_span) = duration(pool.retry_backoff, Duration::from_secs(10));
    let (retry_backoff_max, _) = duration(
        pool.retry_backoff_max,
        Duration::from_secs(300).max(retry_backoff),
    );

    let checks = [
        (max == 0, max_span, "max", "must be at least 1".to_string()),
        (
            warm > max,
            warm_span,
            "warm",
            format!("{warm} warm clusters cannot fit in a pool of max {max}"),
        ),
        (
            lease_ttl.is_zero(),
            ttl_span.clone(),
            "lease_ttl",
            "must be longer than 0s".into(),
        ),
        (
            max_lease_ttl < lease_ttl,
            max_ttl_span,
            "max_lease_ttl",
            format!(
                "must be at least lease_ttl ({})",
                humantime::format_duration(lease_ttl)
            ),
        ),
        (
            degraded_after == 0,
            degraded_span,
            "degraded_after",
            "must be at least 1".into(),
        ),
        (
            retry_backoff.is_zero(),
            backoff_span.clone(),
            "retry_backoff",
            "must be longer than 0s".into(),
        ),
        (
            retry_backoff_max < retry_backoff,
            backoff_span,
            "retry_backoff_max",
            "must be at least retry_backoff".into(),
        ),
    ];
    if let Some((_, span, field, message)) = checks.into_iter().find(|c| c.0) {
        return Err(Unlocated::new(span, key(field), message));
    }
    Ok(Profile {
        name: name.to_string(),
        pool: PoolPolicy {
            warm,
            max,
            recycle: pool.recycle.unwrap_or(Recycle::Recreate),
            lease_ttl,
            max_lease_ttl,
            acquire_wait,
            degraded_after,
            retry_backoff,
            retry_backoff_max,
        },
    })
}

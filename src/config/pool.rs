//! `[profiles.NAME.pool]`: defaults and bounds.
use std::{ops::Range, time::Duration};

use toml::Spanned;

use super::{
    PoolPolicy, Recycle,
    duration::HumanDuration,
    error::Unlocated,
    raw::{Dur, RawPool},
};

pub(super) fn validate(
    name: &str,
    span: &Range<usize>,
    pool: RawPool,
) -> Result<PoolPolicy, Unlocated> {
    let key = |field: &str| format!("profiles.{name}.pool.{field}");
    let value = |v: Option<Spanned<u32>>, default: u32| {
        v.map_or((default, span.clone()), |v| (*v.get_ref(), v.span()))
    };
    let duration = |v: Dur, default: Duration| {
        v.map_or((default, span.clone()), |v: Spanned<HumanDuration>| {
            (v.get_ref().0, v.span())
        })
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
            ttl_span,
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
    Ok(PoolPolicy {
        warm,
        max,
        recycle: pool.recycle.unwrap_or(Recycle::Recreate),
        lease_ttl,
        max_lease_ttl,
        acquire_wait,
        degraded_after,
        retry_backoff,
        retry_backoff_max,
    })
}

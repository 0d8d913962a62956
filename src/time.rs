//! Wall-clock time as the store keeps it (milliseconds since the Unix epoch).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: how the store keeps time (portable to PostgreSQL BIGINT).
pub type Millis = i64;

pub fn now() -> Millis {
    to_millis(SystemTime::now())
}

pub fn to_millis(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(Millis::MAX))
}

pub fn to_system_time(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs())
}

pub fn millis(d: Duration) -> Millis {
    d.as_millis().try_into().unwrap_or(Millis::MAX)
}

pub fn duration_between(start: Millis, end: Millis) -> Duration {
    Duration::from_millis((end - start).max(0).unsigned_abs())
}

/// `2026-11-25T18:00:00Z`, for messages people read.
pub fn rfc3339(ms: Millis) -> String {
    humantime::format_rfc3339_seconds(to_system_time(ms)).to_string()
}

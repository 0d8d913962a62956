//! Checks on what callers send, before the domain sees it. None of them touches state.
use std::time::Duration;

use infrad_client::proto;
use tonic::{Request, Status};

use crate::{leases::Ask, overlay::ImageOverride};

/// Longest holder or request id accepted, in bytes.
const MAX_TEXT: usize = 256;

pub(super) fn acquire(request: Request<proto::AcquireRequest>) -> Result<Ask, Status> {
    let peer = request.remote_addr();
    let request = request.into_inner();
    if request.profile.is_empty() {
        return Err(Status::invalid_argument("profile is required"));
    }
    let holder = if request.holder.is_empty() {
        // Anonymous callers are at least told apart by where they called from.
        peer.map_or_else(|| "unknown".to_string(), |addr| format!("anonymous@{addr}"))
    } else {
        text("holder", request.holder)?
    };
    let request_id = if request.request_id.is_empty() {
        None
    } else {
        Some(text("request_id", request.request_id)?)
    };
    let wait = match request.wait {
        None => None,
        Some(wait) => Some(
            Duration::try_from(wait)
                .map_err(|_| Status::invalid_argument("wait must not be negative"))?,
        ),
    };
    Ok(Ask {
        profile: request.profile,
        holder,
        ttl: ttl(request.ttl)?,
        wait,
        request_id,
        images: images(request.images)?,
    })
}

/// Most image overrides one Acquire may name (a profile has a handful of images).
const MAX_IMAGES: usize = 64;

/// Overrides as sent: both fields given, within limits. Whether the names are the profile's
/// is the domain's to say.
fn images(images: Vec<proto::ImageOverride>) -> Result<Vec<ImageOverride>, Status> {
    if images.len() > MAX_IMAGES {
        return Err(Status::invalid_argument(format!(
            "images: {} given; at most {MAX_IMAGES} are allowed",
            images.len()
        )));
    }
    images
        .into_iter()
        .enumerate()
        .map(|(i, image)| {
            let field = |name: &str| format!("images[{i}].{name}");
            if image.name.is_empty() || image.reference.is_empty() {
                return Err(Status::invalid_argument(format!(
                    "{} and {} are required",
                    field("name"),
                    field("reference")
                )));
            }
            Ok(ImageOverride {
                name: text(&field("name"), image.name)?,
                reference: text(&field("reference"), image.reference)?,
            })
        })
        .collect()
}

/// Most deploy steps one Release may flush.
const MAX_FLUSH: usize = 64;

/// What Release asks to collect: `None` without collect; flush needs collect. Whether the
/// steps are the profile's is the domain's to say.
pub(super) fn collect(collect: bool, flush: Vec<String>) -> Result<Option<Vec<String>>, Status> {
    if !collect {
        if !flush.is_empty() {
            return Err(Status::invalid_argument(
                "flush needs collect: set collect to true to flush steps and collect artifacts",
            ));
        }
        return Ok(None);
    }
    if flush.len() > MAX_FLUSH {
        return Err(Status::invalid_argument(format!(
            "flush: {} steps given; at most {MAX_FLUSH} are allowed",
            flush.len()
        )));
    }
    flush
        .into_iter()
        .enumerate()
        .map(|(i, step)| text(&format!("flush[{i}]"), step))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// A ttl as the domain checks it: unset → `None`; zero or negative → zero, which the domain
/// refuses with the profile's maximum in the message.
pub(super) fn ttl(ttl: Option<prost_types::Duration>) -> Result<Option<Duration>, Status> {
    Ok(ttl.map(|ttl| Duration::try_from(ttl).unwrap_or(Duration::ZERO)))
}

pub(super) fn lease_id(id: &str) -> Result<String, Status> {
    uuid::Uuid::parse_str(id)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| {
            Status::invalid_argument(format!(
                "malformed lease_id {:?}: expected a UUID",
                truncated(id)
            ))
        })
}

fn text(field: &str, value: String) -> Result<String, Status> {
    if value.len() > MAX_TEXT {
        return Err(Status::invalid_argument(format!(
            "{field} is {} bytes long; at most {MAX_TEXT} are allowed",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Status::invalid_argument(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value)
}

/// Echoes at most a little of a bad value back.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn acquire_request(profile: &str, holder: &str) -> Request<proto::AcquireRequest> {
        Request::new(proto::AcquireRequest {
            profile: profile.into(),
            holder: holder.into(),
            ..Default::default()
        })
    }

    #[test]
    fn holder_limits() {
        assert!(acquire(acquire_request("p", &"h".repeat(256))).is_ok());
        let long = acquire(acquire_request("p", &"h".repeat(257))).unwrap_err();
        assert_eq!(long.code(), Code::InvalidArgument);
        assert!(long.message().contains("257 bytes"), "{}", long.message());
        let control = acquire(acquire_request("p", "job\n42")).unwrap_err();
        assert_eq!(control.code(), Code::InvalidArgument);
        assert!(control.message().contains("control characters"));
        let anonymous = acquire(acquire_request("p", "")).unwrap();
        assert_eq!(anonymous.holder, "unknown");
    }

    #[test]
    fn durations() {
        let negative = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert_eq!(ttl(Some(negative)).unwrap(), Some(Duration::ZERO));
        assert_eq!(ttl(None).unwrap(), None);
        let mut request = acquire_request("p", "h");
        request.get_mut().wait = Some(negative);
        assert_eq!(acquire(request).unwrap_err().code(), Code::InvalidArgument);
    }

    #[test]
    fn flush_needs_collect() {
        assert_eq!(collect(false, vec![]).unwrap(), None);
        let alone = collect(false, vec!["app".into()]).unwrap_err();
        assert_eq!(alone.code(), Code::InvalidArgument);
        assert!(alone.message().contains("flush needs collect"));
        assert_eq!(
            collect(true, vec!["app".into()]).unwrap(),
            Some(vec!["app".to_string()])
        );
        let many = collect(true, vec!["s".into(); 65]).unwrap_err();
        assert!(many.message().contains("65 steps"), "{}", many.message());
    }

    #[test]
    fn lease_ids_are_uuids() {
        let id = "0b9a52cd-63f5-4a4e-8a8f-4b3f4a4e8a8f";
        assert_eq!(lease_id(id).unwrap(), id);
        let bad = lease_id("not-a-uuid").unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().contains("malformed lease_id"));
    }
}

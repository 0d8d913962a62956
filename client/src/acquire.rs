use std::time::Duration;

use crate::proto;

/// What to ask of Acquire. Unset values take the profile's defaults on the daemon.
#[derive(Clone, Debug, Default)]
pub struct Acquire {
    profile: String,
    holder: String,
    ttl: Option<Duration>,
    wait: Option<Duration>,
    request_id: String,
    images: Vec<proto::ImageOverride>,
}

impl Acquire {
    /// Acquire on `profile`, held by [`default_holder`](crate::default_holder) unless
    /// [`holder`](Self::holder) says otherwise.
    pub fn new(profile: impl Into<String>) -> Self {
        Self {
            profile: profile.into(),
            holder: crate::default_holder(),
            ..Self::default()
        }
    }

    /// Who holds the lease, shown in Status (a CI job id, `user@host:pid`).
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = holder.into();
        self
    }

    /// How long the lease lives unless renewed.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How long to wait for a ready cluster; zero answers at once.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Makes the call idempotent: a retry with the same id and holder returns the same lease.
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = id.into();
        self
    }

    /// Runs the local image `reference` (a tag or an image ID on the daemon's Docker host) in
    /// place of the profile's image `name`: the daemon loads it into the cluster and applies
    /// again, and waits for, every deploy step that uses `name` before it answers.
    pub fn image(mut self, name: impl Into<String>, reference: impl Into<String>) -> Self {
        self.images.push(proto::ImageOverride {
            name: name.into(),
            reference: reference.into(),
        });
        self
    }

    pub(crate) fn requested_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    pub(crate) fn into_request(self) -> tonic::Request<proto::AcquireRequest> {
        let mut request = tonic::Request::new(proto::AcquireRequest {
            profile: self.profile,
            holder: self.holder,
            ttl: self.ttl.map(to_proto_duration),
            wait: self.wait.map(to_proto_duration),
            request_id: self.request_id,
            images: self.images,
        });
        // Leave the daemon its full wait, plus slack for the answer to travel back.
        if let Some(wait) = self.wait {
            request.set_timeout(wait + Duration::from_secs(30));
        }
        request
    }
}

pub(crate) fn to_proto_duration(d: Duration) -> prost_types::Duration {
    // Saturates rather than failing: no lease lives for 292 billion years.
    prost_types::Duration::try_from(d).unwrap_or(prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    })
}

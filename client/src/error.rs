use tonic::Code;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to infrad, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to infrad at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The lease expired or was reclaimed; its cluster is no longer yours.
    #[error("{0}")]
    LeaseLost(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// No cluster became ready within the wait.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The daemon refused the request; `code` says why in gRPC terms.
    #[error("rejected ({code:?}): {message}")]
    Rejected { code: Code, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A local file could not be written (the lease's kubeconfig).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The gRPC code behind this error, if the daemon answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::LeaseLost(_) => Some(Code::FailedPrecondition),
            Error::NotFound(_) => Some(Code::NotFound),
            Error::TimedOut(_) => Some(Code::ResourceExhausted),
            Error::Rejected { code, .. } => Some(*code),
            Error::Connect { .. } | Error::Protocol(_) | Error::Io { .. } => None,
        }
    }
}

const LEASE_LOST: &str = "lease lost";

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            // The daemon's lease-lost messages start so (documented); its other
            // FAILED_PRECONDITIONs (a missing image, images that did not come up) are refusals.
            Code::FailedPrecondition if message.starts_with(LEASE_LOST) => {
                Error::LeaseLost(message)
            }
            Code::NotFound => Error::NotFound(message),
            Code::ResourceExhausted => Error::TimedOut(message),
            code => Error::Rejected { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lost_lease_is_lease_lost() {
        let lost = Error::from(tonic::Status::failed_precondition(
            "lease lost: expired at 2026-12-03T08:00:00Z",
        ));
        assert!(matches!(lost, Error::LeaseLost(_)), "{lost:?}");
        let images = Error::from(tonic::Status::failed_precondition(
            "your images did not come up in cluster c (it is recycled): …",
        ));
        assert!(
            matches!(&images, Error::Rejected { code: Code::FailedPrecondition, message } if message.starts_with("your images")),
            "{images:?}"
        );
        assert_eq!(images.code(), Some(Code::FailedPrecondition));
    }
}

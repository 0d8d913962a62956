//! Domain errors → gRPC status codes. Internal errors are logged here and reach the caller
//! only as "internal error": SQL and file paths stay in the daemon's log.
use tonic::{Code, Status};
use tracing::error;

use crate::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidArgument(_) | Error::UnknownFlushStep { .. } => Code::InvalidArgument,
            Error::UnknownProfile(_) | Error::LeaseNotFound(_) => Code::NotFound,
            Error::WrongToken(_) => Code::PermissionDenied,
            Error::LeaseLost { .. }
            | Error::ImageNotFound { .. }
            | Error::Overlay { .. }
            | Error::NoArtifacts { .. } => Code::FailedPrecondition,
            Error::ReleaseUnderWay(_) => Code::Aborted,
            Error::OverlayTimedOut { .. } => Code::DeadlineExceeded,
            Error::ImageLookup(_) => Code::Unavailable,
            Error::NoCluster { .. } => Code::ResourceExhausted,
            Error::Degraded { .. } | Error::ShuttingDown => Code::Unavailable,
            Error::Store(_)
            | Error::Migrate(_)
            | Error::Io(_)
            | Error::Reflection(_)
            | Error::Transport(_) => {
                error!(error = %e, "internal error");
                return Status::internal("internal error; see the daemon's log");
            }
        };
        Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_text() {
        let status = Status::from(Error::Store(sqlx::Error::Protocol(
            "SELECT secret FROM leases".into(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("SELECT"));
    }

    #[test]
    fn domain_errors_keep_their_message() {
        let status = Status::from(Error::UnknownProfile("nope".into()));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "unknown profile \"nope\"");
    }
}

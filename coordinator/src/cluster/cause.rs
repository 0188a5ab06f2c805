//! Why a worker call failed, told apart: a worker that is gone or slow (a resume with
//! workers back cures it) from a worker that refuses the work (a wrong token, a limit):
//! then the refusal itself is the message, and resuming is not suggested.

use tonic::Code;

/// The canonical gRPC name of `code` (as `grpc-status` documents it).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What to do about a refusal with `code`, or `None` when the failure is one a resume
/// with workers back can cure (unavailable, deadline, internal...).
pub fn remedy(code: Code) -> Option<&'static str> {
    match code {
        Code::Unauthenticated | Code::PermissionDenied => Some(
            "give the coordinator the workers' token (--token-file or FLUS_TOKEN) and run again",
        ),
        Code::ResourceExhausted | Code::OutOfRange => Some(
            "raise the workers' limits (--max-tiles, --max-tile-mib, --max-message-mib) or \
             lower --max-tile-cells, and run again",
        ),
        Code::InvalidArgument | Code::FailedPrecondition | Code::Unimplemented => {
            Some("the workers cannot do this work as asked; fix the cause above and run again")
        }
        _ => None,
    }
}

/// The refusals seen from workers during a CA run: at most one per worker, the first.
#[derive(Debug, Default)]
pub struct Refusals(Vec<(String, Code, String)>);

impl Refusals {
    /// Records that the worker at `addr` refused `what` with `status`, when a resume
    /// cannot cure that refusal (see [`remedy`]).
    pub fn note(&mut self, addr: &str, what: &str, status: &tonic::Status) {
        if remedy(status.code()).is_some() && !self.0.iter().any(|(a, _, _)| a == addr) {
            self.0.push((
                addr.to_string(),
                status.code(),
                format!("{what}: {}", status.message()),
            ));
        }
    }

    /// The message of a run that lost all its workers: the refusals and what to do about
    /// them when there were any (no resume suggested), else `lost` (which suggests it).
    pub fn explain(&self, lost: String) -> String {
        let Some((_, code, _)) = self.0.first() else {
            return lost;
        };
        let list: Vec<String> = self
            .0
            .iter()
            .map(|(a, c, m)| format!("{a}: {} ({m})", code_name(*c)))
            .collect();
        format!(
            "the workers refused the work: {}; resuming cannot cure this: {}",
            list.join("; "),
            remedy(*code).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_the_message_and_no_resume_is_suggested() {
        let mut r = Refusals::default();
        let lost = "all workers lost: resume it with `flus run --resume`".to_string();
        r.note(
            "10.0.0.1:7070",
            "LoadTile",
            &tonic::Status::unavailable("connection reset"),
        );
        assert_eq!(r.explain(lost.clone()), lost);
        r.note(
            "10.0.0.1:7070",
            "LoadTile",
            &tonic::Status::unauthenticated("missing or wrong token"),
        );
        let m = r.explain(lost);
        assert!(
            m.contains("10.0.0.1:7070: UNAUTHENTICATED (LoadTile: missing or wrong token)"),
            "{m}"
        );
        assert!(m.contains("--token-file") && !m.contains("--resume"), "{m}");
    }
}

//! The cluster token: every Worker call must carry `authorization: Bearer TOKEN`;
//! the comparison takes the same time whatever the first differing byte.

use tonic::{Request, Status};

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// A tonic interceptor accepting only requests with the cluster token.
#[derive(Clone)]
pub struct TokenCheck {
    expected: std::sync::Arc<Vec<u8>>,
}

impl TokenCheck {
    /// Accepts `token`.
    pub fn new(token: &str) -> Self {
        Self {
            expected: std::sync::Arc::new(format!("Bearer {token}").into_bytes()),
        }
    }

    /// Checks the `authorization` metadata of `req`.
    #[allow(clippy::result_large_err)]
    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        match req.metadata().get("authorization") {
            Some(v) if constant_time_eq(v.as_bytes(), &self.expected) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong cluster token")),
            None => Err(Status::unauthenticated(
                "missing cluster token (authorization: Bearer ...)",
            )),
        }
    }
}

/// Reads the token from `--token-file` or the `FLUS_TOKEN` environment variable.
pub fn load_token(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let token = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("token file {}: {e}", f.display()))?
            .trim()
            .to_string(),
        None => std::env::var("FLUS_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if token.len() < 16 {
        anyhow::bail!(
            "no usable cluster token: give --token-file FILE or FLUS_TOKEN (at least 16 characters, found {})",
            token.len()
        );
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn requests_without_or_with_a_wrong_token_are_refused() {
        let c = TokenCheck::new("s3cret-s3cret-s3cret");
        let none = Request::new(());
        assert_eq!(
            c.check(none).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            c.check(wrong).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut ok = Request::new(());
        ok.metadata_mut().insert(
            "authorization",
            "Bearer s3cret-s3cret-s3cret".parse().unwrap(),
        );
        assert!(c.check(ok).is_ok());
    }
}

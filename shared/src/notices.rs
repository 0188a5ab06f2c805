//! Warnings about a setting or an input that may be intended but changes what the
//! results mean (a sample clamped to the valid cells, class codes written as indices...):
//! logged at once and kept, so that `flus run` lists them in `run.json` (`warnings`).

use std::sync::Mutex;

/// The warnings of this process, in order.
static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Logs `message` as a warning and keeps it for [`all`] (once per distinct message).
pub fn warn(message: impl Into<String>) {
    let message = message.into();
    tracing::warn!("{message}");
    let mut v = NOTICES.lock().unwrap_or_else(|e| e.into_inner());
    if !v.contains(&message) {
        v.push(message);
    }
}

/// Every warning given so far by [`warn`], in order.
pub fn all() -> Vec<String> {
    NOTICES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_warning_is_kept_once_in_order() {
        super::warn("flus-notices-test: first");
        super::warn("flus-notices-test: second");
        super::warn("flus-notices-test: first");
        let mine: Vec<String> = super::all()
            .into_iter()
            .filter(|m| m.starts_with("flus-notices-test"))
            .collect();
        assert_eq!(
            mine,
            ["flus-notices-test: first", "flus-notices-test: second"]
        );
    }
}

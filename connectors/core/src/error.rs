//! Error classification: every error a connector raises is either transient
//! (retry with backoff) or permanent (stop and tell the operator what to do).

/// What the pipeline should do about an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with backoff and jitter; the condition may clear by itself
    /// (network loss, broker or database restart, timeouts).
    Transient,
    /// Stop with an actionable message; retrying cannot help
    /// (bad configuration, missing privilege, invalid data).
    Permanent,
}

/// Implemented by every connector error type.
pub trait Classify {
    fn class(&self) -> ErrorClass;

    fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
}

//! Preflight results (`sluice check`): what was checked, the verdict, and for a failure the
//! cause and the exact fix.

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Works, but something deserves attention (the detail says what).
    Warn,
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One preflight check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// `postgres`, `kafka`, `registry`.
    pub area: &'static str,
    pub what: String,
    pub verdict: Verdict,
    /// What was found; for a failure, the cause and the fix.
    pub detail: String,
}

impl CheckResult {
    pub fn pass(area: &'static str, what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(area, what, Verdict::Pass, detail)
    }

    pub fn warn(area: &'static str, what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(area, what, Verdict::Warn, detail)
    }

    pub fn fail(area: &'static str, what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(area, what, Verdict::Fail, detail)
    }

    /// Pass with `ok` or fail with the error's message.
    pub fn from_result<E: std::fmt::Display>(
        area: &'static str,
        what: impl Into<String>,
        r: Result<String, E>,
    ) -> Self {
        match r {
            Ok(d) => Self::pass(area, what, d),
            Err(e) => Self::fail(area, what, e.to_string()),
        }
    }

    fn new(
        area: &'static str,
        what: impl Into<String>,
        verdict: Verdict,
        detail: impl Into<String>,
    ) -> Self {
        CheckResult {
            area,
            what: what.into(),
            verdict,
            detail: detail.into(),
        }
    }
}

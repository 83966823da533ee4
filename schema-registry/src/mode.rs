//! Registry modes (`/mode`), as in Confluent's registry.

/// What a subject (or the whole registry) accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Normal operation: registrations get new ids, compatibility is checked.
    #[default]
    ReadWrite,
    /// No registrations or deletes.
    ReadOnly,
    /// Read-only; set globally it overrides every subject's own mode.
    ReadOnlyOverride,
    /// Registrations must carry an explicit id (and may carry a version);
    /// no compatibility checks. For migrating schemas from another registry.
    Import,
}

impl Mode {
    pub const ALL: &'static [Mode] = &[
        Mode::ReadWrite,
        Mode::ReadOnly,
        Mode::ReadOnlyOverride,
        Mode::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }

    /// Parse a mode name, in any letter case.
    pub fn parse(s: &str) -> Option<Self> {
        Mode::ALL
            .iter()
            .copied()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn is_read_only(self) -> bool {
        matches!(self, Mode::ReadOnly | Mode::ReadOnlyOverride)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_ignores_case() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.as_str()), Some(*m));
            assert_eq!(Mode::parse(&m.as_str().to_lowercase()), Some(*m));
        }
        assert_eq!(Mode::parse("read-write"), None);
        assert_eq!(Mode::parse(""), None);
        assert!(Mode::ReadOnlyOverride.is_read_only());
        assert!(!Mode::Import.is_read_only());
    }
}

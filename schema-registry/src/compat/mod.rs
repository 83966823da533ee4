//! Avro schema compatibility, with the verdicts of Confluent's registry.
//!
//! Confluent checks Avro schemas with Avro-Java's
//! `SchemaCompatibility.checkReaderWriterCompatibility` and reports each
//! incompatibility as `{errorType:'...', description:'...', additionalInfo:'...'}`.
//! This module reproduces both: [`can_read`] is the reader/writer check,
//! [`check`] applies a subject's [`CompatibilityLevel`] to a new schema and
//! the subject's existing ones.
//!
//! The rules are Avro's schema resolution as Java implements them:
//!
//! - primitives must be equal, except the promotions int→long/float/double,
//!   long→float/double, float→double and string↔bytes;
//! - records, enums and fixed types match by *simple* name (namespaces are
//!   not compared) or when a reader alias is the writer's full name; fixed
//!   sizes must be equal; a writer enum symbol unknown to the reader is an
//!   error unless the reader enum has a default;
//! - record fields match by name or by a reader field alias; a reader field
//!   without a writer field needs a default; writer-only fields are ignored;
//! - arrays and maps compare their items/values;
//! - a writer union needs every branch readable; a reader union needs one
//!   branch that reads the (non-union) writer, so `"int"` cannot read
//!   `["null","int"]`;
//! - logical types (including decimal precision and scale) are ignored, as
//!   Java does: only the underlying types count.
//!
//! Recursive types are handled as in Java (memo on reader/writer pairs, a
//! pair under evaluation counts as compatible), which is also what makes a
//! few corner cases come out as Java's rather than as the spec's.
//!
//! Verified against PyPI `avro` 1.12's `ReaderWriterCompatibilityChecker` (a
//! port of the Java class) on a generated corpus: see
//! `tests/compat_oracle.rs` and `tests/oracle/gen.py`. Where the Python port
//! differs from Java, this module follows Java (unit tests pin these):
//! unqualified aliases of named types are resolved against the type's
//! namespace; a reader field matching several writer fields makes Java throw,
//! which Confluent reports as "Unexpected exception during compatibility
//! check" (incompatible); `"namespace": ""` is the null namespace even inside
//! a namespaced record; an unqualified reference falls back to the null
//! namespace; `"error"` is a record; a named type twice in a union is invalid.
//!
//! Not checked here: default *values* (Confluent validates them when a schema
//! is registered, not in the compatibility check), schema references, and
//! forward references to named types (rejected, as Avro-Java 1.11 and the
//! Python port do).

mod checker;
mod schema;
#[cfg(test)]
mod tests;

use std::fmt;

use checker::{Incompatibility, Kind, Verdict};
use schema::Schema;

/// A subject's compatibility level, as Confluent names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl CompatibilityLevel {
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// Case-insensitive: `"backward_transitive"` is `BackwardTransitive`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
    }

    /// Confluent's spelling, e.g. `"BACKWARD_TRANSITIVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl Default for CompatibilityLevel {
    /// `BACKWARD`, Confluent's default.
    fn default() -> Self {
        CompatibilityLevel::Backward
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which schema of a check an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaRole {
    /// The schema being checked ([`check`]'s `new`).
    New,
    /// `previous[i]` of [`check`].
    Previous(usize),
    /// [`can_read`]'s reader.
    Reader,
    /// [`can_read`]'s writer.
    Writer,
}

impl fmt::Display for SchemaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRole::New => f.write_str("new schema"),
            SchemaRole::Previous(i) => write!(f, "previous schema #{i} (0 = oldest)"),
            SchemaRole::Reader => f.write_str("reader schema"),
            SchemaRole::Writer => f.write_str("writer schema"),
        }
    }
}

/// Why a check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("{role} is not valid JSON: {reason}")]
    InvalidJson { role: SchemaRole, reason: String },
    #[error("{role} is not a valid Avro schema: {reason}")]
    InvalidSchema { role: SchemaRole, reason: String },
    #[error(
        "schemas nest too deeply to check compatibility (more than {limit} nested reader/writer pairs)"
    )]
    TooDeep { limit: usize },
}

/// Checks `new` (schema JSON text) against the subject's existing schemas
/// `previous` (JSON texts, oldest first), as Confluent's registry does.
///
/// Non-transitive levels compare with the latest only; transitive ones with
/// all of them, newest first, stopping at the first incompatible one.
/// BACKWARD: `new` (reader) reads every checked old schema (writer). FORWARD:
/// each old schema (reader) reads `new` (writer). FULL: both, forward first.
/// NONE: always compatible (but `new` must still parse).
///
/// Returns Confluent's messages, empty when compatible: one
/// `{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'x' at path '/fields/1' in the new schema has no default value and is missing in the old schema', additionalInfo:'x'}`
/// per incompatibility, then `{oldSchema: '...'}` naming the old schema that
/// failed (Confluent also adds `{oldSchemaVersion: N}` before it, and the
/// registry `{compatibility: 'LEVEL'}`; callers that know them can add them).
/// As in Confluent, a FULL check whose backward half passes reports the
/// forward incompatibilities without the `oldSchema` line.
pub fn check(
    level: CompatibilityLevel,
    new: &str,
    previous: &[&str],
) -> Result<Vec<String>, CompatError> {
    let new_schema = parse(new, SchemaRole::New)?;
    if level == CompatibilityLevel::None {
        return Ok(Vec::new());
    }
    let to_check: Vec<usize> = if level.is_transitive() {
        (0..previous.len()).rev().collect()
    } else {
        previous.len().checked_sub(1).into_iter().collect()
    };
    for i in to_check {
        let old_text = previous[i];
        let old = parse(old_text, SchemaRole::Previous(i))?;
        let backward = || messages(&new_schema, &old, ("new", "old"));
        let forward = || messages(&old, &new_schema, ("old", "new"));
        let mut out = match level {
            CompatibilityLevel::Backward | CompatibilityLevel::BackwardTransitive => {
                with_old_schema(backward()?, old_text)
            }
            CompatibilityLevel::Forward | CompatibilityLevel::ForwardTransitive => {
                with_old_schema(forward()?, old_text)
            }
            _ => forward()?,
        };
        if matches!(
            level,
            CompatibilityLevel::Full | CompatibilityLevel::FullTransitive
        ) {
            out.extend(with_old_schema(backward()?, old_text));
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    Ok(Vec::new())
}

/// The raw reader/writer check: can data written with `writer` be read with
/// `reader`? Returns the incompatibilities in Confluent's format (with
/// "reader"/"writer" for Confluent's "new"/"old"), empty when compatible.
pub fn can_read(reader: &str, writer: &str) -> Result<Vec<String>, CompatError> {
    let reader = parse(reader, SchemaRole::Reader)?;
    let writer = parse(writer, SchemaRole::Writer)?;
    messages(&reader, &writer, ("reader", "writer"))
}

fn parse(text: &str, role: SchemaRole) -> Result<Schema, CompatError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CompatError::InvalidJson {
            role,
            reason: e.to_string(),
        })?;
    Schema::from_value(&value).map_err(|reason| CompatError::InvalidSchema { role, reason })
}

fn messages(
    reader: &Schema,
    writer: &Schema,
    labels: (&str, &str),
) -> Result<Vec<String>, CompatError> {
    Ok(match checker::check(reader, writer) {
        Verdict::Compatible => Vec::new(),
        Verdict::Incompatible(items) => items.iter().map(|i| describe(i, labels)).collect(),
        Verdict::Exception(msg) => {
            vec![format!(
                "Unexpected exception during compatibility check: {msg}"
            )]
        }
        Verdict::TooDeep => {
            return Err(CompatError::TooDeep {
                limit: checker::MAX_DEPTH,
            })
        }
    })
}

/// Confluent appends the old schema to the messages of a failed check
/// (truncated to 10 KiB).
fn with_old_schema(mut messages: Vec<String>, old: &str) -> Vec<String> {
    const MAX: usize = 10 * 1024;
    if !messages.is_empty() {
        let old = old.trim();
        if old.chars().count() <= MAX {
            messages.push(format!("{{oldSchema: '{old}'}}"));
        } else {
            let cut: String = old.chars().take(MAX).collect();
            messages.push(format!(
                "{{oldSchema: <truncated to {MAX} characters> '{cut}'}}"
            ));
        }
    }
    messages
}

/// Confluent's `AvroSchema.Difference.toString()`, with its two `%s` (reader,
/// writer) filled in.
fn describe(inc: &Incompatibility, (reader, writer): (&str, &str)) -> String {
    let path = &inc.location;
    let info = &inc.message;
    let description = match inc.kind {
        Kind::FixedSizeMismatch => format!(
            "The size of FIXED type field at path '{path}' in the {reader} schema does not match with the {writer} schema"
        ),
        Kind::TypeMismatch => format!(
            "The type (path '{path}') of a field in the {reader} schema does not match with the {writer} schema"
        ),
        Kind::NameMismatch => format!("The name of the schema has changed (path '{path}')"),
        Kind::MissingEnumSymbols => format!(
            "The {reader} schema is missing enum symbols '{info}' at path '{path}' in the {writer} schema"
        ),
        Kind::MissingUnionBranch => format!(
            "The {reader} schema is missing a type inside a union field at path '{path}' in the {writer} schema"
        ),
        Kind::ReaderFieldMissingDefaultValue => format!(
            "The field '{info}' at path '{path}' in the {reader} schema has no default value and is missing in the {writer} schema"
        ),
    };
    format!(
        "{{errorType:'{}', description:'{description}', additionalInfo:'{info}'}}",
        inc.kind.as_str()
    )
}

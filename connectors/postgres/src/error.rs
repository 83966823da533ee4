//! Errors of the PostgreSQL source, classified as transient or permanent.

use std::io;

use sluice_core::{Classify, ErrorClass};

use crate::pgoutput::DecodeError;

/// An error reported by the PostgreSQL server (ErrorResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl ServerError {
    /// Classifies by SQLSTATE class.
    pub fn class(&self) -> ErrorClass {
        sqlstate_class(&self.code)
    }
}

/// Transient: connection problems, shutdowns, resource exhaustion, lock and
/// serialization conflicts, an object (slot) in use. Everything else (auth, privileges,
/// missing objects, syntax, configuration) needs an operator.
pub fn sqlstate_class(code: &str) -> ErrorClass {
    match code {
        "55006" | "55P03" | "57P01" | "57P02" | "57P03" | "57014" | "40001" | "40P01" | "53300"
        | "53200" | "53100" | "58030" => ErrorClass::Transient,
        c if c.starts_with("08") => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot reach PostgreSQL at {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("PostgreSQL connection lost: {0}")]
    Io(#[from] io::Error),
    #[error("PostgreSQL refused {context}: {error}")]
    Server {
        context: String,
        error: Box<ServerError>,
    },
    #[error("PostgreSQL {context}: {}", with_causes(source))]
    Sql {
        context: String,
        source: tokio_postgres::Error,
    },
    #[error("unexpected message from PostgreSQL during {context}: {detail}")]
    Protocol { context: String, detail: String },
    /// Rows that do not read: reading them again gives the same bytes, so no retry.
    #[error("cannot read {context}: {detail}. Sluice does not understand what PostgreSQL sent; report it with the table's definition (\\d+ in psql) and the server version")]
    Malformed { context: String, detail: String },
    /// A bug: a task of Sluice's failed.
    #[error("internal error in Sluice ({0}); this is a bug: please report it with the log")]
    Internal(String),
    #[error("cannot decode replication stream: {0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Config(String),
    #[error("PostgreSQL asked for authentication method {0}, which Sluice does not support; use scram-sha-256, md5 or password in pg_hba.conf")]
    UnsupportedAuth(String),
    #[error("the change pipeline stopped")]
    PipelineClosed,
    #[error("table {table} now has a column binary replication cannot read ({column}): reconnecting in text mode from the last committed position")]
    BinaryMode { table: String, column: String },
    /// Staging a streamed transaction failed: the source reconnects with streaming off.
    #[error("cannot stage streamed transactions in {dir}: {reason}. Reconnecting from the last committed position with streaming off until Sluice restarts (PostgreSQL then spills large transactions on its side)")]
    Spill { dir: String, reason: String },
    #[error("replication slot {slot:?} is in use by another connection (PID {pid}): another Sluice instance or client is streaming from it. Sluice retries until it is free; stop the other consumer, or give this instance its own source.postgres.slot")]
    SlotBusy { slot: String, pid: i32 },
}

impl Classify for PgError {
    fn class(&self) -> ErrorClass {
        match self {
            PgError::Connect { .. } | PgError::Io(_) => ErrorClass::Transient,
            PgError::Server { error, .. } => error.class(),
            PgError::Sql { source, .. } => match source.code() {
                Some(code) => sqlstate_class(code.code()),
                // Not a server error: I/O or a closed connection.
                None if source.is_closed() || source.to_string().contains("connection") => {
                    ErrorClass::Transient
                }
                None => ErrorClass::Transient,
            },
            PgError::Protocol { .. }
            | PgError::SlotBusy { .. }
            | PgError::BinaryMode { .. }
            | PgError::Spill { .. } => ErrorClass::Transient,
            PgError::Decode(_)
            | PgError::Malformed { .. }
            | PgError::Internal(_)
            | PgError::Config(_)
            | PgError::UnsupportedAuth(_)
            | PgError::PipelineClosed => ErrorClass::Permanent,
        }
    }
}

/// An error and its causes (a TLS failure's reason is only in the cause), each once.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cause = c.source();
    }
    text
}

impl PgError {
    pub fn sql(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let context = context.into();
        move |source| PgError::Sql { context, source }
    }

    pub fn protocol(context: &str, detail: impl Into<String>) -> PgError {
        PgError::Protocol {
            context: context.to_string(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classification_table() {
        let table = [
            ("08006", ErrorClass::Transient), // connection failure
            ("08001", ErrorClass::Transient),
            ("57P01", ErrorClass::Transient), // admin shutdown
            ("55006", ErrorClass::Transient), // slot active for another PID
            ("53300", ErrorClass::Transient), // too many connections
            ("40001", ErrorClass::Transient),
            ("28P01", ErrorClass::Permanent), // bad password
            ("28000", ErrorClass::Permanent), // pg_hba rejects
            ("3D000", ErrorClass::Permanent), // database does not exist
            ("42501", ErrorClass::Permanent), // insufficient privilege
            ("42704", ErrorClass::Permanent), // undefined object (publication)
            ("55000", ErrorClass::Permanent), // wal_level not logical
            ("42601", ErrorClass::Permanent), // syntax
        ];
        for (code, want) in table {
            assert_eq!(sqlstate_class(code), want, "{code}");
        }
    }

    #[test]
    fn error_kind_classification_table() {
        let io = || io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        let cases: Vec<(PgError, ErrorClass)> = vec![
            (
                PgError::Connect {
                    addr: "x".into(),
                    source: io(),
                },
                ErrorClass::Transient,
            ),
            (PgError::Io(io()), ErrorClass::Transient),
            (PgError::Config("bad".into()), ErrorClass::Permanent),
            (
                PgError::UnsupportedAuth("gss".into()),
                ErrorClass::Permanent,
            ),
            (PgError::PipelineClosed, ErrorClass::Permanent),
            (
                PgError::Decode(DecodeError::new("Begin", 3, "truncated")),
                ErrorClass::Permanent,
            ),
            (
                PgError::Malformed {
                    context: "the snapshot of public.t".into(),
                    detail: "a row has 2 fields, the query selects 3".into(),
                },
                ErrorClass::Permanent,
            ),
            (
                PgError::protocol("START_REPLICATION", "odd"),
                ErrorClass::Transient,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.class(), want, "{err}");
        }
    }
}

//! The snapshot's connections, each inside the exported snapshot and holding ACCESS
//! SHARE on every table to read from the start (as parallel pg_dump does): a DDL
//! statement then waits for the whole snapshot instead of slipping in between two
//! connections' reads of a table, where it would wait for one connection while the other
//! waits for it, unseen by PostgreSQL's deadlock detector.
//!
//! The planner (a tokio-postgres session: table shapes, key order, range bounds) opens
//! first and waits for its locks. The readers then open as sessions of our own
//! ([`ReplicationConn::connect_sql`], COPY read straight from the socket) and take their
//! locks only if they are free at once: a DDL statement already waiting for the
//! planner's would otherwise queue them behind it, while the planner waits for them.
//! When no reader can open, the planner reads.

use tokio_postgres::Client;

use crate::catalog::{self, quote_literal};
use crate::conn::{ConnectParams, ReplicationConn};
use crate::error::PgError;
use sluice_core::TableName;

/// A connection reading ranges inside the snapshot.
pub enum Reader {
    /// A session of our own: COPY read straight from the socket.
    Own(ReplicationConn),
    /// The planner's tokio-postgres session (when no reader of our own could open).
    Planner(Client),
}

/// The statements that put a session inside the exported snapshot and take its locks.
fn enter_snapshot(snapshot_name: &str, tables: &[TableName], wait: bool) -> String {
    let mut sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
        quote_literal(snapshot_name)
    );
    if !tables.is_empty() {
        let list: Vec<String> = tables.iter().map(catalog::qualified).collect();
        sql.push_str(&format!(
            "; LOCK TABLE {} IN ACCESS SHARE MODE{}",
            list.join(", "),
            if wait { "" } else { " NOWAIT" }
        ));
    }
    sql
}

/// The planner's session, inside the snapshot, once it holds its locks.
pub async fn open_planner(
    cfg: &tokio_postgres::Config,
    tls: &crate::tls::TlsSettings,
    snapshot_name: &str,
    tables: &[TableName],
) -> Result<Client, PgError> {
    let client = catalog::connect_sql(cfg, tls).await?;
    client
        .batch_execute(&enter_snapshot(snapshot_name, tables, true))
        .await
        .map_err(PgError::sql("start snapshot transaction"))?;
    Ok(client)
}

/// A reader of our own inside the snapshot, if its locks are free at once.
pub async fn open_reader(
    params: &ConnectParams,
    snapshot_name: &str,
    tables: &[TableName],
) -> Result<Reader, PgError> {
    let mut conn = ReplicationConn::connect_sql(params).await?;
    conn.simple_query(&enter_snapshot(snapshot_name, tables, false))
        .await?;
    Ok(Reader::Own(conn))
}

/// Ends a session's read-only transaction; nothing depends on it succeeding (the server
/// may have ended an idle one already).
pub async fn close(reader: Reader) {
    let result = match reader {
        Reader::Planner(client) => client
            .batch_execute("COMMIT")
            .await
            .map_err(PgError::sql("COMMIT")),
        Reader::Own(mut conn) => match conn.simple_query("COMMIT").await {
            Ok(_) => conn.terminate().await,
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "ending a snapshot connection's transaction");
    }
}

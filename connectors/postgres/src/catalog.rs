//! SQL-side setup and catalog reads (tokio-postgres): server checks, the publication,
//! table shapes.

use std::sync::Arc;

use sluice_core::{Column, Table, TableName};
use tokio_postgres::Client;

use crate::error::PgError;

/// Quotes an identifier for SQL.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn qualified(t: &TableName) -> String {
    format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name))
}

/// Opens a regular SQL connection with pinned output settings.
pub async fn connect_sql(cfg: &tokio_postgres::Config) -> Result<Client, PgError> {
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(PgError::sql("connect"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "PostgreSQL SQL connection ended");
        }
    });
    client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 3; SET bytea_output = 'hex'")
        .await
        .map_err(PgError::sql("set session parameters"))?;
    Ok(client)
}

/// Fails with an actionable message unless the server can do logical decoding.
pub async fn check_server(client: &Client) -> Result<(), PgError> {
    let row = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(PgError::sql("read wal_level"))?;
    let level: String = row.get(0);
    if level != "logical" {
        return Err(PgError::Config(format!(
            "PostgreSQL runs with wal_level = {level}; logical replication needs wal_level = logical. \
             Fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"
        )));
    }
    Ok(())
}

/// The role must be allowed to replicate and to read the tables.
pub async fn check_privileges(client: &Client, tables: &[TableName]) -> Result<(), PgError> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(PgError::sql("read role attributes"))?;
    let user: String = row.get(0);
    let can_replicate: bool = row.get(1);
    if !can_replicate {
        return Err(PgError::Config(format!(
            "role {user:?} may not start replication. Fix: ALTER ROLE {} REPLICATION",
            quote_ident(&user)
        )));
    }
    for t in tables {
        let ok = client
            .query_one(
                "SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE has_table_privilege(to_regclass($1), 'SELECT') END",
                &[&qualified(t)],
            )
            .await
            .map_err(PgError::sql("check table privileges"))?;
        // NULL: the table does not exist; check_tables reports that.
        if ok.get::<_, Option<bool>>(0) == Some(false) {
            return Err(PgError::Config(format!(
                "role {user:?} cannot read table {t} (needed for the snapshot and TOAST re-reads). Fix: GRANT SELECT ON {} TO {}",
                qualified(t),
                quote_ident(&user)
            )));
        }
    }
    Ok(())
}

/// Checks that every configured table exists and has a key.
pub async fn check_tables(client: &Client, tables: &[TableName]) -> Result<(), PgError> {
    for t in tables {
        let row = client
            .query_opt(
                "SELECT c.relreplident::text, \
                        EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                &[&t.schema, &t.name],
            )
            .await
            .map_err(PgError::sql("look up tables"))?;
        let Some(row) = row else {
            return Err(PgError::Config(format!(
                "source.postgres.tables: table {t} does not exist in the database (or is not a plain table); \
                 create it or remove it from the list"
            )));
        };
        let ident: String = row.get(0);
        let has_key: bool = row.get(1);
        if !has_key && ident != "f" {
            return Err(PgError::Config(format!(
                "table {t} has no primary key, so its changes cannot be keyed and its updates and deletes \
                 cannot be replicated. Fix: add a primary key, or ALTER TABLE {} REPLICA IDENTITY FULL",
                qualified(t)
            )));
        }
    }
    Ok(())
}

/// Creates the publication for the configured tables if it does not exist; if it exists,
/// checks that it covers them.
pub async fn ensure_publication(
    client: &Client,
    publication: &str,
    tables: &[TableName],
) -> Result<(), PgError> {
    let exists = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(PgError::sql("look up publication"))?;
    match exists {
        None => {
            let list: Vec<String> = tables.iter().map(qualified).collect();
            let sql = format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_ident(publication),
                list.join(", ")
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(PgError::sql(format!("create publication ({sql})")))?;
            tracing::info!(publication, tables = %list.join(", "), "created publication");
        }
        Some(row) => {
            let all: bool = row.get(0);
            if all {
                return Ok(());
            }
            for t in tables {
                let covered = client
                    .query_opt(
                        "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                        &[&publication, &t.schema, &t.name],
                    )
                    .await
                    .map_err(PgError::sql("read publication tables"))?;
                if covered.is_none() {
                    return Err(PgError::Config(format!(
                        "publication {publication:?} exists but does not include table {t}. \
                         Fix: ALTER PUBLICATION {} ADD TABLE {}",
                        quote_ident(publication),
                        qualified(t)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The replication slot as the catalog shows it.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub wal_status: Option<String>,
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub confirmed_flush: Option<String>,
    pub active_pid: Option<i32>,
}

pub async fn find_slot(client: &Client, slot: &str) -> Result<Option<SlotInfo>, PgError> {
    let row = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text, active_pid, wal_status \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(PgError::sql("look up replication slot"))?;
    Ok(row.map(|r| SlotInfo {
        plugin: r.get(0),
        database: r.get(1),
        confirmed_flush: r.get(2),
        active_pid: r.get(3),
        wal_status: r.get(4),
    }))
}

/// Reads a table's current shape from the catalog. Key columns are the primary key (or
/// the replica identity index); `None` if the table no longer exists.
pub async fn table_by_oid(client: &Client, oid: u32) -> Result<Option<Table>, PgError> {
    let head = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text, c.relreplident::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(PgError::sql("read table"))?;
    let Some(head) = head else { return Ok(None) };
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, t.typname::text, NOT a.attnotnull, \
                    COALESCE((SELECT a.attnum = ANY (i.indkey) FROM pg_index i \
                              WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident) \
                              ORDER BY i.indisreplident DESC LIMIT 1), false) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(PgError::sql("read table columns"))?;
    let ident: String = head.get(2);
    Ok(Some(Table {
        id: oid,
        name: TableName::new(head.get::<_, String>(0), head.get::<_, String>(1)),
        columns: rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                type_oid: r.get(1),
                type_modifier: r.get(2),
                type_name: r.get(3),
                nullable: r.get(4),
                key: r.get(5),
            })
            .collect(),
        replica_identity: ident.chars().next().unwrap_or('d'),
    }))
}

pub async fn table_oid(client: &Client, t: &TableName) -> Result<u32, PgError> {
    let row = client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&t.schema, &t.name],
        )
        .await
        .map_err(PgError::sql("look up table"))?;
    row.map(|r| r.get(0))
        .ok_or_else(|| PgError::Config(format!("table {t} does not exist")))
}

/// Merges a Relation message (authoritative for names, types and key flags at that point
/// of the stream) with the catalog's nullability.
pub fn relation_to_table(rel: &crate::pgoutput::Relation, catalog: Option<&Table>) -> Arc<Table> {
    let columns = rel
        .columns
        .iter()
        .map(|c| {
            let cat = catalog.and_then(|t| t.columns.iter().find(|cc| cc.name == c.name));
            Column {
                name: c.name.clone(),
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
                type_name: cat.map(|cc| cc.type_name.clone()).unwrap_or_default(),
                // Unknown to the catalog (dropped since): nullable is the safe choice.
                nullable: cat.is_none_or(|cc| cc.nullable) && !c.key,
                // With REPLICA IDENTITY FULL every column is flagged: key by the primary
                // key when there is one.
                key: if rel.replica_identity == b'f' && catalog.is_some_and(Table::has_key) {
                    cat.is_some_and(|cc| cc.key)
                } else {
                    c.key
                },
            }
        })
        .collect();
    Arc::new(Table {
        id: rel.id,
        name: TableName::new(rel.namespace.clone(), rel.name.clone()),
        columns,
        replica_identity: rel.replica_identity as char,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(
            qualified(&TableName::new("public", "Orders")),
            "\"public\".\"Orders\""
        );
    }
}

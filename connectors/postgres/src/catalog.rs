//! SQL-side setup and catalog reads (tokio-postgres): server checks, the publication,
//! table shapes.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_core::table::oid;
use sluice_core::{Column, KeyOrder, Table, TableName, TypeInfo, TypeKind};
use tokio_postgres::Client;

use crate::error::PgError;

/// Quotes an identifier for SQL.
/// A catalog column, its type checked: a mismatch (a catalog type that changed between
/// server versions) is a typed error naming the column, never a panic.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    r: &'a tokio_postgres::Row,
    i: usize,
) -> Result<T, PgError> {
    r.try_get(i).map_err(PgError::sql(format!(
        "read catalog column {i} ({})",
        r.columns().get(i).map_or("?", |c| c.name())
    )))
}

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

/// The output settings every SQL session of Sluice's pins, so values print (and parse)
/// the same way everywhere.
pub const SESSION_SETTINGS: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 3; SET bytea_output = 'hex'; SET IntervalStyle = 'postgres'; SET standard_conforming_strings = on";

/// Opens a regular SQL connection with pinned output settings.
pub async fn connect_sql(
    cfg: &tokio_postgres::Config,
    tls: &crate::tls::TlsSettings,
) -> Result<Client, PgError> {
    let mut cfg = cfg.clone();
    cfg.ssl_mode(tls.ssl_mode());
    fn run<F, E>(conn: F)
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL SQL connection ended");
            }
        });
    }
    let client = if tls.mode == crate::tls::TlsMode::Disable {
        let (c, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(PgError::sql("connect"))?;
        run(conn);
        c
    } else {
        let (c, conn) = cfg
            .connect(tls.make_connect()?)
            .await
            .map_err(PgError::sql("connect"))?;
        run(conn);
        c
    };
    client
        .batch_execute(SESSION_SETTINGS)
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
    let level: String = col(&row, 0)?;
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
    let user: String = col(&row, 0)?;
    let can_replicate: bool = col(&row, 1)?;
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
        if col::<Option<bool>>(&ok, 0)? == Some(false) {
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
pub async fn check_tables(
    client: &Client,
    tables: &[TableName],
    keyless: crate::KeylessTables,
) -> Result<(), PgError> {
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
        let ident: String = col(&row, 0)?;
        let has_key: bool = col(&row, 1)?;
        if !has_key && ident != "f" && keyless == crate::KeylessTables::NullKey {
            tracing::warn!(
                table = %t,
                "table has no primary key: its events get a null key (no per-key order or compaction), and PostgreSQL refuses UPDATE and DELETE on it while the publication publishes them. Add a primary key or ALTER TABLE {} REPLICA IDENTITY FULL if it is not insert-only",
                qualified(t)
            );
        } else if !has_key && ident != "f" {
            return Err(PgError::Config(format!(
                "table {t} has no primary key, so its changes cannot be keyed and its updates and deletes \
                 cannot be replicated. Fix: add a primary key, or ALTER TABLE {} REPLICA IDENTITY FULL \
                 (or, for an insert-only table, set source.postgres.keyless_tables: null_key)",
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
    if !check_publication(client, publication, tables).await? {
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
    Ok(())
}

/// Whether the publication exists (`false`: not yet); if it does, that it covers `tables`.
pub async fn check_publication(
    client: &Client,
    publication: &str,
    tables: &[TableName],
) -> Result<bool, PgError> {
    let exists = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(PgError::sql("look up publication"))?;
    match exists {
        None => Ok(false),
        Some(row) => {
            let all: bool = col(&row, 0)?;
            if all {
                return Ok(true);
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
            Ok(true)
        }
    }
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
    row.map(|r| {
        Ok(SlotInfo {
            plugin: col(&r, 0)?,
            database: col(&r, 1)?,
            confirmed_flush: col(&r, 2)?,
            active_pid: col(&r, 3)?,
            wal_status: col(&r, 4)?,
        })
    })
    .transpose()
}

/// Reads a table's current shape from the catalog. Key columns are the primary key (or
/// the replica identity index); `None` if the table no longer exists. Column types are
/// described fully ([`TypeInfo`]: array elements, domain bases, enum labels, composite
/// fields, range subtypes), read with a few queries per table, never per row.
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
                    COALESCE((SELECT a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) FROM pg_index i \
                              WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident) \
                              ORDER BY i.indisreplident DESC LIMIT 1), false), \
                    a.attndims::int4, \
                    CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(PgError::sql("read table columns"))?;
    let roots: Vec<u32> = rows
        .iter()
        .map(|r| col::<u32>(r, 1))
        .collect::<Result<_, _>>()?;
    let types = load_types(client, &roots).await?;
    let ident: String = col(&head, 2)?;
    Ok(Some(Table {
        id: oid,
        name: TableName::new(col::<String>(&head, 0)?, col::<String>(&head, 1)?),
        columns: rows
            .iter()
            .map(|r| -> Result<Column, PgError> {
                let type_oid: u32 = col(r, 1)?;
                let type_modifier: i32 = col(r, 2)?;
                Ok(Column {
                    name: col(r, 0)?,
                    type_oid,
                    type_modifier,
                    type_name: col(r, 3)?,
                    nullable: col(r, 4)?,
                    key: col(r, 5)?,
                    pg_type: types.build(type_oid, type_modifier, col(r, 6)?),
                    default_text: col::<Option<String>>(r, 7)?
                        .as_deref()
                        .and_then(constant_default),
                })
            })
            .collect::<Result<_, _>>()?,
        replica_identity: ident.chars().next().unwrap_or('d'),
    }))
}

/// The key columns as the replication stream flags them: a table under REPLICA IDENTITY
/// FULL without a primary key or identity index is identified by its whole row, so
/// pgoutput flags every column (as [`relation_to_table`] reads it). Returns whether the
/// table has a key of its own (an index, usable to order and resume a snapshot).
pub fn key_as_streamed(table: &mut Table) -> bool {
    if table.has_key() {
        return true;
    }
    if table.replica_identity == 'f' {
        for c in &mut table.columns {
            c.key = true;
        }
    }
    false
}

/// The order to sort `table`'s key columns in, as positions among its key columns (which
/// are in table column order): the key index's column order under [`KeyOrder::Index`]
/// (so a snapshot walks the index), else, or when the key is not an index's, as they are.
pub async fn key_order(
    client: &Client,
    table: &Table,
    order: KeyOrder,
) -> Result<Vec<usize>, PgError> {
    let keys: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect();
    let as_is: Vec<usize> = (0..keys.len()).collect();
    if order == KeyOrder::Columns || keys.len() < 2 {
        return Ok(as_is);
    }
    let rows = client
        .query(
            "SELECT a.attname::text \
             FROM (SELECT indrelid, indkey, indnkeyatts FROM pg_catalog.pg_index \
                   WHERE indrelid = $1 AND (indisprimary OR indisreplident) \
                   ORDER BY indisreplident DESC LIMIT 1) i \
             CROSS JOIN LATERAL unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) \
                  WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             ORDER BY k.n",
            &[&table.id],
        )
        .await
        .map_err(PgError::sql(format!(
            "read the key index of {}",
            table.name
        )))?;
    let perm: Option<Vec<usize>> = rows
        .iter()
        .map(|r| {
            let name: String = r.try_get(0).ok()?;
            keys.iter().position(|k| *k == name)
        })
        .collect();
    Ok(match perm {
        Some(p) if p.len() == keys.len() => p,
        _ => as_is,
    })
}

/// The text of a constant default expression as PostgreSQL prints it
/// (`42`, `'-1'::integer`, `'abc'::text`, `(-1)`, `true`); `None` for anything computed.
pub fn constant_default(expr: &str) -> Option<String> {
    let mut e = expr.trim();
    while let Some(inner) = e.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        e = inner.trim();
    }
    if let Some(rest) = e.strip_prefix('\'') {
        // 'text'::type — the literal up to its closing quote, then only casts.
        let mut out = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|&(_, n)| n) == Some('\'') {
                    out.push('\'');
                    chars.next();
                    continue;
                }
                let tail = rest[i + 1..].trim();
                // Only type casts may follow (`::text`, `::character varying`).
                let only_casts = tail.is_empty()
                    || (tail.starts_with("::") && !tail.contains(['(', '\'', '|', '+', '*', '/']));
                return only_casts.then_some(out);
            }
            out.push(c);
        }
        return None;
    }
    let plain = e.split("::").next().unwrap_or(e).trim();
    let numeric = !plain.is_empty()
        && plain
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && plain.chars().any(|c| c.is_ascii_digit());
    if numeric || plain == "true" || plain == "false" {
        return Some(plain.to_string());
    }
    None
}

/// One pg_type row with what [`TypeInfo`] needs.
#[derive(Debug, Clone)]
struct TypeRow {
    name: String,
    schema: String,
    typtype: String,
    typcategory: String,
    typelem: u32,
    typbasetype: u32,
    typtypmod: i32,
    typndims: i32,
    typlen: i16,
    typdelim: u8,
    enum_labels: Vec<String>,
    /// Composite attributes: (name, type, typmod, ndims).
    fields: Vec<(String, u32, i32, i32)>,
    rngsubtype: u32,
    multirange_of: u32,
}

/// The catalog rows of a set of types and everything they refer to.
#[derive(Debug, Default)]
pub struct TypeCatalog {
    rows: HashMap<u32, TypeRow>,
    money_fraction_digits: u32,
}

/// Guards against runaway nesting (and catalog cycles, which PostgreSQL forbids).
const MAX_TYPE_DEPTH: usize = 32;

impl TypeCatalog {
    /// The [`TypeInfo`] of type `oid` used with modifier `typmod` and `ndims` declared
    /// array dimensions.
    pub fn build(&self, oid: u32, typmod: i32, ndims: i32) -> TypeInfo {
        self.build_at(oid, typmod, ndims, 0)
    }

    fn build_at(&self, type_oid: u32, typmod: i32, ndims: i32, depth: usize) -> TypeInfo {
        let Some(row) = self.rows.get(&type_oid) else {
            return TypeInfo::base(type_oid, typmod, "");
        };
        let mut info = TypeInfo {
            oid: type_oid,
            name: row.name.clone(),
            schema: row.schema.clone(),
            modifier: typmod,
            kind: TypeKind::Base,
        };
        if depth > MAX_TYPE_DEPTH {
            return info;
        }
        let d = depth + 1;
        info.kind = match row.typtype.as_str() {
            "d" => TypeKind::Domain {
                base: Box::new(self.build_at(row.typbasetype, row.typtypmod, row.typndims, d)),
            },
            "e" => TypeKind::Enum {
                labels: row.enum_labels.clone(),
            },
            "c" => TypeKind::Composite {
                fields: row
                    .fields
                    .iter()
                    .map(|(n, t, m, nd)| (n.clone(), self.build_at(*t, *m, *nd, d)))
                    .collect(),
            },
            "r" => TypeKind::Range {
                subtype: Box::new(self.build_at(row.rngsubtype, -1, 0, d)),
            },
            "m" => TypeKind::Multirange {
                range: Box::new(self.build_at(row.multirange_of, -1, 0, d)),
            },
            _ if row.typcategory == "A"
                && row.typelem != 0
                && row.typlen == -1
                && type_oid != oid::INT2VECTOR
                && type_oid != oid::OIDVECTOR =>
            {
                TypeKind::Array {
                    element: Box::new(self.build_at(row.typelem, typmod, 0, d)),
                    dims: ndims.max(1) as u32,
                    delimiter: self.rows.get(&row.typelem).map_or(b',', |e| e.typdelim),
                }
            }
            _ if type_oid == oid::MONEY => TypeKind::Money {
                fraction_digits: self.money_fraction_digits,
            },
            _ => TypeKind::Base,
        };
        info
    }
}

/// Reads the catalog rows of `roots` and of every type they refer to (array elements,
/// domain bases, composite attributes, range subtypes), a query per level of nesting.
pub async fn load_types(client: &Client, roots: &[u32]) -> Result<TypeCatalog, PgError> {
    let mut cat = TypeCatalog {
        rows: HashMap::new(),
        money_fraction_digits: 2,
    };
    let mut pending: Vec<u32> = roots.to_vec();
    pending.sort_unstable();
    pending.dedup();
    for _ in 0..MAX_TYPE_DEPTH {
        if pending.is_empty() {
            break;
        }
        let rows = client
            .query(
                "SELECT t.oid, t.typname::text, n.nspname::text, t.typtype::text, t.typcategory::text, \
                        t.typelem, t.typbasetype, t.typtypmod, t.typndims, t.typlen, t.typdelim::text, \
                        CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e \
                             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) ELSE '{}'::text[] END, \
                        ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid \
                              AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                        ARRAY(SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = t.typrelid \
                              AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                        ARRAY(SELECT a.atttypmod FROM pg_attribute a WHERE a.attrelid = t.typrelid \
                              AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                        ARRAY(SELECT a.attndims::int4 FROM pg_attribute a WHERE a.attrelid = t.typrelid \
                              AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                        COALESCE((SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid), 0), \
                        COALESCE((SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid), 0) \
                 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = ANY ($1)",
                &[&pending],
            )
            .await
            .map_err(PgError::sql("read column types"))?;
        let mut next = Vec::new();
        for r in rows {
            let names: Vec<String> = col(&r, 12)?;
            let types: Vec<u32> = col(&r, 13)?;
            let mods: Vec<i32> = col(&r, 14)?;
            let dims: Vec<i32> = col(&r, 15)?;
            let delim: String = col(&r, 10)?;
            let row = TypeRow {
                name: col(&r, 1)?,
                schema: col(&r, 2)?,
                typtype: col(&r, 3)?,
                typcategory: col(&r, 4)?,
                typelem: col(&r, 5)?,
                typbasetype: col(&r, 6)?,
                typtypmod: col(&r, 7)?,
                typndims: col(&r, 8)?,
                typlen: col(&r, 9)?,
                typdelim: delim.bytes().next().unwrap_or(b','),
                enum_labels: col(&r, 11)?,
                fields: names
                    .into_iter()
                    .zip(types)
                    .zip(mods)
                    .zip(dims)
                    .map(|(((n, t), m), d)| (n, t, m, d))
                    .collect(),
                rngsubtype: col(&r, 16)?,
                multirange_of: col(&r, 17)?,
            };
            let oid: u32 = col(&r, 0)?;
            for dep in [
                row.typelem,
                row.typbasetype,
                row.rngsubtype,
                row.multirange_of,
            ]
            .into_iter()
            .chain(row.fields.iter().map(|f| f.1))
            {
                if dep != 0 && !cat.rows.contains_key(&dep) && dep != oid {
                    next.push(dep);
                }
            }
            cat.rows.insert(oid, row);
        }
        next.retain(|o| !cat.rows.contains_key(o));
        next.sort_unstable();
        next.dedup();
        pending = next;
    }
    if cat.rows.contains_key(&oid::MONEY) {
        // What the server's lc_monetary prints for one unit: its digits after the first
        // are the fraction digits (`$1.00`: 2, `¥1`: 0).
        let row = client
            .query_one("SELECT (1::money)::text", &[])
            .await
            .map_err(PgError::sql("read the money format"))?;
        let text: String = col(&row, 0)?;
        let digits = text.chars().filter(char::is_ascii_digit).count();
        cat.money_fraction_digits = digits.saturating_sub(1) as u32;
    }
    Ok(cat)
}

/// The planner's row estimate of a table (`pg_class.reltuples`); `None` before its first
/// VACUUM/ANALYZE.
pub async fn row_estimate(client: &Client, oid: u32) -> Result<Option<u64>, PgError> {
    let row = client
        .query_one(
            "SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = $1",
            &[&oid],
        )
        .await
        .map_err(PgError::sql("read the table's row estimate"))?;
    let n: f64 = row
        .try_get(0)
        .map_err(PgError::sql("read the table's row estimate"))?;
    Ok((n >= 0.0).then_some(n.round() as u64))
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
    row.map(|r| col(&r, 0))
        .transpose()?
        .ok_or_else(|| PgError::Config(format!("table {t} does not exist")))
}

/// What a publication sends of a table: its columns by name, and the row filter
/// (PostgreSQL 15+), so that a snapshot reads what the stream sends.
#[derive(Debug, Default)]
pub struct Published {
    /// The published columns: a publication's column list, else every column but the
    /// generated ones (PostgreSQL 18 publishes stored ones when the publication says
    /// `publish_generated_columns = stored`).
    pub columns: Vec<String>,
    /// The publication's `WHERE` for the table, as PostgreSQL prints it.
    pub row_filter: Option<String>,
}

pub async fn published(
    client: &Client,
    publication: &str,
    t: &TableName,
    oid: u32,
) -> Result<Published, PgError> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .map_err(PgError::sql("read the server version"))?
        .try_get(0)
        .map_err(PgError::sql("read the server version"))?;
    // Every column, and whether it is generated.
    let all: Vec<(String, bool)> = client
        .query(
            "SELECT attname::text, attgenerated <> '' FROM pg_catalog.pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(PgError::sql(format!("read the columns of {t}")))?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect::<Result<_, PgError>>()?;
    // PostgreSQL 15+: the view says what the publication sends (from 18 on, generated
    // columns included when it publishes them; before, the view lists them, but pgoutput
    // never sends them).
    let listed = if version >= 150000 {
        client
            .query_opt(
                "SELECT attnames::text[], rowfilter FROM pg_catalog.pg_publication_tables \
                 WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                &[&publication, &t.schema, &t.name],
            )
            .await
            .map_err(PgError::sql(format!(
                "read what publication {publication} sends of {t}"
            )))?
            .map(|row| -> Result<_, PgError> {
                Ok((
                    col::<Option<Vec<String>>>(&row, 0)?,
                    col::<Option<String>>(&row, 1)?,
                ))
            })
            .transpose()?
    } else {
        None
    };
    let (names, row_filter) = listed.unwrap_or((None, None));
    let columns = all
        .into_iter()
        .filter(|(name, generated)| match &names {
            Some(names) if version >= 180000 => names.contains(name),
            Some(names) => !generated && names.contains(name),
            None => !generated,
        })
        .map(|(name, _)| name)
        .collect();
    Ok(Published {
        columns,
        row_filter,
    })
}

/// Merges a Relation message (authoritative for names, types and key flags at that point
/// of the stream) with the catalog's nullability and type descriptions. Columns whose
/// type the catalog read does not describe (the type changed since) get
/// [`TypeInfo::base`]; [`relation_table`] fills those in.
pub fn relation_to_table(rel: &crate::pgoutput::Relation, catalog: Option<&Table>) -> Arc<Table> {
    Arc::new(merge_relation(rel, catalog))
}

fn merge_relation(rel: &crate::pgoutput::Relation, catalog: Option<&Table>) -> Table {
    let columns = rel
        .columns
        .iter()
        .map(|c| {
            let cat = catalog.and_then(|t| t.columns.iter().find(|cc| cc.name == c.name));
            let same_type =
                cat.filter(|cc| cc.type_oid == c.type_oid && cc.type_modifier == c.type_modifier);
            Column {
                name: c.name.clone(),
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
                type_name: same_type.map(|cc| cc.type_name.clone()).unwrap_or_default(),
                pg_type: same_type.map_or_else(
                    || TypeInfo::base(c.type_oid, c.type_modifier, ""),
                    |cc| cc.pg_type.clone(),
                ),
                // By name: the catalog may already be a later shape (type changed since).
                default_text: cat.and_then(|cc| cc.default_text.clone()),
                // Unknown to the catalog (dropped since): nullable is the safe choice. Key
                // columns are NOT NULL, except the whole row under REPLICA IDENTITY FULL.
                nullable: cat.is_none_or(|cc| cc.nullable)
                    && !(c.key && rel.replica_identity != b'f'),
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
    Table {
        id: rel.id,
        name: TableName::new(rel.namespace.clone(), rel.name.clone()),
        columns,
        replica_identity: rel.replica_identity as char,
    }
}

/// The table shape of a Relation message: [`relation_to_table`] with the catalog read
/// now, plus type descriptions for columns whose type differs from the catalog's.
pub async fn relation_table(
    client: &Client,
    rel: &crate::pgoutput::Relation,
) -> Result<Arc<Table>, PgError> {
    let catalog = table_by_oid(client, rel.id).await?;
    let mut table = merge_relation(rel, catalog.as_ref());
    let missing: Vec<u32> = table
        .columns
        .iter()
        .filter(|c| c.pg_type.schema.is_empty())
        .map(|c| c.type_oid)
        .collect();
    if !missing.is_empty() {
        let types = load_types(client, &missing).await?;
        for c in table
            .columns
            .iter_mut()
            .filter(|c| c.pg_type.schema.is_empty())
        {
            c.pg_type = types.build(c.type_oid, c.type_modifier, 0);
            c.type_name = c.pg_type.name.clone();
        }
    }
    Ok(Arc::new(table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_defaults_table() {
        let cases = [
            ("0", Some("0")),
            ("(-1)", Some("-1")),
            ("'-1'::integer", Some("-1")),
            ("1.5", Some("1.5")),
            ("true", Some("true")),
            ("'abc'::text", Some("abc")),
            ("'it''s'::character varying", Some("it's")),
            ("'2020-01-01'::date", Some("2020-01-01")),
            ("now()", None),
            ("nextval('t_id_seq'::regclass)", None),
            ("('a'::text || 'b'::text)", None),
            ("CURRENT_TIMESTAMP", None),
            ("'x", None),
        ];
        for (expr, want) in cases {
            assert_eq!(constant_default(expr).as_deref(), want, "{expr}");
        }
    }

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

//! After a resumed snapshot: which streamed changes a later snapshot piece already holds.
//!
//! Piece *i* read its rows (those after `pieces[i].after`, up to the next piece's start)
//! in a database snapshot taken at `pieces[i].lsn`. The stream starts at the first
//! piece's point, so a change committed before the point of the piece holding its row
//! is already in that row: it is skipped. Changes committed at or after the newest
//! piece's point always pass, so the filter costs nothing once the stream is past it.
//!
//! Rows are ordered by table (the snapshot's order), then by key (its columns in the
//! snapshot's [`sluice_core::KeyOrder`]) in PostgreSQL's order for the key columns' types
//! and collations: integer keys are compared here, others by asking PostgreSQL.

use std::cmp::Ordering;
use std::collections::HashMap;

use sluice_core::{Lsn, RowKey, SnapshotProgress, Table, TableName};

use crate::catalog::{self, qualified, quote_literal};
use crate::error::PgError;

pub struct SnapshotFilter {
    progress: SnapshotProgress,
    last: Lsn,
    order: HashMap<TableName, usize>,
    /// Per table: the order to compare key columns in (positions among them) and how to
    /// compare them, loaded on first use.
    casts: HashMap<TableName, (Vec<usize>, KeyCasts)>,
}

enum KeyCasts {
    /// Every key column is an integer: compare in Rust.
    Integers,
    /// (type, collation) per key column.
    Sql(Vec<(String, Option<String>)>),
}

impl SnapshotFilter {
    /// A filter when the pieces' points differ (a resumed snapshot); `None` otherwise.
    pub fn new(progress: SnapshotProgress) -> Option<SnapshotFilter> {
        let first = progress.pieces.first()?.lsn;
        let last = progress.last_lsn();
        if last <= first {
            return None;
        }
        let order = progress
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Some(SnapshotFilter {
            progress,
            last,
            order,
            casts: HashMap::new(),
        })
    }

    /// Whether a change committed at `commit_lsn` to the row of `table` with `key` (the
    /// key columns as PostgreSQL prints them; `None` when unknown) is to be emitted.
    pub async fn keep(
        &mut self,
        sql: &tokio_postgres::Client,
        table: &Table,
        key: Option<&[String]>,
        commit_lsn: Lsn,
    ) -> Result<bool, PgError> {
        if commit_lsn >= self.last {
            return Ok(true);
        }
        let Some(&idx) = self.order.get(&table.name) else {
            return Ok(true);
        };
        // The piece holding the row: the last whose start lies before it.
        let mut point = self.progress.pieces[0].lsn;
        for i in 1..self.progress.pieces.len() {
            let Some(after) = self.progress.pieces[i].after.clone() else {
                continue;
            };
            if self.cmp_row(sql, table, idx, key, &after).await? == Ordering::Greater {
                point = self.progress.pieces[i].lsn;
            } else {
                break;
            }
        }
        Ok(commit_lsn >= point)
    }

    /// Orders the row (`idx`, `key`) against a piece's start `after`.
    async fn cmp_row(
        &mut self,
        sql: &tokio_postgres::Client,
        table: &Table,
        idx: usize,
        key: Option<&[String]>,
        after: &RowKey,
    ) -> Result<Ordering, PgError> {
        let after_idx = self.order.get(&after.table).copied().unwrap_or(usize::MAX);
        if idx != after_idx {
            return Ok(idx.cmp(&after_idx));
        }
        match (key, after.key.as_deref()) {
            // A piece starting inside a table without a key read that whole table again;
            // a row whose key is unknown is counted in the later piece.
            (_, None) | (None, _) => Ok(Ordering::Greater),
            (Some(a), Some(b)) => self.cmp_keys(sql, table, a, b).await,
        }
    }

    async fn cmp_keys(
        &mut self,
        sql: &tokio_postgres::Client,
        table: &Table,
        a: &[String],
        b: &[String],
    ) -> Result<Ordering, PgError> {
        if !self.casts.contains_key(&table.name) {
            let perm = catalog::key_order(sql, table, self.progress.key_order).await?;
            let casts = load_casts(sql, table).await?;
            self.casts.insert(table.name.clone(), (perm, casts));
        }
        let (perm, casts) = &self.casts[&table.name];
        if a.len() != perm.len() || b.len() != perm.len() {
            return Err(PgError::Config(format!(
                "the key of {} changed while a resumed snapshot was being streamed",
                table.name
            )));
        }
        let a: Vec<&str> = perm.iter().map(|&p| a[p].as_str()).collect();
        let b: Vec<&str> = perm.iter().map(|&p| b[p].as_str()).collect();
        match casts {
            KeyCasts::Integers => {
                let parse =
                    |v: &[&str]| -> Option<Vec<i64>> { v.iter().map(|s| s.parse().ok()).collect() };
                match (parse(&a), parse(&b)) {
                    (Some(x), Some(y)) => Ok(x.cmp(&y)),
                    _ => Err(PgError::protocol(
                        "snapshot filter",
                        format!("integer key of {} is not a number", table.name),
                    )),
                }
            }
            KeyCasts::Sql(cols) => {
                let row = |v: &[&str]| -> String {
                    let parts: Vec<String> = v
                        .iter()
                        .zip(perm.iter().map(|&p| &cols[p]))
                        .map(|(s, (ty, coll))| {
                            let mut e = format!("CAST({} AS {ty})", quote_literal(s));
                            if let Some(c) = coll {
                                e.push_str(&format!(" COLLATE {c}"));
                            }
                            e
                        })
                        .collect();
                    format!("ROW({})", parts.join(", "))
                };
                let q = format!(
                    "SELECT CASE WHEN {a} < {b} THEN -1 WHEN {a} = {b} THEN 0 ELSE 1 END",
                    a = row(&a),
                    b = row(&b)
                );
                let r = sql
                    .query_one(&q, &[])
                    .await
                    .map_err(PgError::sql(format!("order keys of {}", table.name)))?;
                Ok(r.get::<_, i32>(0).cmp(&0))
            }
        }
    }
}

/// The key columns' types and collations, as the catalog has them now.
async fn load_casts(sql: &tokio_postgres::Client, table: &Table) -> Result<KeyCasts, PgError> {
    const INTEGERS: [u32; 4] = [20, 21, 23, 26];
    let keys: Vec<_> = table.columns.iter().filter(|c| c.key).collect();
    if keys.iter().all(|c| INTEGERS.contains(&c.type_oid)) {
        return Ok(KeyCasts::Integers);
    }
    let mut cols = Vec::new();
    for c in keys {
        let q = format!(
            "SELECT format_type(a.atttypid, a.atttypmod), \
                    CASE WHEN a.attcollation = 0 THEN NULL \
                         ELSE quote_ident(n.nspname) || '.' || quote_ident(co.collname) END \
             FROM pg_attribute a \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation \
             LEFT JOIN pg_namespace n ON n.oid = co.collnamespace \
             WHERE a.attrelid = {}::regclass AND a.attname = {}",
            quote_literal(&qualified(&table.name)),
            quote_literal(&c.name)
        );
        let r = sql.query_one(&q, &[]).await.map_err(PgError::sql(format!(
            "read the key column types of {}",
            table.name
        )))?;
        cols.push((r.get::<_, String>(0), r.get::<_, Option<String>>(1)));
    }
    Ok(KeyCasts::Sql(cols))
}

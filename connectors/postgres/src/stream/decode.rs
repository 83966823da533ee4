//! pgoutput messages to change events: relation cache, transaction state, tuples to rows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sluice_core::{
    Change, EventBatch, Lsn, Message, Op, Row, SnapshotMarker, SourceEvent, SourceInfo, Table,
    TableName, TxnInfo, Value,
};

use super::filter::SnapshotFilter;
use super::{toast, Context, PG_EPOCH_OFFSET_US};
use crate::binary::{self, parse_binary};
use crate::error::PgError;
use crate::pgoutput::{Decoder, OldKind, PgOutput, TupleValue};
use crate::text::{parse_column, Notes};
use crate::ToastMode;
use crate::{catalog, ddl};

pub struct State {
    pub decoder: Decoder,
    /// Relation id → its table and the arrival number of the Relation message it is from.
    relations: HashMap<u32, (Arc<Table>, u64)>,
    /// Number of the message being handled, counted in arrival order (a streamed
    /// transaction's staged messages keep theirs).
    pub arrival: u64,
    pub txn: Option<TxnInfo>,
    ordinal: u64,
    /// Highest WAL position received.
    pub received: Lsn,
    /// Highest position handed to the sink as an acknowledgement point.
    pub last_ack_point: Lsn,
    /// End LSN of the last transaction committed (the start point before the first).
    last_commit_end: Lsn,
    /// The server asked for an immediate status update.
    pub reply_requested: bool,
    /// WAL position of the record the current message decodes.
    pub record_lsn: Lsn,
    /// After a resumed snapshot: skips changes a later snapshot piece holds.
    pub filter: Option<SnapshotFilter>,
    /// Send time of the current XLogData, Unix µs (a non-transactional message's time).
    pub send_ts_us: i64,
}

/// The relation cache as it was before a streamed transaction's replay.
pub struct Relations(HashMap<u32, (Arc<Table>, u64)>);

impl State {
    /// The relation cache now (to restore entries a replay must not overwrite).
    pub fn relations(&self) -> Relations {
        Relations(self.relations.clone())
    }

    /// After a replay: where a Relation message staged by the streamed transaction
    /// arrived before the one already known, the known one stays. (pgoutput counts the
    /// newer description as the one the receiver holds; a staged one can be older when
    /// the table changed after the transaction rolled back the savepoint that used it.)
    pub fn keep_newer_relations(&mut self, before: Relations) {
        for (id, (table, arrived)) in before.0 {
            match self.relations.get(&id) {
                Some((_, now)) if *now >= arrived => {}
                _ => {
                    self.relations.insert(id, (table, arrived));
                }
            }
        }
    }

    pub fn new(start: Lsn) -> Self {
        State {
            decoder: Decoder::new(),
            relations: HashMap::new(),
            arrival: 0,
            txn: None,
            ordinal: 0,
            received: start,
            last_ack_point: start,
            last_commit_end: start,
            reply_requested: false,
            record_lsn: Lsn::ZERO,
            filter: None,
            send_ts_us: 0,
        }
    }
}

pub async fn on_message(
    ctx: &Context<'_>,
    st: &mut State,
    m: PgOutput,
    out: &mut EventBatch,
) -> Result<(), PgError> {
    let ev = match m {
        PgOutput::Begin { final_lsn, ts, xid } => {
            let info = TxnInfo {
                xid,
                final_lsn,
                commit_ts_us: ts + PG_EPOCH_OFFSET_US,
            };
            st.txn = Some(info.clone());
            st.ordinal = 0;
            SourceEvent::Begin(info)
        }
        PgOutput::Commit {
            commit_lsn,
            end_lsn,
            ts,
            ..
        } => {
            st.txn = None;
            st.last_ack_point = st.last_ack_point.max(end_lsn);
            st.last_commit_end = end_lsn;
            SourceEvent::Commit {
                commit_lsn,
                end_lsn,
                commit_ts_us: ts + PG_EPOCH_OFFSET_US,
            }
        }
        PgOutput::Relation(rel) => {
            let table = catalog::relation_table(ctx.sql, &rel).await?;
            tracing::debug!(table = %table.name, columns = table.columns.len(), "relation");
            if ctx.binary
                && ctx.tables.contains(&table.name)
                && !binary::table_binary_capable(&table)
            {
                ctx.stats.binary_refused.store(true, Ordering::Relaxed);
                let column = table
                    .columns
                    .iter()
                    .find(|c| {
                        !binary::binary_capable(&c.pg_type)
                            || (c.key && !binary::value_is_key_text(&c.pg_type))
                    })
                    .map(|c| format!("{} {}", c.name, c.type_name))
                    .unwrap_or_default();
                return Err(PgError::BinaryMode {
                    table: table.name.to_string(),
                    column,
                });
            }
            st.relations.insert(rel.id, (table, st.arrival));
            return Ok(());
        }
        PgOutput::Insert { relation, new, .. } => {
            let Some(table) = table_for(&ctx.tables, st, relation)? else {
                return Ok(());
            };
            if !keep(ctx, st, &table, Some(&new)).await? {
                return Ok(());
            }
            let mut notes = Notes::keeping(ctx.keep_special_numerics);
            let mut after = tuple_to_row(&table, &new, false, &mut notes)?;
            notes.record(&ctx.stats, &table.name);
            resolve_unchanged(ctx, &table, &new, None, &mut after).await?;
            change(st, table, Op::Create, None, Some(after))
        }
        PgOutput::Update {
            relation, old, new, ..
        } => {
            let Some(table) = table_for(&ctx.tables, st, relation)? else {
                return Ok(());
            };
            // The old key decides when the key changed: the row delivered under it must
            // not be left behind.
            let keyed = old.as_ref().map_or(&new, |(_, t)| t);
            if !keep(ctx, st, &table, Some(keyed)).await? {
                return Ok(());
            }
            let mut notes = Notes::keeping(ctx.keep_special_numerics);
            let before = match &old {
                Some((kind, t)) => {
                    Some(tuple_to_row(&table, t, *kind == OldKind::Key, &mut notes)?)
                }
                None => None,
            };
            let mut after = tuple_to_row(&table, &new, false, &mut notes)?;
            notes.record(&ctx.stats, &table.name);
            resolve_unchanged(ctx, &table, &new, before.as_ref(), &mut after).await?;
            change(st, table, Op::Update, before, Some(after))
        }
        PgOutput::Delete {
            relation,
            kind,
            old,
            ..
        } => {
            let Some(table) = table_for(&ctx.tables, st, relation)? else {
                return Ok(());
            };
            if !keep(ctx, st, &table, Some(&old)).await? {
                return Ok(());
            }
            let mut notes = Notes::keeping(ctx.keep_special_numerics);
            let before = tuple_to_row(&table, &old, kind == OldKind::Key, &mut notes)?;
            notes.record(&ctx.stats, &table.name);
            change(st, table, Op::Delete, Some(before), None)
        }
        PgOutput::Truncate { relations, .. } => {
            for r in relations {
                if let Some(table) = table_for(&ctx.tables, st, r)? {
                    if keep(ctx, st, &table, None).await? {
                        out.push(change(st, table, Op::Truncate, None, None));
                    }
                }
            }
            return Ok(());
        }
        PgOutput::Message {
            transactional,
            lsn,
            prefix,
            content,
            ..
        } => return on_logical_message(ctx, st, transactional, lsn, prefix, content, out).await,
        PgOutput::Origin { .. } | PgOutput::Type { .. } => return Ok(()),
        other => {
            // Stream control messages are handled before this (stream::spill) when
            // streaming was asked for, and two-phase never is: receiving one here means
            // a protocol mismatch.
            return Err(PgError::protocol(
                "replication",
                format!(
                    "message not expected (streaming not asked for, two-phase never): {other:?}"
                ),
            ));
        }
    };
    out.push(ev);
    Ok(())
}

/// A logical decoding message: captured DDL becomes a schema event for a configured
/// table; a wanted user message becomes a message event. A transactional message takes
/// an ordinal in its transaction whatever becomes of it, so ordinals do not depend on
/// the configuration. A non-transactional one stands alone: it is framed as a
/// transaction of its own. Its `lsn` is the end of its WAL record (where the next record
/// starts), so it is confirmed as `lsn` — every transaction that committed before it was
/// sent before it, and PostgreSQL does not send it again from there — and positioned at
/// `lsn - 1`, inside its record, so that the confirmed position covers it.
async fn on_logical_message(
    ctx: &Context<'_>,
    st: &mut State,
    transactional: bool,
    lsn: Lsn,
    prefix: String,
    content: bytes::Bytes,
    out: &mut EventBatch,
) -> Result<(), PgError> {
    tracing::debug!(%lsn, transactional, prefix, "logical message");
    let in_txn = transactional && st.txn.is_some();
    if in_txn && ctx.ddl_capture && prefix == ddl::DDL_PREFIX {
        let source = source_info(st);
        st.ordinal += 1;
        // Any role may write a message with this prefix: one that does not parse is
        // skipped (counted, logged); the table's change is then seen at its next row.
        let mut rel = match ddl::parse(&content) {
            Ok(rel) => rel,
            Err(e) => {
                ctx.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%lsn, error = %e, "captured DDL message skipped");
                return Ok(());
            }
        };
        let name = TableName::new(&rel.namespace, &rel.name);
        if ctx.tables.contains(&name) {
            // The trigger lists the table's columns; the stream sends the publication's
            // (its column list): the shape keeps those (as the catalog has them now; when
            // it says nothing, the table is gone and the shape stays as captured).
            let published = catalog::published(ctx.sql, &ctx.publication, &name, rel.id).await?;
            if !published.columns.is_empty() {
                rel.columns.retain(|c| published.columns.contains(&c.name));
            }
            let table = catalog::relation_table(ctx.sql, &rel).await?;
            tracing::info!(table = %table.name, columns = table.columns.len(), "table shape from captured DDL");
            out.push(SourceEvent::Schema { table, source });
        }
        return Ok(());
    }
    if !ctx.messages.wants(&prefix) {
        if in_txn {
            st.ordinal += 1;
        }
        return Ok(());
    }
    let mut source = source_info(st);
    let at = Lsn(lsn.0.saturating_sub(1));
    if in_txn {
        st.ordinal += 1;
    } else {
        let commit_ts_us = st.send_ts_us;
        source = SourceInfo {
            lsn,
            commit_lsn: at,
            ordinal: 0,
            last_commit_lsn: Some(st.last_commit_end),
            xid: None,
            commit_ts_us,
            snapshot: SnapshotMarker::False,
            row_key: None,
        };
        out.push(SourceEvent::Begin(TxnInfo {
            xid: 0,
            final_lsn: at,
            commit_ts_us,
        }));
    }
    source.lsn = lsn;
    out.push(SourceEvent::Message(Message {
        prefix,
        content: content.to_vec(),
        transactional: in_txn,
        source,
    }));
    if !in_txn {
        st.last_ack_point = st.last_ack_point.max(lsn);
        out.push(SourceEvent::Commit {
            commit_lsn: at,
            end_lsn: lsn,
            commit_ts_us: st.send_ts_us,
        });
    }
    Ok(())
}

/// Whether a change passes the resumed snapshot's filter. A skipped change still takes
/// its ordinal, so ordinals stay the same whatever is filtered.
async fn keep(
    ctx: &Context<'_>,
    st: &mut State,
    table: &Table,
    tuple: Option<&[TupleValue]>,
) -> Result<bool, PgError> {
    let Some(filter) = st.filter.as_mut() else {
        return Ok(true);
    };
    let commit_lsn = st.txn.as_ref().map(|t| t.final_lsn).unwrap_or_default();
    let key: Option<Vec<String>> = tuple.and_then(|t| {
        table
            .columns
            .iter()
            .zip(t)
            .filter(|(c, _)| c.key)
            .map(|(c, v)| match v {
                TupleValue::Text(b) => Some(String::from_utf8_lossy(b).into_owned()),
                TupleValue::Binary(b) => binary::key_text(&c.pg_type, b),
                _ => None,
            })
            .collect()
    });
    let key = key.filter(|k| !k.is_empty());
    if filter
        .keep(ctx.sql, table, key.as_deref(), commit_lsn)
        .await?
    {
        return Ok(true);
    }
    st.ordinal += 1;
    ctx.stats
        .snapshot_overlap_skipped
        .fetch_add(1, Ordering::Relaxed);
    Ok(false)
}

/// Fills unchanged TOASTed values ('u'): from the old row when it has them (REPLICA
/// IDENTITY FULL), else re-read by key (`toast: reselect`), else they stay
/// [`Value::Unchanged`] (`toast: placeholder`, encoded as an explicit marker).
async fn resolve_unchanged(
    ctx: &Context<'_>,
    table: &Table,
    new: &[TupleValue],
    before: Option<&Row>,
    after: &mut Row,
) -> Result<(), PgError> {
    let mut missing: Vec<usize> = Vec::new();
    for (i, v) in after.iter_mut().enumerate() {
        if *v != Value::Unchanged {
            continue;
        }
        match before.and_then(|b| b.get(i)) {
            Some(old) if !matches!(old, Value::Unchanged | Value::Absent) => *v = old.clone(),
            _ => missing.push(i),
        }
    }
    if missing.is_empty() || ctx.toast == ToastMode::Placeholder {
        return Ok(());
    }
    match toast::reselect(ctx.sql, table, new, &missing, ctx.keep_special_numerics).await? {
        Some(values) => {
            ctx.stats.toast_reselects.fetch_add(1, Ordering::Relaxed);
            for (i, v) in missing.into_iter().zip(values) {
                after[i] = v;
            }
        }
        None => {
            // The row is gone (deleted later in the stream): nothing to read. The
            // placeholder stays, explicitly, and is counted.
            ctx.stats.toast_unavailable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(table = %table.name, "unchanged TOAST value could not be re-read (row no longer exists); emitting the placeholder");
        }
    }
    Ok(())
}

/// The table for a relation id, or `None` if the table is not configured.
fn table_for(
    tables: &HashSet<TableName>,
    st: &State,
    relation: u32,
) -> Result<Option<Arc<Table>>, PgError> {
    let (t, _) = st.relations.get(&relation).ok_or_else(|| {
        PgError::protocol(
            "replication",
            format!("row change for relation {relation} before its Relation message"),
        )
    })?;
    Ok(tables.contains(&t.name).then(|| t.clone()))
}

fn change(
    st: &mut State,
    table: Arc<Table>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
) -> SourceEvent {
    let source = source_info(st);
    st.ordinal += 1;
    SourceEvent::Change(Change {
        table,
        op,
        before,
        after,
        source,
    })
}

/// Where the current message sits: its record, transaction and ordinal.
fn source_info(st: &State) -> SourceInfo {
    let txn = st.txn.as_ref();
    SourceInfo {
        lsn: st.record_lsn,
        commit_lsn: txn.map(|t| t.final_lsn).unwrap_or_default(),
        ordinal: st.ordinal,
        last_commit_lsn: Some(st.last_commit_end),
        xid: txn.map(|t| t.xid),
        commit_ts_us: txn.map(|t| t.commit_ts_us).unwrap_or_default(),
        snapshot: SnapshotMarker::False,
        row_key: None,
    }
}

/// With `key_only` (an old tuple of the replica identity key), non-key columns are
/// [`Value::Absent`]: the source did not send them. Values changed to fit the event
/// format are counted in `notes`.
pub fn tuple_to_row(
    table: &Table,
    tuple: &[TupleValue],
    key_only: bool,
    notes: &mut Notes,
) -> Result<Row, PgError> {
    if tuple.len() != table.columns.len() {
        return Err(PgError::protocol(
            "replication",
            format!(
                "tuple for {} has {} columns, relation has {}",
                table.name,
                tuple.len(),
                table.columns.len()
            ),
        ));
    }
    tuple
        .iter()
        .zip(&table.columns)
        .map(|(v, c)| match v {
            TupleValue::Null if key_only && !c.key => Ok(Value::Absent),
            TupleValue::Null => Ok(Value::Null),
            TupleValue::Unchanged => Ok(Value::Unchanged),
            TupleValue::Text(b) => parse_column(c, b, notes).map_err(|e| {
                PgError::Config(format!(
                    "table {}, column {} ({}): {e}",
                    table.name, c.name, c.type_name
                ))
            }),
            TupleValue::Binary(b) => parse_binary(&c.pg_type, b, c.nullable, notes).map_err(|e| {
                PgError::Config(format!(
                    "table {}, column {} ({}): {e}",
                    table.name, c.name, c.type_name
                ))
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Arc<Table> {
        Arc::new(Table {
            id: 1,
            name: TableName::new("public", name),
            columns: Vec::new(),
            replica_identity: 'd',
        })
    }

    #[test]
    fn after_a_replay_the_newer_relation_description_stays() {
        let mut st = State::new(Lsn::ZERO);
        // Known before the replay: relation 1 from arrival 10, relation 2 from 30.
        st.relations.insert(1, (table("one-live"), 10));
        st.relations.insert(2, (table("two-live"), 30));
        let before = st.relations();
        // The replay applies staged descriptions: 1 staged at 20 (newer), 2 at 5
        // (older, e.g. from a savepoint rolled back before the table changed), 3 new.
        st.relations.insert(1, (table("one-staged"), 20));
        st.relations.insert(2, (table("two-staged"), 5));
        st.relations.insert(3, (table("three-staged"), 6));
        st.keep_newer_relations(before);
        let name = |id: u32| st.relations[&id].0.name.name.clone();
        assert_eq!(name(1), "one-staged");
        assert_eq!(name(2), "two-live");
        assert_eq!(name(3), "three-staged");
        assert_eq!(st.relations[&2].1, 30);
    }
}

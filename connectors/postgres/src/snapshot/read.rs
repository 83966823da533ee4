//! Reading one range of one table: `COPY (SELECT … WHERE range ORDER BY key) TO STDOUT`
//! (binary when every column has a binary reader) parsed into rows as the bytes arrive,
//! handed on in batches through a bounded channel.

use std::sync::Arc;

use futures_util::StreamExt;
use sluice_core::{
    Change, EventBatch, KeyOrder, Op, Row, RowKeyText, SourceEvent, SourceInfo, Table, TableName,
    Value, MAX_EVENT_BATCH,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

use super::reader::Reader;

use crate::binary;
use crate::catalog::{self, qualified, quote_ident, quote_literal};
use crate::copy::{self, CopyDecoder, Format};
use crate::error::PgError;
use crate::text::{parse_column, Notes};

/// Bytes (as read from PostgreSQL) a range may hold in its buffer before its reader
/// waits for the emitter: a bound on memory whatever the rows' size.
pub const READ_AHEAD_BYTES: usize = 32 << 20;

/// Rows handed on together as events (op `r`, ordinals still to be set), with their room
/// in the range's byte budget (given back when the emitter drops the batch).
pub struct RangeBatch {
    pub events: EventBatch,
    _room: OwnedSemaphorePermit,
}

/// Where a key column's text (for the progress a row carries) comes from.
enum KeyText {
    /// A field of the COPY row, as text.
    Field(usize),
    /// The column's value, whose text is exactly PostgreSQL's.
    Value(usize),
}

/// How one table is read (shared by its ranges).
pub struct TablePlan {
    pub name: TableName,
    pub table: Arc<Table>,
    pub estimate: Option<u64>,
    format: Format,
    select: Vec<String>,
    /// The table's own key columns (quoted) in the order rows are read and emitted in.
    order: Vec<String>,
    /// The column `order` starts with (ranges split on it).
    first: Option<usize>,
    key_text: Vec<KeyText>,
    /// When every key column's text comes from its value: their positions (the text is
    /// made only for the rows whose position is committed).
    key_columns: Option<Arc<[usize]>>,
    /// Only rows after the resume point (a condition on the key).
    resume: Option<String>,
    /// The publication's row filter.
    row_filter: Option<String>,
}

impl TablePlan {
    /// Reads the table's shape (in the snapshot) and decides how to read it.
    /// `resume_key`: continue after this key (the table where the last stop was), read
    /// in `key_order`.
    pub async fn new(
        client: &Client,
        publication: &str,
        t: &TableName,
        resume_key: Option<&[String]>,
        key_order: KeyOrder,
    ) -> Result<TablePlan, PgError> {
        let oid = catalog::table_oid(client, t).await?;
        let mut table = catalog::table_by_oid(client, oid)
            .await?
            .ok_or_else(|| PgError::Config(format!("table {t} vanished during the snapshot")))?;
        // Only what the stream sends: the publication's columns (no generated ones unless
        // it publishes them) and rows (its row filter).
        let published = catalog::published(client, publication, t, oid).await?;
        table
            .columns
            .retain(|c| published.columns.contains(&c.name));
        // Events keyed as the stream keys them; the order (and resume point) only by a
        // key of the table's own: a whole row may hold types without an order.
        let own_key = catalog::key_as_streamed(&mut table);
        let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let key_idx: Vec<usize> = (0..table.columns.len())
            .filter(|&i| own_key && table.columns[i].key)
            .collect();
        let perm = if own_key {
            catalog::key_order(client, &table, key_order).await?
        } else {
            Vec::new()
        };
        let order: Vec<String> = perm.iter().map(|&p| cols[key_idx[p]].clone()).collect();
        let first = perm.first().map(|&p| key_idx[p]);
        // Binary when every column has a binary reader (cheaper for both sides); the key
        // text a row's progress carries comes from the value when its text is the value's,
        // else from an extra `CAST(key AS text)` column.
        let format = if table
            .columns
            .iter()
            .all(|c| binary::binary_capable(&c.pg_type))
        {
            Format::Binary
        } else {
            Format::Text
        };
        let mut select = cols.clone();
        let key_text: Vec<KeyText> = key_idx
            .iter()
            .map(|&i| {
                if format == Format::Text {
                    KeyText::Field(i)
                } else if binary::value_is_key_text(&table.columns[i].pg_type) {
                    KeyText::Value(i)
                } else {
                    select.push(format!("CAST({} AS text)", cols[i]));
                    KeyText::Field(select.len() - 1)
                }
            })
            .collect();
        // The resume point's table continues after its key (untyped literals take the
        // columns' types and collations, so the order is the index's).
        let resume = match resume_key {
            Some(k) if k.len() != order.len() => {
                return Err(PgError::Config(format!(
                    "cannot resume the snapshot of {t}: its key changed from {} to {} columns since the snapshot started. Fix: reset the position (delete the offsets record) to take a new snapshot",
                    k.len(),
                    order.len()
                )));
            }
            Some(k) => {
                let lits: Vec<String> = perm.iter().map(|&p| quote_literal(&k[p])).collect();
                Some(format!("({}) > ({})", order.join(", "), lits.join(", ")))
            }
            None => None,
        };
        let key_columns = (!key_text.is_empty())
            .then(|| {
                key_text
                    .iter()
                    .map(|k| match *k {
                        KeyText::Value(i) => Some(i),
                        KeyText::Field(_) => None,
                    })
                    .collect::<Option<Arc<[usize]>>>()
            })
            .flatten();
        let estimate = catalog::row_estimate(client, oid).await?;
        Ok(TablePlan {
            name: t.clone(),
            table: Arc::new(table),
            estimate,
            format,
            select,
            order,
            first,
            key_text,
            key_columns,
            resume,
            row_filter: published.row_filter,
        })
    }

    /// The column ranges split on (the first of the table's own key), if any.
    pub fn first_key(&self) -> Option<&sluice_core::Column> {
        self.first.map(|i| &self.table.columns[i])
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn resumed(&self) -> bool {
        self.resume.is_some()
    }

    /// The COPY statement for the range `(lower, upper]` of the first key column.
    fn copy_statement(&self, lower: Option<&str>, upper: Option<&str>) -> String {
        let mut conds: Vec<String> = self.resume.iter().cloned().collect();
        if let Some(filter) = &self.row_filter {
            conds.push(format!("({filter})"));
        }
        if let Some(first) = self.order.first() {
            if let Some(lo) = lower {
                conds.push(format!("{first} > {}", quote_literal(lo)));
            }
            if let Some(hi) = upper {
                conds.push(format!("{first} <= {}", quote_literal(hi)));
            }
        }
        let mut query = format!(
            "SELECT {} FROM {}",
            self.select.join(", "),
            qualified(&self.name)
        );
        if !conds.is_empty() {
            query.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        if !self.order.is_empty() {
            query.push_str(&format!(" ORDER BY {}", self.order.join(", ")));
        }
        match self.format {
            Format::Binary => format!("COPY ({query}) TO STDOUT (FORMAT binary)"),
            Format::Text => format!("COPY ({query}) TO STDOUT"),
        }
    }
}

/// One range of a table.
#[derive(Clone, Debug)]
pub struct Range {
    pub lower: Option<String>,
    pub upper: Option<String>,
}

/// Reads `range` of `plan`'s table on `reader` (inside the snapshot) and sends its rows,
/// in key order, as events with `source` (each with its row's key), in batches; each
/// batch first takes its bytes from `room` (a budget of [`READ_AHEAD_BYTES`] of this
/// range's own). Returns the connection for the next range, and the value notes to
/// record.
pub async fn read_range(
    mut reader: Reader,
    plan: Arc<TablePlan>,
    range: Range,
    keep_special_numerics: bool,
    source: SourceInfo,
    out: mpsc::Sender<RangeBatch>,
) -> Result<(Reader, Notes), PgError> {
    let room = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let send = |events: EventBatch, bytes: usize| {
        let room = room.clone();
        let out = out.clone();
        async move {
            let n = bytes.clamp(1, READ_AHEAD_BYTES) as u32;
            let permit = room
                .acquire_many_owned(n)
                .await
                .map_err(|_| PgError::PipelineClosed)?;
            out.send(RangeBatch {
                events,
                _room: permit,
            })
            .await
            .map_err(|_| PgError::PipelineClosed)
        }
    };
    let t = &plan.name;
    let statement = plan.copy_statement(range.lower.as_deref(), range.upper.as_deref());
    let context = format!("read snapshot of {t}");
    let mut stream = match &mut reader {
        Reader::Own(conn) => {
            conn.copy_out_start(&statement, &context).await?;
            None
        }
        Reader::Planner(client) => Some(Box::pin(
            client
                .copy_out(&statement)
                .await
                .map_err(PgError::sql(context.as_str()))?,
        )),
    };
    let mut decoder = CopyDecoder::new(plan.format);
    let mut raw = copy::Row::default();
    let mut notes = Notes::keeping(keep_special_numerics);
    let malformed = |detail: String| PgError::Malformed {
        context: format!("the snapshot of {t}"),
        detail,
    };
    let mut batch: EventBatch = Vec::with_capacity(MAX_EVENT_BATCH);
    let mut batch_bytes = 0usize;
    loop {
        // The next bytes of the COPY; `false` once it has ended.
        let more = match (&mut reader, &mut stream) {
            (Reader::Own(conn), _) => conn.copy_out_read(&context, |b| decoder.push(b)).await?,
            (Reader::Planner(_), Some(stream)) => match stream.next().await {
                Some(chunk) => {
                    decoder.push(&chunk.map_err(PgError::sql(context.as_str()))?);
                    true
                }
                None => false,
            },
            (Reader::Planner(_), None) => false,
        };
        while let Some(r) = decoder
            .next_row(&mut raw)
            .map_err(|e| malformed(e.to_string()))?
        {
            if r.len() != plan.select.len() {
                return Err(malformed(format!(
                    "a row has {} fields, the query selects {}",
                    r.len(),
                    plan.select.len()
                )));
            }
            let (row, row_key) = parse_row(&plan, r, &mut notes)?;
            batch.push(SourceEvent::Change(Change {
                table: plan.table.clone(),
                op: Op::Read,
                before: None,
                after: Some(row),
                source: SourceInfo {
                    row_key,
                    ..source.clone()
                },
            }));
            batch_bytes += r.value_bytes();
            if batch.len() == MAX_EVENT_BATCH || batch_bytes >= READ_AHEAD_BYTES / 8 {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(MAX_EVENT_BATCH));
                send(full, std::mem::take(&mut batch_bytes)).await?;
            }
        }
        if !more {
            break;
        }
    }
    drop(stream);
    decoder.finish().map_err(|e| malformed(e.to_string()))?;
    if !batch.is_empty() {
        send(batch, batch_bytes).await?;
    }
    Ok((reader, notes))
}

fn parse_row(
    plan: &TablePlan,
    raw: copy::RowRef<'_>,
    notes: &mut Notes,
) -> Result<(Row, Option<RowKeyText>), PgError> {
    let mut row = Vec::with_capacity(plan.table.columns.len());
    for (i, c) in plan.table.columns.iter().enumerate() {
        row.push(match raw.get(i) {
            None => Value::Null,
            Some(b) => match plan.format {
                Format::Binary => binary::parse_binary(&c.pg_type, b, c.nullable, notes),
                Format::Text => parse_column(c, b, notes),
            }
            .map_err(|e| PgError::Malformed {
                context: format!("the snapshot of {}, column {}", plan.name, c.name),
                detail: e.to_string(),
            })?,
        });
    }
    if let Some(cols) = &plan.key_columns {
        return Ok((row, Some(RowKeyText::Columns(cols.clone()))));
    }
    let key = (!plan.key_text.is_empty()).then(|| {
        RowKeyText::Text(
            plan.key_text
                .iter()
                .map(|k| match *k {
                    KeyText::Field(f) => {
                        String::from_utf8_lossy(raw.get(f).unwrap_or_default()).into_owned()
                    }
                    KeyText::Value(i) => row[i].key_text(),
                })
                .collect(),
        )
    });
    Ok((row, key))
}

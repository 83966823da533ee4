//! Re-reading unchanged TOASTed columns by key.
//!
//! pgoutput sends 'u' for a TOASTed value an UPDATE did not touch (even with REPLICA
//! IDENTITY FULL, in the new tuple). Rather than a null or a placeholder, Sluice reads
//! the column's current value by primary key. Caveat (documented): if the row changed
//! again after this update, the value read is the newer one; the later change's own
//! event follows in the stream.

use sluice_core::{Table, Value};
use tokio_postgres::SimpleQueryMessage;

use crate::catalog::{qualified, quote_ident, quote_literal};
use crate::error::PgError;
use crate::pgoutput::TupleValue;
use crate::text::{parse_column, Notes};

/// Reads columns `wanted` of the row whose key is in `new`. `None` if the row no longer
/// exists (or its key is not in the tuple).
pub async fn reselect(
    sql: &tokio_postgres::Client,
    table: &Table,
    new: &[TupleValue],
    wanted: &[usize],
    keep_special_numerics: bool,
) -> Result<Option<Vec<Value>>, PgError> {
    let mut conds = Vec::new();
    for (i, c) in table.columns.iter().enumerate() {
        if !c.key {
            continue;
        }
        let text = match new.get(i) {
            Some(TupleValue::Text(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(TupleValue::Binary(b)) => match crate::binary::key_text(&c.pg_type, b) {
                Some(t) => t,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        conds.push(format!(
            "{} = {}",
            quote_ident(&c.name),
            quote_literal(&text)
        ));
    }
    if conds.is_empty() {
        return Ok(None);
    }
    let cols: Vec<String> = wanted
        .iter()
        .map(|&i| quote_ident(&table.columns[i].name))
        .collect();
    let q = format!(
        "SELECT {} FROM {} WHERE {}",
        cols.join(", "),
        qualified(&table.name),
        conds.join(" AND ")
    );
    let msgs = sql.simple_query(&q).await.map_err(PgError::sql(format!(
        "re-read unchanged TOAST values of {}",
        table.name
    )))?;
    for m in msgs {
        if let SimpleQueryMessage::Row(r) = m {
            let mut out = Vec::with_capacity(wanted.len());
            for (j, &i) in wanted.iter().enumerate() {
                let c = &table.columns[i];
                out.push(match r.get(j) {
                    None => Value::Null,
                    Some(s) => {
                        parse_column(c, s.as_bytes(), &mut Notes::keeping(keep_special_numerics))
                            .map_err(|e| {
                                PgError::Config(format!(
                                    "table {}, column {}: {e}",
                                    table.name, c.name
                                ))
                            })?
                    }
                });
            }
            return Ok(Some(out));
        }
    }
    Ok(None)
}

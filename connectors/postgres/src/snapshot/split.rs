//! Splitting a large table into key ranges read by several connections: boundaries on
//! the first key column, so each range is a contiguous stretch of the key order the
//! snapshot emits rows in (range *i* holds the rows with `bounds[i-1] < k1 <= bounds[i]`).
//!
//! Integer keys are split evenly between their minimum and maximum (read through the
//! index); other types at the planner's histogram bounds (`pg_stats`, after ANALYZE).
//! Boundaries only decide how the work is shared: any ascending set is correct.

use sluice_core::{Column, TableName};
use tokio_postgres::Client;

use crate::catalog::{qualified, quote_ident};
use crate::error::PgError;

/// More ranges than this are not worth their queries.
const MAX_CHUNKS: u64 = 1024;

/// The boundaries (as PostgreSQL prints the column's values) splitting `t` into ranges of
/// about `chunk_rows` rows; empty: read the table in one go.
pub async fn bounds(
    client: &Client,
    t: &TableName,
    first_key: &Column,
    estimate: Option<u64>,
    chunk_rows: u64,
) -> Result<Vec<String>, PgError> {
    use tokio_postgres::types::Type;
    if chunk_rows == 0 {
        return Ok(Vec::new());
    }
    // Ranges of a column the key's index does not lead with would each scan the table.
    let leading: Option<String> = client
        .query_opt(
            "SELECT a.attname::text FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = $1::text::regclass AND (i.indisprimary OR i.indisreplident) \
             ORDER BY i.indisreplident DESC LIMIT 1",
            &[&qualified(t)],
        )
        .await
        .map_err(PgError::sql(format!("read the key index of {t}")))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(PgError::sql(format!("read the key index of {t}")))?;
    if leading.as_deref() != Some(first_key.name.as_str()) {
        tracing::info!(table = %t, column = %first_key.name, "not splitting the table into key ranges: its key index does not lead with the first key column");
        return Ok(Vec::new());
    }
    let col = quote_ident(&first_key.name);
    if [Type::INT2.oid(), Type::INT4.oid(), Type::INT8.oid()].contains(&first_key.type_oid) {
        let row = client
            .query_one(
                &format!(
                    "SELECT min({col})::int8, max({col})::int8 FROM {}",
                    qualified(t)
                ),
                &[],
            )
            .await
            .map_err(PgError::sql(format!("read the key range of {t}")))?;
        let range = row
            .try_get::<_, Option<i64>>(0)
            .and_then(|lo| Ok(lo.zip(row.try_get::<_, Option<i64>>(1)?)))
            .map_err(PgError::sql(format!("read the key range of {t}")))?;
        let Some((lo, hi)) = range else {
            return Ok(Vec::new());
        };
        let span = (hi as i128 - lo as i128 + 1) as u128;
        let rows = estimate.map_or(span, |e| (e as u128).min(span));
        let n = chunks(rows, chunk_rows);
        return Ok(integer_bounds(lo, hi, n)
            .into_iter()
            .map(|b| b.to_string())
            .collect());
    }
    let Some(rows) = estimate.filter(|&e| e > chunk_rows) else {
        return Ok(Vec::new());
    };
    let row = client
        .query_opt(
            "SELECT histogram_bounds::text::text[] FROM pg_catalog.pg_stats \
             WHERE schemaname = $1 AND tablename = $2 AND attname = $3 \
             ORDER BY inherited DESC LIMIT 1",
            &[&t.schema, &t.name, &first_key.name],
        )
        .await
        .map_err(PgError::sql(format!("read the key histogram of {t}")))?;
    let hist: Option<Vec<String>> = match row {
        Some(r) => r
            .try_get(0)
            .map_err(PgError::sql(format!("read the key histogram of {t}")))?,
        None => None,
    };
    Ok(pick(
        &hist.unwrap_or_default(),
        chunks(rows as u128, chunk_rows),
    ))
}

fn chunks(rows: u128, chunk_rows: u64) -> u64 {
    rows.div_ceil(chunk_rows.max(1) as u128)
        .clamp(1, MAX_CHUNKS as u128) as u64
}

/// `n - 1` ascending boundaries splitting `lo..=hi` into `n` ranges of nearly equal
/// width (fewer when the range is narrower than `n`).
pub fn integer_bounds(lo: i64, hi: i64, n: u64) -> Vec<i64> {
    let span = hi as i128 - lo as i128 + 1;
    let mut out: Vec<i64> = (1..n as i128)
        .map(|i| (lo as i128 + span * i / n as i128 - 1) as i64)
        .filter(|&b| b >= lo && b < hi)
        .collect();
    out.dedup();
    out
}

/// Up to `n - 1` interior histogram bounds, evenly spaced (the histogram's ends are the
/// smallest and largest sampled values: ranges beyond them hold little).
pub fn pick(hist: &[String], n: u64) -> Vec<String> {
    if hist.len() < 3 || n < 2 {
        return Vec::new();
    }
    let last = hist.len() - 1;
    let mut idx: Vec<usize> = (1..n as usize)
        .map(|i| (last * i).div_ceil(n as usize))
        .filter(|&i| i > 0 && i < last)
        .collect();
    idx.dedup();
    let mut out: Vec<String> = idx.into_iter().map(|i| hist[i].clone()).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges_cover_the_keys_once_in_order() {
        for (lo, hi, n) in [
            (1, 1_000_000, 4),
            (1, 10, 3),
            (-5, 5, 11),
            (7, 7, 5),
            (1, 3, 100),
            (i64::MIN, i64::MAX, 1024),
            (0, 99, 1),
        ] {
            let b = integer_bounds(lo, hi, n);
            assert!(b.len() < n.max(1) as usize, "{lo}..={hi} in {n}: {b:?}");
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
            assert!(b.iter().all(|&x| x >= lo && x < hi), "{b:?}");
            // Every key falls in exactly one range (checked on small spans).
            if (hi as i128 - lo as i128) < 100 {
                for k in lo..=hi {
                    let ranges = (0..=b.len())
                        .filter(|&r| (r == 0 || k > b[r - 1]) && (r == b.len() || k <= b[r]))
                        .count();
                    assert_eq!(ranges, 1, "key {k} with {b:?}");
                }
            }
        }
        assert_eq!(integer_bounds(1, 100, 4), [25, 50, 75]);
    }

    #[test]
    fn histogram_bounds_are_picked_evenly_without_ends_or_repeats() {
        let hist: Vec<String> = (0..=100).map(|i| format!("k{i:03}")).collect();
        assert_eq!(pick(&hist, 4), ["k025", "k050", "k075"]);
        assert_eq!(pick(&hist, 1), Vec::<String>::new());
        assert_eq!(pick(&hist[..2], 4), Vec::<String>::new());
        let few: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(pick(&few, 50), ["b"]);
        let repeats: Vec<String> = ["a", "b", "b", "b", "c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(pick(&repeats, 4), ["b"]);
    }
}

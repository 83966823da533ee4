//! Per-table snapshot progress: rows done against the planner's estimate, as metrics
//! (through [`crate::SourceStats`]) and as log lines.

use sluice_core::TableName;

/// How often a long table's progress is logged.
pub const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers a table's progress entry; returns its index.
pub fn start(stats: &crate::SourceStats, t: &TableName, estimate: Option<u64>) -> usize {
    let mut tables = stats
        .snapshot_tables
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    tables.retain(|p| p.table != *t);
    tables.push(crate::TableProgress {
        table: t.clone(),
        rows: 0,
        estimate,
    });
    tables.len() - 1
}

pub fn set(stats: &crate::SourceStats, slot: usize, rows: u64) {
    let mut tables = stats
        .snapshot_tables
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = tables.get_mut(slot) {
        p.rows = rows;
    }
}

pub fn log(t: &TableName, rows: u64, estimate: Option<u64>) {
    match estimate.filter(|&e| e > 0) {
        Some(e) => tracing::info!(
            table = %t,
            rows,
            estimate = e,
            percent = ((rows as f64 / e as f64) * 100.0).min(100.0).round() as u64,
            "snapshot progress"
        ),
        None => tracing::info!(table = %t, rows, "snapshot progress"),
    }
}

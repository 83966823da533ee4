//! `sluice check`, PostgreSQL side: every condition the source needs, each reported with
//! its cause and fix, without changing anything (no publication or slot is created).

use sluice_core::CheckResult;

use crate::catalog::{self, quote_ident};
use crate::conn::{ConnectParams, ReplicationConn};
use crate::{slot, SourceConfig, MIN_SERVER_VERSION};

const AREA: &str = "postgres";

pub async fn run(cfg: &SourceConfig) -> Vec<CheckResult> {
    let mut out = vec![staging(cfg).await];
    let target = format!(
        "{}:{} database {} as {}",
        cfg.pg
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default(),
        cfg.pg.get_ports().first().copied().unwrap_or(5432),
        cfg.pg.get_dbname().unwrap_or_default(),
        cfg.pg.get_user().unwrap_or_default(),
    );
    let sql = match catalog::connect_sql(&cfg.pg, &cfg.tls).await {
        Ok(c) => {
            out.push(CheckResult::pass(AREA, "connection", target.clone()));
            c
        }
        Err(e) => {
            out.push(CheckResult::fail(
                AREA,
                "connection",
                format!(
                    "{target}: {e}. Fix: check source.postgres.url (host, port, database, user), the password \
                     (source.postgres.password_file), pg_hba.conf, and for TLS source.postgres.tls (mode, ca_file)"
                ),
            ));
            return out;
        }
    };
    match sql
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
    {
        Ok(r) => {
            let num: i32 = r.get(0);
            let text: String = r.get(1);
            out.push(if (num as u32) < MIN_SERVER_VERSION {
                CheckResult::fail(
                    AREA,
                    "server version",
                    format!(
                        "PostgreSQL {text} is not supported; Sluice needs PostgreSQL 14 or newer"
                    ),
                )
            } else {
                CheckResult::pass(AREA, "server version", text)
            });
        }
        Err(e) => out.push(CheckResult::fail(AREA, "server version", e.to_string())),
    }
    out.push(CheckResult::from_result(
        AREA,
        "wal_level",
        catalog::check_server(&sql)
            .await
            .map(|()| "logical".to_string()),
    ));
    out.push(CheckResult::from_result(
        AREA,
        "privileges",
        catalog::check_privileges(&sql, &cfg.tables)
            .await
            .map(|()| format!("REPLICATION, SELECT on {} table(s)", cfg.tables.len())),
    ));
    out.push(CheckResult::from_result(
        AREA,
        "tables",
        catalog::check_tables(&sql, &cfg.tables, cfg.keyless_tables)
            .await
            .map(|()| {
                let names: Vec<String> = cfg.tables.iter().map(|t| t.to_string()).collect();
                format!("{} exist with a key", names.join(", "))
            }),
    ));
    out.push(publication(&sql, cfg).await);
    if cfg.ddl_capture {
        out.push(crate::ddl::check(&sql, cfg.pg.get_dbname().unwrap_or("postgres")).await);
    }
    out.extend(slot_and_headroom(&sql, cfg).await);
    out.push(replication_connection(cfg).await);
    out
}

async fn publication(sql: &tokio_postgres::Client, cfg: &SourceConfig) -> CheckResult {
    let what = format!("publication {}", cfg.publication);
    match catalog::check_publication(sql, &cfg.publication, &cfg.tables).await {
        Ok(true) => CheckResult::pass(AREA, what, "exists and covers every table"),
        Err(e) => CheckResult::fail(AREA, what, e.to_string()),
        Ok(false) => {
            // Sluice creates it at start: that needs ownership of every table.
            let list: Vec<String> = cfg.tables.iter().map(catalog::qualified).collect();
            let r = sql
                .query_one(
                    "SELECT coalesce(bool_and(pg_has_role(c.relowner, 'USAGE')), true) \
                     FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(x) FROM unnest($1::text[]) x)",
                    &[&list],
                )
                .await;
            match r {
                Ok(row) if row.get::<_, bool>(0) => CheckResult::pass(
                    AREA,
                    what,
                    "missing; Sluice creates it at start (the role owns the tables)",
                ),
                Ok(_) => CheckResult::fail(
                    AREA,
                    what,
                    format!(
                        "missing, and the role does not own every table, so Sluice cannot create it. \
                         Fix: as the tables' owner, run CREATE PUBLICATION {} FOR TABLE {}",
                        quote_ident(&cfg.publication),
                        list.join(", ")
                    ),
                ),
                Err(e) => CheckResult::fail(AREA, what, e.to_string()),
            }
        }
    }
}

async fn slot_and_headroom(sql: &tokio_postgres::Client, cfg: &SourceConfig) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let what = format!("slot {}", cfg.slot);
    let existing = match catalog::find_slot(sql, &cfg.slot).await {
        Ok(s) => s,
        Err(e) => return vec![CheckResult::fail(AREA, what, e.to_string())],
    };
    match &existing {
        None => out.push(CheckResult::pass(
            AREA,
            what,
            "missing; created at start (with a snapshot unless snapshot: never)",
        )),
        Some(info) => match slot::check_existing(cfg, info) {
            Err(e) => out.push(CheckResult::fail(AREA, what, e.to_string())),
            Ok(()) => {
                let retained = sql
                    .query_one(
                        "SELECT coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, 0) FROM pg_replication_slots WHERE slot_name = $1",
                        &[&cfg.slot],
                    )
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0);
                let detail = format!(
                    "exists (pgoutput), confirmed up to {}, retaining {} MiB of WAL",
                    info.confirmed_flush.clone().unwrap_or_default(),
                    retained / (1024 * 1024)
                );
                out.push(CheckResult::pass(AREA, what, detail));
            }
        },
    }
    // Headroom: our slot if it is missing, plus one temporary slot (and sender) while a
    // snapshot resumes.
    let r = sql
        .query_one(
            "SELECT current_setting('max_replication_slots')::int, \
                    (SELECT count(*) FROM pg_replication_slots)::int, \
                    current_setting('max_wal_senders')::int, \
                    (SELECT count(*) FROM pg_stat_replication)::int",
            &[],
        )
        .await;
    match r {
        Err(e) => out.push(CheckResult::fail(
            AREA,
            "replication headroom",
            e.to_string(),
        )),
        Ok(row) => {
            let (max_slots, slots, max_senders, senders): (i32, i32, i32, i32) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let need_slots = i32::from(existing.is_none());
            let detail = format!(
                "{slots} of max_replication_slots {max_slots} in use; {senders} of max_wal_senders {max_senders}"
            );
            if slots + need_slots > max_slots || senders + 1 > max_senders {
                out.push(CheckResult::fail(
                    AREA,
                    "replication headroom",
                    format!("{detail}: no room for Sluice's replication connection. Fix: raise max_replication_slots and max_wal_senders in postgresql.conf (restart needed), or drop unused slots with SELECT pg_drop_replication_slot('name')"),
                ));
            } else if slots + need_slots + 1 > max_slots || senders + 2 > max_senders {
                out.push(CheckResult::warn(
                    AREA,
                    "replication headroom",
                    format!("{detail}: resuming an interrupted snapshot needs one more slot and sender for a moment. Fix: raise max_replication_slots / max_wal_senders by one"),
                ));
            } else {
                out.push(CheckResult::pass(AREA, "replication headroom", detail));
            }
        }
    }
    out
}

async fn replication_connection(cfg: &SourceConfig) -> CheckResult {
    let what = "replication connection";
    let db = cfg.pg.get_dbname().unwrap_or_default().to_string();
    let user = cfg.pg.get_user().unwrap_or_default().to_string();
    let hba = format!(
        "Fix: allow it in pg_hba.conf with a line such as `host {db} {user} <client address> scram-sha-256` \
         (logical replication connections match on the database name; the `replication` keyword does not cover them)"
    );
    let params = match ConnectParams::from_config(&cfg.pg, &cfg.tls) {
        Ok(p) => p,
        Err(e) => return CheckResult::fail(AREA, what, e.to_string()),
    };
    let mut conn = match ReplicationConn::connect(&params).await {
        Ok(c) => c,
        Err(e) => {
            let fix = match &e {
                crate::PgError::Server { error, .. } if error.code == "42501" => {
                    format!("Fix: ALTER ROLE {} REPLICATION", quote_ident(&user))
                }
                _ => hba,
            };
            return CheckResult::fail(AREA, what, format!("{e}. {fix}"));
        }
    };
    let r = conn.simple_query("IDENTIFY_SYSTEM").await;
    let _ = conn.terminate().await;
    match r {
        Ok(rows) => {
            let system = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            CheckResult::pass(
                AREA,
                what,
                format!("IDENTIFY_SYSTEM answered (system {system})"),
            )
        }
        Err(e) => CheckResult::fail(AREA, what, format!("{e}. {hba}")),
    }
}

/// Where streamed transactions would be staged: usable, or streaming falls back (a
/// warning, not a failure: nothing is lost, PostgreSQL spills them instead).
async fn staging(cfg: &SourceConfig) -> CheckResult {
    let what = "spill_dir";
    if !cfg.streaming {
        return CheckResult::pass(
            AREA,
            what,
            "streaming off: PostgreSQL spills large transactions and sends them after their commit",
        );
    }
    let stats = std::sync::Arc::new(crate::SourceStats::default());
    match crate::stream::spill::Spill::open(&cfg.spill_dir, cfg.spill_max_bytes, stats).await {
        Ok(_) => CheckResult::pass(
            AREA,
            what,
            format!(
                "{}: private and writable; large running transactions are staged there (up to {} MiB)",
                cfg.spill_dir.display(),
                cfg.spill_max_bytes >> 20
            ),
        ),
        Err(e) => CheckResult::warn(
            AREA,
            what,
            format!("{e} (if a running Sluice holds the directory, this is expected)"),
        ),
    }
}

//! DDL capture: an event trigger writes each changed table's new shape as a
//! transactional logical message, so a table change reaches Sluice in stream order even
//! when no row follows it (pgoutput sends a Relation message only before the next row).
//!
//! The trigger (`ddl_command_end`, installed by Sluice when it may, or by a superuser
//! from [`install_sql`]) emits, for every ordinary or partitioned table that a command
//! created or altered, a message with prefix [`DDL_PREFIX`] whose content is the table's
//! columns as pgoutput would describe them (name, type, type modifier, replica identity
//! flag). The decoder turns it into the same [`crate::pgoutput::Relation`] a Relation
//! message gives. The trigger never fails the user's DDL: an error inside it becomes a
//! warning and the change is then seen at the table's next row, as without capture.

use serde::Deserialize;
use tokio_postgres::Client;

use crate::error::PgError;
use crate::pgoutput::{Relation, RelationColumn};

/// Prefix of every logical message Sluice writes itself; never passed on as an event.
pub const OWN_PREFIX: &str = "sluice.";
/// Prefix of the trigger's messages.
pub const DDL_PREFIX: &str = "sluice.ddl";
pub const TRIGGER: &str = "sluice_capture_ddl";

/// The function and event trigger, as one script. Creating an event trigger needs a
/// superuser. The function is SECURITY DEFINER so any role's DDL is captured; so that
/// no other role can make it run their code, it is dropped and created afresh (owned by
/// the installing superuser, never a function another role created first), every name
/// in it is schema-qualified and its search_path ends with pg_temp.
pub fn install_sql() -> String {
    format!(
        r#"DROP EVENT TRIGGER IF EXISTS {TRIGGER};
DROP FUNCTION IF EXISTS public.{TRIGGER}();
CREATE FUNCTION public.{TRIGGER}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $sluice$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT c.oid AS relid
    FROM pg_catalog.pg_event_trigger_ddl_commands() d
    JOIN pg_catalog.pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
  LOOP
    PERFORM pg_catalog.pg_logical_emit_message(true, '{DDL_PREFIX}', (
      SELECT pg_catalog.json_build_object(
        'relid', c.oid::bigint,
        'schema', n.nspname,
        'table', c.relname,
        'replident', c.relreplident,
        'columns', coalesce((
          SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                   'name', a.attname,
                   'type', a.atttypid::bigint,
                   'typmod', a.atttypmod,
                   'key', c.relreplident = 'f' OR coalesce(a.attnum = ANY ((i.indkey::pg_catalog.int2[])[0:i.indnkeyatts - 1]), false))
                 ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
            AND ((c.relreplident = 'd' AND i.indisprimary)
              OR (c.relreplident = 'i' AND i.indisreplident))
          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attgenerated = ''), '[]'::json))::text
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = r.relid));
  END LOOP;
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'sluice DDL capture skipped: %', SQLERRM;
END
$sluice$;
CREATE EVENT TRIGGER {TRIGGER} ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
  EXECUTE FUNCTION public.{TRIGGER}();
"#
    )
}

/// The body of the trigger function, as `pg_proc.prosrc` holds it.
fn function_body() -> String {
    let sql = install_sql();
    let start = sql.find("$sluice$").map_or(0, |i| i + "$sluice$".len());
    let end = sql.rfind("$sluice$").unwrap_or(sql.len());
    sql[start..end].to_string()
}

/// The trigger as the database has it.
#[derive(Debug, PartialEq, Eq)]
pub enum TriggerState {
    Missing,
    Disabled,
    /// Installed by another version of Sluice (its function differs).
    Outdated,
    Current,
}

pub async fn state(client: &Client) -> Result<TriggerState, PgError> {
    let sql_err = |source| PgError::Sql {
        context: "reading pg_event_trigger".into(),
        source,
    };
    let row = client
        .query_opt(
            "SELECT t.evtenabled::text, p.prosrc || '|' || p.prosecdef::text || '|' || \
                    coalesce(array_to_string(p.proconfig, ','), '') || '|' || r.rolsuper::text \
             FROM pg_event_trigger t JOIN pg_proc p ON p.oid = t.evtfoid \
             JOIN pg_roles r ON r.oid = p.proowner WHERE t.evtname = $1",
            &[&TRIGGER],
        )
        .await
        .map_err(sql_err)?;
    let Some(row) = row else {
        return Ok(TriggerState::Missing);
    };
    let enabled: String = row.try_get(0).map_err(sql_err)?;
    let body: String = row.try_get(1).map_err(sql_err)?;
    Ok(if enabled == "D" {
        TriggerState::Disabled
    } else if body
        != format!(
            "{}|true|search_path=pg_catalog, pg_temp|true",
            function_body()
        )
    {
        TriggerState::Outdated
    } else {
        TriggerState::Current
    })
}

fn install_hint(database: &str) -> String {
    format!(
        "run `sluice ddl-capture-sql | psql -d {database}` as a superuser, or set source.postgres.ddl_capture: false"
    )
}

fn disabled(database: &str) -> String {
    format!(
        "source.postgres.ddl_capture is on but the event trigger {TRIGGER} is disabled: run `ALTER EVENT TRIGGER {TRIGGER} ENABLE` in database {database:?} as a superuser, or set source.postgres.ddl_capture: false"
    )
}

/// Makes sure the trigger is there, enabled and current: installs (or updates) it when
/// the role may (a superuser), else says exactly what to run.
pub async fn ensure(client: &Client, database: &str) -> Result<(), PgError> {
    let current = state(client).await?;
    match current {
        TriggerState::Disabled => return Err(PgError::Config(disabled(database))),
        TriggerState::Current => return Ok(()),
        TriggerState::Missing | TriggerState::Outdated => {}
    }
    match client.batch_execute(&install_sql()).await {
        Ok(()) => {
            tracing::info!(trigger = TRIGGER, "DDL capture event trigger installed");
            Ok(())
        }
        Err(e) if e.code().map(|c| c.code()) == Some("42501") => match current {
            // Another version works; only this role cannot update it.
            TriggerState::Outdated => {
                tracing::warn!(
                    trigger = TRIGGER,
                    "the DDL capture trigger differs from this version's; to update it, {}",
                    install_hint(database)
                );
                Ok(())
            }
            _ => Err(PgError::Config(format!(
                "source.postgres.ddl_capture is on but the event trigger {TRIGGER} is missing, and only a superuser can create it: {}",
                install_hint(database)
            ))),
        },
        Err(source) => Err(PgError::Sql {
            context: format!("installing the DDL capture trigger {TRIGGER}"),
            source,
        }),
    }
}

/// `sluice check`: what [`ensure`] would find, without changing anything.
pub async fn check(client: &Client, database: &str) -> sluice_core::CheckResult {
    use sluice_core::CheckResult;
    const AREA: &str = "postgres";
    let what = "ddl capture";
    let superuser = async {
        client
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .and_then(|r| r.try_get::<_, bool>(0))
    };
    match state(client).await {
        Err(e) => CheckResult::fail(AREA, what, e.to_string()),
        Ok(TriggerState::Current) => CheckResult::pass(AREA, what, format!("event trigger {TRIGGER} installed and enabled")),
        Ok(TriggerState::Disabled) => CheckResult::fail(AREA, what, disabled(database)),
        Ok(TriggerState::Outdated) => CheckResult::warn(
            AREA,
            what,
            format!("event trigger {TRIGGER} is another version's; Sluice updates it at start as a superuser, else {}", install_hint(database)),
        ),
        Ok(TriggerState::Missing) => match superuser.await {
            Ok(true) => CheckResult::pass(AREA, what, format!("event trigger {TRIGGER} missing; Sluice installs it at start (the role is a superuser)")),
            _ => CheckResult::fail(
                AREA,
                what,
                format!("event trigger {TRIGGER} missing and only a superuser can create it. Fix: {}", install_hint(database)),
            ),
        },
    }
}

#[derive(Deserialize)]
struct Shape {
    relid: u32,
    schema: String,
    table: String,
    replident: String,
    columns: Vec<Column>,
}

#[derive(Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    type_oid: u32,
    typmod: i32,
    key: bool,
}

/// The trigger's message content as the Relation message pgoutput would send.
pub fn parse(content: &[u8]) -> Result<Relation, PgError> {
    let s: Shape = serde_json::from_slice(content).map_err(|e| {
        PgError::protocol(
            "replication",
            format!("malformed {DDL_PREFIX} message ({e}); if the trigger {TRIGGER} was changed, reinstall it with `sluice ddl-capture-sql | psql -d <database>` as a superuser"),
        )
    })?;
    Ok(Relation {
        xid: None,
        id: s.relid,
        namespace: s.schema,
        name: s.table,
        replica_identity: s.replident.bytes().next().unwrap_or(b'd'),
        columns: s
            .columns
            .into_iter()
            .map(|c| RelationColumn {
                key: c.key,
                name: c.name,
                type_oid: c.type_oid,
                type_modifier: c.typmod,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_trigger_message() {
        let r = parse(br#"{"relid" : 16384, "schema" : "public", "table" : "t", "replident" : "d", "columns" : [{"name" : "id", "type" : 23, "typmod" : -1, "key" : true}, {"name" : "n", "type" : 1700, "typmod" : 655366, "key" : false}]}"#).unwrap();
        assert_eq!(r.id, 16384);
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("public", "t"));
        assert_eq!(r.replica_identity, b'd');
        assert_eq!(r.columns.len(), 2);
        assert!(r.columns[0].key && !r.columns[1].key);
        assert_eq!(r.columns[1].type_modifier, 655366);
    }

    #[test]
    fn malformed_content_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"{", b"[]", b"{\"relid\": -1}", b"\xff\xfe"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

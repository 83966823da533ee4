#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL and tansu broker, sluice in between, a small
# insert/update/delete workload, and the events as an independent client decodes them.
# Everything is stopped and removed on exit, whatever happens.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PGBIN=/usr/lib/postgresql/15/bin
PY="$ROOT/.tools/venv/bin/python"
WORK="$(mktemp -d /tmp/sluice-demo.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
log() { printf '\033[1m[demo]\033[0m %s\n' "$*" >&2; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log "building sluice"
cargo build --quiet -p sluice
PGPORT=$(free_port); KPORT=$(free_port); REGPORT=$(free_port); ADMINPORT=$(free_port)
PW=demo-password

log "starting PostgreSQL 15 on 127.0.0.1:$PGPORT (wal_level=logical)"
echo "$PW" > "$WORK/pw"
[ "$(id -u)" = 0 ] && chown -R postgres "$WORK"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=scram-sha-256 --pwfile="$WORK/pw" --no-instructions >/dev/null
cat >> "$WORK/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$WORK'
wal_level = logical
CONF
printf 'host all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n' > "$WORK/pg/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start >/dev/null
export PGPASSWORD=$PW
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "CREATE DATABASE shop"
psql -d shop -c "CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL, placed_at timestamptz NOT NULL DEFAULT now(), shipped boolean NOT NULL DEFAULT false)"
psql -d shop -c "INSERT INTO orders (id, customer, amount) VALUES (1, 'ada', 42.00)"

log "starting the tansu Kafka broker on 127.0.0.1:$KPORT"
"$ROOT/.tools/bin/tansu" broker --listener-url "tcp://127.0.0.1:$KPORT" --advertised-listener-url "tcp://127.0.0.1:$KPORT" >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)

cat > "$WORK/sluice.yaml" <<YAML
source:
  postgres:
    url: postgres://postgres@127.0.0.1:$PGPORT/shop
    password_file: pw
    tables: [public.orders]
sink:
  kafka:
    bootstrap_servers: 127.0.0.1:$KPORT
    topic_prefix: shop
schema_registry:
  listen: 127.0.0.1:$REGPORT
  data_dir: registry
admin:
  listen: 127.0.0.1:$ADMINPORT
YAML
log "starting sluice (config: $WORK/sluice.yaml, log: $WORK/sluice.log)"
"$ROOT/target/debug/sluice" run --config "$WORK/sluice.yaml" >"$WORK/sluice.log" 2>&1 &
SLUICE=$!
PIDS+=($SLUICE)
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$ADMINPORT/readyz" >/dev/null 2>&1 && break
    kill -0 $SLUICE 2>/dev/null || { cat "$WORK/sluice.log"; exit 1; }
    sleep 0.2
done
curl -fs "http://127.0.0.1:$ADMINPORT/readyz"

log "workload: insert, update, delete"
psql -d shop -c "INSERT INTO orders (id, customer, amount) VALUES (2, 'bob', 19.99), (3, 'cy', 7.50)"
psql -d shop -c "UPDATE orders SET shipped = true WHERE id = 2"
psql -d shop -c "DELETE FROM orders WHERE id = 3"

log "events on topic shop.public.orders, decoded by confluent-kafka's AvroDeserializer via the bundled registry:"
"$PY" "$ROOT/tests/py/consume.py" --bootstrap "127.0.0.1:$KPORT" --registry "http://127.0.0.1:$REGPORT" \
    --topic shop.public.orders --count 6 --timeout 60 --pretty
log "confirmed flush LSN of slot sluice: $(psql -d shop -A -t -c "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'sluice'")"
log "metrics excerpt:"
curl -fs "http://127.0.0.1:$ADMINPORT/metrics" | grep -E '^sluice_(events_total|source_confirmed_flush_lsn|ready)' || true
log "stopping sluice (SIGTERM)"
kill -TERM $SLUICE
wait $SLUICE && log "sluice stopped cleanly"

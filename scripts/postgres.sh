#!/usr/bin/env bash
# A PostgreSQL 15 server from Debian's postgresql-15 package for tests, examples
# and benchmarks (lookup joins), listening on 127.0.0.1 only.
#
#   scripts/postgres.sh up      # initdb once (trust auth), start, wait, create the
#                               # database; prints the DSN. Idempotent: if up, just
#                               # prints it.
#   scripts/postgres.sh down    # stops the server (data stays in build/postgres/data)
#   scripts/postgres.sh status  # prints the DSN and exits 0 if up, 1 if not
#   scripts/postgres.sh reset   # down, then delete build/postgres
#
# Port: SABOT_POSTGRES_PORT (default 15432). Role and database: `sabot`, trust
# authentication, so the DSN is "host=127.0.0.1 port=15432 user=sabot dbname=sabot".
# The unix socket lives in build/postgres too. Logs: build/postgres/server.log.
#
# PostgreSQL refuses to run as root: when this script runs as root, initdb and
# the server run as the `postgres` user (created by the Debian package, created
# here if missing) and build/postgres belongs to it; otherwise they run as the
# calling user. When that user cannot reach the checkout (e.g. a clone under
# /root, mode 700), the server's files go to /var/tmp/sabot-postgres-<hash of the
# checkout path> instead, and build/postgres/data links to them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${SABOT_POSTGRES_PORT:-15432}"
HOST=127.0.0.1
PGBIN="${SABOT_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}"
DIR="$ROOT/build/postgres"
DSN="host=$HOST port=$PORT user=sabot dbname=sabot"

log() { echo "postgres.sh: $*" >&2; }

RUN_AS=""
if [ "$(id -u)" -eq 0 ]; then RUN_AS=postgres; fi

# Where the server's files live: BASE (data dir, log, socket).
resolve_paths() {
  BASE="$DIR"
  if [ -n "$RUN_AS" ] && id -u "$RUN_AS" >/dev/null 2>&1 &&
    ! runuser -u "$RUN_AS" -- test -x "$ROOT" 2>/dev/null; then
    BASE="/var/tmp/sabot-postgres-$(printf %s "$ROOT" | md5sum | cut -c1-12)"
  fi
  DATA="$BASE/data"
  LOG="$BASE/server.log"
}
resolve_paths

# Runs a command as the server's user.
as_server() {
  if [ -n "$RUN_AS" ]; then
    runuser -u "$RUN_AS" -- "$@"
  else
    "$@"
  fi
}

is_ready() {
  "$PGBIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1
}

# The unix socket directory: next to the data unless its path is too long for
# a socket name (107 bytes), then TCP only.
socket_dir() {
  if [ "${#BASE}" -lt 90 ]; then echo "$BASE"; else echo ""; fi
}

prepare_dir() {
  if [ ! -x "$PGBIN/initdb" ]; then
    log "no PostgreSQL 15 at $PGBIN (install the Debian package postgresql-15:" \
      "bash scripts/install-system-deps.sh)"
    exit 1
  fi
  if [ -n "$RUN_AS" ] && ! id -u "$RUN_AS" >/dev/null 2>&1; then
    log "creating system user $RUN_AS to run the server (PostgreSQL refuses root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$RUN_AS"
    resolve_paths
  fi
  mkdir -p "$DIR" "$BASE"
  touch "$LOG"
  if [ "$BASE" != "$DIR" ]; then
    ln -sfn "$DATA" "$DIR/data"
    log "user $RUN_AS cannot reach $ROOT: the server's files are in $BASE"
  fi
  if [ -n "$RUN_AS" ]; then
    chown -R "$RUN_AS" "$BASE"
    if ! runuser -u "$RUN_AS" -- test -w "$BASE"; then
      log "user $RUN_AS cannot write $BASE"
      exit 1
    fi
  fi
}

init_once() {
  if [ -f "$DATA/PG_VERSION" ]; then return; fi
  log "initdb $DATA"
  rm -rf "$DATA"
  as_server "$PGBIN/initdb" -D "$DATA" -U sabot --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-instructions >>"$LOG" 2>&1 ||
    { log "initdb failed; see $LOG"; tail -20 "$LOG" >&2; exit 1; }
  # A test server: durability is not needed, speed is.
  as_server tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# --- scripts/postgres.sh ---
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
log_min_error_statement = panic
EOF
}

up() {
  if is_ready; then
    echo "$DSN"
    return
  fi
  prepare_dir
  init_once
  if [ -f "$DATA/postmaster.pid" ] && ! as_server "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "removing the stale $DATA/postmaster.pid"
    rm -f "$DATA/postmaster.pid"
  fi
  local sock
  sock="$(socket_dir)"
  as_server "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-h $HOST -p $PORT -k '$sock'" start >/dev/null ||
    { log "the server did not start; last lines of $LOG:"; tail -30 "$LOG" >&2; exit 1; }
  for _ in $(seq 1 120); do
    if is_ready; then break; fi
    sleep 0.5
  done
  if ! is_ready; then
    log "the server did not become ready within 60 s; see $LOG"
    exit 1
  fi
  if ! "$PGBIN/psql" -h "$HOST" -p "$PORT" -U sabot -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'sabot'" | grep -q 1; then
    "$PGBIN/createdb" -h "$HOST" -p "$PORT" -U sabot sabot
  fi
  log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') up on $HOST:$PORT (log $LOG)"
  echo "$DSN"
}

down() {
  if [ ! -f "$DATA/postmaster.pid" ]; then
    log "not running"
    return
  fi
  as_server "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null ||
    { log "pg_ctl stop failed; see $LOG"; exit 1; }
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if is_ready; then echo "$DSN"; else exit 1; fi
    ;;
  reset)
    down
    rm -rf "$DIR" "$BASE"
    ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the MLflow-server tests and print its URI.
#
#   export TUNING_TEST_POSTGRES_URI="$(scripts/start_postgres.sh)"
#
# Installs PostgreSQL with apt when it is missing (Debian/Ubuntu), then creates
# (once) and starts a dedicated cluster "tuning_test" that listens on 127.0.0.1
# only, on port $TUNING_PG_PORT (default 54329), so it never touches a system
# cluster. A role and database "tuning_test" get a password generated on every
# run; nothing secret lives in the repository. The URI is the only line on
# stdout (progress goes to stderr) and is also written to $TUNING_PG_URI_FILE
# when that is set. Idempotent: run it again to get a fresh password.
#
# Stop it: pg_ctlcluster <version> tuning_test stop
# Remove it: pg_dropcluster --stop <version> tuning_test
set -euo pipefail

CLUSTER=tuning_test
PORT="${TUNING_PG_PORT:-54329}"
ROLE=tuning_test
DB=tuning_test

log() { echo "start_postgres: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
  AS_POSTGRES=(runuser -u postgres --)
else
  SUDO=(sudo)
  AS_POSTGRES=(sudo -u postgres)
fi

if ! command -v pg_createcluster >/dev/null 2>&1; then
  log "installing PostgreSQL with apt-get"
  "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if [ -z "$VERSION" ]; then
  log "no PostgreSQL server under /usr/lib/postgresql"
  exit 1
fi

if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION $CLUSTER"; then
  log "creating cluster $VERSION/$CLUSTER on 127.0.0.1:$PORT"
  # Local socket: peer auth (the postgres OS user administers it). TCP: password
  # (scram) from 127.0.0.1 only; listen_addresses keeps it off the network.
  "${SUDO[@]}" pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" --start-conf=manual \
    -- --auth-local=peer --auth-host=scram-sha-256 >&2
fi
# Written on every run (Debian's postgresql.conf includes conf.d/), so an older
# cluster of this name is brought to the same settings.
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER/conf.d"
printf "listen_addresses = '127.0.0.1'\n" | "${SUDO[@]}" tee "$CONF_DIR/10-tuning-test.conf" >/dev/null

if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -qx online; then
  log "starting cluster $VERSION/$CLUSTER"
  "${SUDO[@]}" pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}')"

PASSWORD="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
psql_admin() { "${AS_POSTGRES[@]}" psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
  psql_admin -c "CREATE ROLE $ROLE LOGIN" >&2
fi
# The password is hex, so it needs no quoting in SQL or in the URI.
psql_admin -c "ALTER ROLE $ROLE PASSWORD '$PASSWORD'" >&2
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

# The driver is named: SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3, while
# the project's dev extra installs psycopg2-binary.
URI="postgresql+psycopg2://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
if [ -n "${TUNING_PG_URI_FILE:-}" ]; then
  (umask 077 && printf '%s\n' "$URI" > "$TUNING_PG_URI_FILE")
fi
log "ready on 127.0.0.1:$PORT (database $DB)"
echo "$URI"

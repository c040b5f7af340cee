#!/bin/sh
# One-shot (service temporal-admin-tools): create or upgrade Temporal's two PostgreSQL schemas,
# the job the deprecated temporalio/auto-setup image used to do on every boot. Every step is
# idempotent, so it runs on each `docker compose up`; pointing the service at a newer
# temporalio/admin-tools image upgrades an existing database in place before the new server starts.
set -eu

: "${DB:?}" "${POSTGRES_SEEDS:?}" "${DB_PORT:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
export SQL_PASSWORD="$POSTGRES_PWD" # temporal-sql-tool reads the password from here
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql() {
  temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for target in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${target%%:*}
  schema=${target#*:}
  echo "schema setup: database $db ($schema)"
  # `create` fails when the database exists (the postgres image creates one named after
  # POSTGRES_USER): carry on, setup-schema below fails loudly if it is really missing.
  sql --db "$db" create || echo "database $db not created: assuming it exists"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$SCHEMA_DIR/$schema/versioned"
done
echo "schema setup complete"

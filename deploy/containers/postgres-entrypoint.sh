#!/bin/sh
# First start: initdb (peer auth on the socket, scram-sha-256 over TCP), the role and the
# database; then PostgreSQL in the foreground as PID 1 (SIGINT = fast shutdown).
set -eu
user=${POSTGRES_USER:-rssp}
db=${POSTGRES_DB:-rssp}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then pw=$(tr -d '\r\n' < "$POSTGRES_PASSWORD_FILE")
  else pw=${POSTGRES_PASSWORD:?POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE is required}; fi
  rm -rf "${PGDATA:?}"/* 2>/dev/null || true
  initdb -D "$PGDATA" -U postgres -E UTF8 --auth-local=peer --auth-host=scram-sha-256 --no-instructions >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -v u="$user" -v p="$pw" -v d="$db" postgres <<'SQL'
CREATE ROLE :"u" LOGIN PASSWORD :'p';
CREATE DATABASE :"d" OWNER :"u";
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'

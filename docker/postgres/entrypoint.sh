#!/bin/sh
# The postgres image's start, with Debian's package: on an empty $PGDATA, a cluster whose
# superuser is $POSTGRES_USER with the password in the file $POSTGRES_PASSWORD_FILE (a secret
# that may be root's only: read here as root, it reaches the server through a pipe, never an
# argument or a file), password logins from any host, and the database $POSTGRES_DB; then the
# server, as the postgres user, on every interface.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

install -d -o postgres -g postgres -m 2775 /var/run/postgresql
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ ! -f "${POSTGRES_PASSWORD_FILE:-}" ] || [ ! -s "$POSTGRES_PASSWORD_FILE" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD_FILE must name a file holding the password" >&2
    exit 1
  fi
  install -d -o postgres -g postgres -m 700 "$PGDATA"
  # UTF-8 as the postgres image (a bare C locale would make the database SQL_ASCII)
  as_postgres initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  password=$(cat "$POSTGRES_PASSWORD_FILE")  # less its final newline, as the image reads it
  {
    printf "ALTER ROLE \"%s\" PASSWORD '%s';\n" "$POSTGRES_USER" \
      "$(printf %s "$password" | sed "s/'/''/g")"
    [ "$POSTGRES_DB" = postgres ] ||
      printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$POSTGRES_DB" "$POSTGRES_USER"
  } | as_postgres postgres --single -D "$PGDATA" -c log_min_error_statement=panic postgres \
    >/dev/null  # errors still go to the log, never the statement
  unset password
  echo "postgres-entrypoint: made the cluster in $PGDATA with database $POSTGRES_DB"
fi
if [ "$1" = postgres ]; then
  shift
  exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"

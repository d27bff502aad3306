#!/bin/bash
# The official postgres image's contract, for what the compose file uses.
set -euo pipefail
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
    password="${POSTGRES_PASSWORD:-}"
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -z "$password" ] || { echo "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set" >&2; exit 1; }
        password="$(cat "$POSTGRES_PASSWORD_FILE")"
    fi
    install -d -o postgres -g postgres -m 0700 "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        [ -n "$password" ] || { echo "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required" >&2; exit 1; }
        pwfile="$(mktemp)"
        printf '%s\n' "$password" > "$pwfile"
        chown postgres "$pwfile"
        runuser -u postgres -- initdb -D "$PGDATA" --username=postgres --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
        rm -f "$pwfile"
        echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
        echo "listen_addresses = '*'" >> "$PGDATA/postgresql.auto.conf"
        db="${POSTGRES_DB:-postgres}"
        if [ "$db" != postgres ]; then
            echo "CREATE DATABASE \"$db\";" \
                | runuser -u postgres -- postgres --single -D "$PGDATA" postgres >/dev/null
        fi
        echo "initialised $PGDATA (database $db)"
    fi
    unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE password
    shift
    exec runuser -u postgres -- postgres -D "$PGDATA" "$@"
fi
shift
exec postgres -D "$PGDATA" "$@"

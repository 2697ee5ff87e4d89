#!/usr/bin/env bash
# Creates (or removes) a real PostgreSQL streaming standby of the local server, for the live
# executor's promotion test.
#   pg-standby.sh start PORT DIR   base backup of 127.0.0.1:5432 into DIR, started on PORT as a standby
#   pg-standby.sh stop DIR         stop it and remove DIR
# Needs root (it runs the server as the `postgres` user) and allows replication connections from
# 127.0.0.1 on the local server if they are not allowed yet.
set -euo pipefail
bin=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -n 1)/bin
as_pg() { runuser -u postgres -- "$@"; }

case "${1:-}" in
start)
  port=$2 dir=$3
  hba=$(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SHOW hba_file')
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    echo "host replication all 127.0.0.1/32 trust" >> "$hba"
    psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT pg_reload_conf()' >/dev/null
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  chown postgres: "$dir"
  chmod 700 "$dir"
  as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p 5432 -U postgres -D "$dir" -R -X stream -c fast
  # Debian keeps the configuration outside the data directory: give the standby its own.
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '/tmp'\nhot_standby = on\n" "$port" > "$dir/postgresql.conf"
  printf "local all all trust\nhost all all 127.0.0.1/32 trust\n" > "$dir/pg_hba.conf"
  : > "$dir/pg_ident.conf"
  chown postgres: "$dir/postgresql.conf" "$dir/pg_hba.conf" "$dir/pg_ident.conf"
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
  ;;
stop)
  dir=$2
  if [ -d "$dir" ]; then
    as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
  ;;
*)
  echo "usage: $0 start PORT DIR | stop DIR" >&2
  exit 2
  ;;
esac

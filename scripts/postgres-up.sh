#!/usr/bin/env bash
# Starts a private PostgreSQL server for Strata's pg backend and its tests,
# without systemd: installs PostgreSQL from Debian's packages if missing
# (without the packaged cluster), creates a cluster in DIR (default
# target/pg), starts it on a unix socket in DIR/sock and on 127.0.0.1:PORT
# (default 55432, STRATA_PG_PORT), and creates the database `strata`.
# TLS is on: a private CA (DIR/tls/ca.crt, made with openssl) signs the
# server's certificate (localhost and 127.0.0.1), plain and unix-socket
# connections still work, and the database `strata_tls` takes TLS
# connections only (for the tests of sslmode). Idempotent: a running
# server is left as it is (restarted once if it runs without TLS).
#
# Prints the lines that point Strata at it; use it as:
#   eval "$(bash scripts/postgres-up.sh)"
# `bash scripts/postgres-up.sh --restart [DIR]` restarts the server (tests
# use it for the server-restart case).
set -euo pipefail
cd "$(dirname "$0")/.."

action=start
if [[ "${1:-}" == "--restart" ]]; then
  action=restart
  shift
fi
dir="$(mkdir -p "${1:-target/pg}" && cd "${1:-target/pg}" && pwd)"
port="${STRATA_PG_PORT:-55432}"

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
if [[ -z "$(pg_bin)" ]]; then
  # The package would create and start a cluster of its own: not wanted.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf ||
    echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
fi
bin="$(pg_bin)"

# PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
if [[ "$(id -u)" == 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /usr/sbin/nologin postgres
  # `postgres` must reach DIR through its parents; a checkout under a
  # private directory (mktemp -d is 0700) keeps it out, so the cluster then
  # lives in a directory of its own under /var/tmp, one per DIR.
  if ! runuser -u postgres -- test -x "$dir"; then
    dir="/var/tmp/strata-pg/$(echo "$dir" | sha256sum | cut -c1-16)"
    mkdir -p "$dir"
    chmod 755 /var/tmp/strata-pg
  fi
  chown postgres: "$dir"
fi
password="strata-test-$(echo "$dir" | sha256sum | cut -c1-16)"

if [[ ! -s "$dir/data/PG_VERSION" ]]; then
  rm -rf "$dir/data"
  pwfile="$(mktemp)"
  printf '%s\n' "$password" >"$pwfile"
  chmod 644 "$pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U strata --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >&2
  rm -f "$pwfile"
fi
as_owner mkdir -p "$dir/sock"

# The CA and the server's certificate, once per cluster directory.
tls="$dir/tls"
if [[ ! -s "$tls/server.crt" ]]; then
  as_owner mkdir -p "$tls"
  as_owner openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Strata test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" >&2 2>/dev/null
  as_owner openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" >&2 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' | as_owner tee "$tls/san.ext" >/dev/null
  as_owner openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tls/san.ext" -out "$tls/server.crt" >&2 2>/dev/null
  as_owner chmod 600 "$tls/server.key" "$tls/ca.key"
  as_owner chmod 644 "$tls/ca.crt" "$tls/server.crt"
fi
# strata_tls refuses connections without TLS (first matching line wins).
hba="$dir/data/pg_hba.conf"
if ! as_owner grep -q '^hostnossl strata_tls' "$hba"; then
  as_owner sed -i '1i hostnossl strata_tls all all reject' "$hba"
  hba_changed=1
fi

opts="-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=64MB"
opts+=" -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key"
if [[ "$action" == start ]] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 &&
  [[ "$(as_owner "$bin/psql" -h "$dir/sock" -p "$port" -U strata -d postgres -qtAc 'SHOW ssl')" != on ]]; then
  action=restart   # started by an older version of this script, without TLS
fi
if [[ "$action" == restart ]]; then
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "$opts" -m fast -w restart >&2
elif ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -o "$opts" -w start >&2
fi

if [[ -n "${hba_changed:-}" && "$action" == start ]]; then
  as_owner "$bin/pg_ctl" -D "$dir/data" reload >&2
fi

psql_() { as_owner "$bin/psql" -h "$dir/sock" -p "$port" -U strata -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'strata'")" != 1 ]]; then
  psql_ -d postgres -c "CREATE DATABASE strata" >&2
fi
if [[ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'strata_tls'")" != 1 ]]; then
  psql_ -d postgres -c "CREATE DATABASE strata_tls" >&2
fi

echo "export STRATA_PG_CONN_STR='host=127.0.0.1 port=$port user=strata dbname=strata'"
echo "export PGPASSWORD='$password'"
echo "export STRATA_PG_DIR='$dir'"
echo "export STRATA_PG_CA='$tls/ca.crt'"

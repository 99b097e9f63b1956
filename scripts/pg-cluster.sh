#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-cluster.sh start DIR   new cluster in DIR (absent or empty), started on a free
#                                     127.0.0.1 port; prints one line on stdout:
#                                     postgres://callrec@127.0.0.1:PORT/callrec_test
#   scripts/pg-cluster.sh stop DIR    stops it (immediate) and removes DIR
#   scripts/pg-cluster.sh down DIR [fast|immediate]
#                                     stops the server (default fast), keeping the cluster
#   scripts/pg-cluster.sh up DIR      starts it again, on the same port
#   scripts/pg-cluster.sh restart DIR [fast|immediate]
#                                     down, then up (as `pg_ctl restart -m MODE`)
#   scripts/pg-cluster.sh available   exit 0 if the server binaries are installed, 1 if not
#
# Layout: DIR/data (cluster), DIR/sock (unix socket), DIR/log (server log). Built for speed, not
# for surviving a crash of the machine: fsync and full_page_writes are off (on with
# CALLREC_PG_DURABLE=1, for benchmarks). synchronous_commit stays on, so that a crash of the
# server alone (`down DIR immediate`) keeps every acknowledged commit, as a real server does.
# Trust auth, loopback only; CALLREC_PG_LISTEN="ADDR ..." adds addresses to listen on (a test
# host in a network namespace), trusted too.
# initdb and the server refuse to run as root: as root the cluster belongs to the `postgres`
# system user (or `callrec-pg`, created when there is no `postgres`), and DIR's parent
# directories must be searchable by that user (a directory under /tmp is).
# Everything but the URL goes to stderr.
set -euo pipefail

# runuser and useradd live in sbin, which a test runner's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
readonly superuser=callrec database=callrec_test marker=.callrec-pg-cluster

die() { echo "pg-cluster: $*" >&2; exit 1; }

# The directory holding initdb, pg_ctl and postgres, or nothing.
find_bindir() {
  local candidates=() d
  if command -v pg_config >/dev/null 2>&1; then candidates+=("$(pg_config --bindir 2>/dev/null || true)"); fi
  candidates+=($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1))
  if command -v initdb >/dev/null 2>&1; then candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")"); fi
  for d in "${candidates[@]}"; do
    [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && { echo "$d"; return 0; }
  done
  return 1
}

# Runs a command as the cluster's owner ($owner; empty means the current user).
as_owner() {
  if [[ -n $owner ]]; then (cd / && runuser -u "$owner" -- "$@"); else "$@"; fi
}

# Runs a command with no file descriptors but 0-2: the server it starts lives on, and must not
# hold the caller's pipes or sockets open (Foundation's Process on Linux, for one, waits for its
# child through a socket the child inherits, and would wait forever).
without_inherited_fds() {
  (
    local fd n fds=/proc/$BASHPID/fd
    [[ -d $fds ]] || fds=/dev/fd
    for fd in "$fds"/*; do
      n=${fd##*/}
      [[ $n =~ ^[0-9]+$ ]] && ((n > 2)) && { eval "exec $n>&-"; } 2>/dev/null
    done
    "$@" # (a function, as_owner, may be among them: no exec)
  )
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo $((20000 + RANDOM % 30000))
  fi
}

start() {
  local dir=$1 bindir port attempt offset
  bindir=$(find_bindir) || die "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql"
  if [[ -e $dir ]]; then
    [[ -d $dir ]] || die "$dir exists and is not a directory"
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  [[ $dir != *"'"* ]] || die "$dir: a quote in the path is not supported"
  # Unix socket paths are limited to ~107 bytes.
  ((${#dir} + 24 < 104)) || die "$dir is too long for a unix socket path; use a shorter directory"
  touch "$dir/$marker"
  mkdir "$dir/sock"

  owner=""
  if ((EUID == 0)); then
    if id -u postgres >/dev/null 2>&1; then
      owner=postgres
    else
      owner=callrec-pg
      # Two concurrent starts may race to create it: the loser just finds it there.
      id -u "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner" >&2 \
        || id -u "$owner" >/dev/null 2>&1 || die "cannot create user $owner"
    fi
    chown -R "$owner:" "$dir"
    runuser -u "$owner" -- test -w "$dir" -a -x "$dir" \
      || die "$dir is not reachable by user $owner (as root the cluster runs as $owner): use a directory whose parents it can search, e.g. under /tmp"
    echo "pg-cluster: running as root; the cluster runs as user $owner" >&2
  fi

  # initdb's progress goes to DIR/initdb.log (shown when it fails); its errors to stderr.
  as_owner "$bindir/initdb" -D "$dir/data" -U "$superuser" --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" \
    || as_owner "$bindir/initdb" -D "$dir/data" -U "$superuser" --auth=trust --encoding=UTF8 --locale=C --no-sync >>"$dir/initdb.log" \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  cat >"$dir/data/pg_hba.conf" <<EOF
# throwaway test cluster: trust on the unix socket and on loopback only
local all         all                trust
host  all         all  127.0.0.1/32  trust
host  all         all  ::1/128       trust
local replication all                trust
host  replication all  127.0.0.1/32  trust
EOF
  local extra listen="127.0.0.1"
  for extra in ${CALLREC_PG_LISTEN:-}; do
    [[ $extra =~ ^[0-9.]+$ ]] || die "CALLREC_PG_LISTEN: $extra is not an IPv4 address"
    listen="$listen,$extra"
    echo "host  all         all  $extra/24  trust" >>"$dir/data/pg_hba.conf"
  done
  # CALLREC_PG_DURABLE=1 (the benchmarks): every commit flushed, as a real server does.
  local durable=off
  [[ ${CALLREC_PG_DURABLE:-} == 1 ]] && durable=on
  local diagnostics=""
  # The benchmarks' cluster logs what can stall a commit, with millisecond times to set beside a
  # load generator's slowest seconds.
  [[ $durable == on ]] && diagnostics="log_line_prefix = '%m [%p] '
log_checkpoints = on
log_autovacuum_min_duration = 0
log_min_duration_statement = 40
min_wal_size = 1GB"
  cat >>"$dir/data/postgresql.conf" <<EOF

# --- scripts/pg-cluster.sh: throwaway test cluster ---
$diagnostics
listen_addresses = '$listen'
unix_socket_directories = '$dir/sock'
fsync = $durable
synchronous_commit = on
full_page_writes = $durable
max_connections = 1000
logging_collector = off
include_if_exists = 'callrec-port.conf'
EOF
  [[ -z $owner ]] || chown "$owner:" "$dir/data/pg_hba.conf" "$dir/data/postgresql.conf"

  # A port free now may be taken before the server binds it (another start, running
  # concurrently): try again with another one.
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(free_port)
    echo "port = $port" >"$dir/data/callrec-port.conf"
    [[ -z $owner ]] || chown "$owner:" "$dir/data/callrec-port.conf"
    offset=$(( $(stat -c %s "$dir/log" 2>/dev/null || echo 0) + 1 ))
    if without_inherited_fds as_owner "$bindir/pg_ctl" start -s -D "$dir/data" -l "$dir/log" -w -t 60 >&2; then
      break
    fi
    if tail -c "+$offset" "$dir/log" 2>/dev/null | grep -qiE 'could not bind|address already in use|could not create any TCP/IP sockets'; then
      echo "pg-cluster: port $port was taken, trying another" >&2
      port=""
      continue
    fi
    tail -n 30 "$dir/log" >&2 2>/dev/null || true
    die "pg_ctl start failed (log: $dir/log)"
  done
  [[ -n $port ]] || die "no free port found after $attempt attempts"

  local ready=0 i
  for ((i = 0; i < 300; i++)); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U "$superuser"; then ready=1; break; fi
    sleep 0.1
  done
  if ((ready == 0)); then
    as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate >&2 || true
    tail -n 30 "$dir/log" >&2 || true
    die "server did not become ready on port $port"
  fi
  if ! "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres \
      -c "CREATE DATABASE $database" >&2; then
    as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate >&2 || true
    die "cannot create database $database"
  fi
  echo "pg-cluster: started in $dir on 127.0.0.1:$port" >&2
  echo "postgres://$superuser@127.0.0.1:$port/$database"
}

stop() {
  local dir=$1 bindir pid
  [[ -e $dir ]] || return 0
  [[ -d $dir ]] || die "$dir is not a directory"
  # Never remove a directory this script did not make.
  [[ -e $dir/$marker || -z $(ls -A "$dir") ]] || die "$dir is not a cluster made by pg-cluster.sh; not removing it"
  if [[ -f $dir/data/postmaster.pid ]]; then
    owner=""
    if ((EUID == 0)); then
      owner=$(stat -c %U "$dir/data")
      [[ $owner != root ]] || owner=""
    fi
    if bindir=$(find_bindir); then
      as_owner "$bindir/pg_ctl" stop -s -D "$dir/data" -m immediate -w >&2 || true
    else
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
      [[ $pid =~ ^[0-9]+$ ]] && kill -QUIT "$pid" 2>/dev/null || true
      sleep 1
    fi
  fi
  rm -rf "$dir"
}

# The cluster's owner and bindir, for down/up.
cluster_of() {
  local dir=$1
  [[ -e $dir/$marker && -d $dir/data ]] || die "$dir is not a cluster made by pg-cluster.sh"
  bindir=$(find_bindir) || die "PostgreSQL server binaries not found"
  owner=""
  if ((EUID == 0)); then
    owner=$(stat -c %U "$dir/data")
    [[ $owner != root ]] || owner=""
  fi
}

down() {
  local dir=$1 mode=${2:-fast} bindir
  [[ $mode == fast || $mode == immediate || $mode == smart ]] || die "mode must be fast, immediate or smart"
  cluster_of "$dir"
  as_owner "$bindir/pg_ctl" stop -s -D "$dir/data" -m "$mode" -w -t 60 >&2
}

up() {
  local dir=$1 bindir port i
  cluster_of "$dir"
  port=$(sed -n 's/^port = //p' "$dir/data/callrec-port.conf")
  without_inherited_fds as_owner "$bindir/pg_ctl" start -s -D "$dir/data" -l "$dir/log" -w -t 60 >&2 || die "pg_ctl start failed (log: $dir/log)"
  for ((i = 0; i < 300; i++)); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U "$superuser" && return 0
    sleep 0.1
  done
  die "server did not become ready on port $port"
}

owner=""
case "${1:-}" in
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  available) find_bindir >/dev/null ;;
  down) [[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 down DIR [fast|immediate]"; down "$2" "${3:-fast}" ;;
  up) [[ $# -eq 2 ]] || die "usage: $0 up DIR"; up "$2" ;;
  restart) [[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 restart DIR [fast|immediate]"; down "$2" "${3:-fast}"; up "$2" ;;
  *) echo "usage: $0 start DIR | stop DIR | available" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The operator's console at a million recordings (issue 19), measured with the real binary:
#   every page rendered server-side in <= 50 ms p95, the recordings list's next page <= 20 ms p95,
#   the overview <= 100 KB over the wire and naming nothing off the machine.
#
#   bench/console.sh [--rows N] [--requests N] [--store sqlite|postgres|both] [--callrec PATH]
#
# - Makes a ledger of N recordings (default 1,000,000) as a year of a busy PBX leaves it: 90 %
#   uploaded with their parts and call logs, failures under five codes, warnings on 2 %,
#   deletions, a few pending; a source file each (FreePBX), three audit lines each, 50,000
#   finished jobs, and a waveform for each recording the pages open. Written with SQL (generate_series / a recursive CTE) into
#   the schema callrec made (`callrec status` migrates it), so seeding takes seconds, not hours.
# - Starts `callrec console` on it (a loopback port, a password from the environment) and asks
#   each page --requests times (default 200) over one keep-alive connection, timing each answer
#   whole: overview; the list's first page, its next pages (following the cursor), filtered by
#   state, error code, warning code, source, one day, phone number and call-log id; a recording's
#   page; the delete confirmation; the reconcile page. Prints p50 / p95 / max per page and the overview's size.
# PostgreSQL: CALLREC_BENCH_POSTGRES_URL (a database of its own: the tables are dropped), else a
# throwaway cluster (scripts/pg-cluster.sh). Needs python3, and psql for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=1000000 requests=200 stores=both bin=.build/release/callrec
while (($#)); do
  case "$1" in
    --rows) rows=$2; shift ;;
    --requests) requests=$2; shift ;;
    --store) stores=$2; shift ;;
    --callrec) bin=$2; shift ;;
    *) echo "usage: bench/console.sh [--rows N] [--requests N] [--store sqlite|postgres|both] [--callrec PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "console.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
bin=$(readlink -f "$bin")
work=$(mktemp -d /tmp/callrec-console-bench.XXXXXX)
chmod 755 "$work"
cluster="" console=""
cleanup() {
  [[ -n $console ]] && kill "$console" 2>/dev/null && wait "$console" 2>/dev/null
  [[ -n $cluster ]] && scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
unset CALLREC_DATABASE PIPEDRIVE_API_TOKEN TELNYX_PUBLIC_KEY
export CALLREC_CONSOLE_PASSWORD="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

# One seeding script for both dialects: every table is filled from the same numbered rows
# i = 1…N (a recursive CTE in SQLite, generate_series in PostgreSQL), each column an expression
# of i both read alike; times are unix ms in SQLite and TIMESTAMPTZ in PostgreSQL.
seed_sql() {  # sqlite|postgres
  local series key t0=1765000000000  # 2025-12-06: a year of calls, one every 30 s
  if [[ $1 == sqlite ]]; then
    series="(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $rows) SELECT i FROM s) AS n"
    key="printf('%016x', i * 2654435761 % 4294967296) || printf('%08x', i)"
    ts() { echo "($1)"; }
  else
    series="generate_series(1::int8, $rows) AS n(i)"
    key="lpad(to_hex((i * 2654435761) % 4294967296), 16, '0') || lpad(to_hex(i), 8, '0')"
    ts() { echo "(TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * ($1))"; }
  fi
  local created updated path uploaded="i % 100 < 90"
  created=$(ts "$t0 + i * 30000") updated=$(ts "$t0 + i * 30000 + 60000")
  path="'/var/spool/asterisk/monitor/' || (CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END) || '-2125550' || (100 + i % 900) || '-1617555' || (1000 + i % 9000) || '-' || i || '.wav'"
  cat <<SQL
INSERT INTO recording (key, path, metadata, state, error_code, error_message, part_count, seconds, created_at, updated_at)
SELECT $key, $path,
  CASE WHEN i % 10 = 0 THEN '{"call_log": {"to_phone_number": "+1617555' || (1000 + i % 9000) || '", "outcome": "connected"}}' END,
  CASE WHEN i % 100 < 90 THEN 'uploaded' WHEN i % 100 < 94 THEN 'failed' WHEN i % 100 < 97 THEN 'deleted'
       WHEN i % 100 < 98 THEN 'pending' ELSE 'transcoded' END,
  CASE WHEN i % 100 >= 90 AND i % 100 < 94 THEN (CASE i % 5 WHEN 0 THEN 'silence' WHEN 1 THEN 'one_way_audio' WHEN 2 THEN 'http_422'
       WHEN 3 THEN 'decode_failed' ELSE 'too_short' END) END,
  CASE WHEN i % 100 >= 90 AND i % 100 < 94 THEN 'seeded failure' END,
  CASE WHEN $uploaded THEN 1 ELSE 0 END, 30 + i % 900, $created, $updated
FROM $series;
INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, attached_at)
SELECT $key, 0, '/var/lib/callrec/spool/' || i || '-0.mp3', 480000, 30 + i % 900, $key || $key || $key, 'attached',
       CAST(100000 + i AS TEXT), $updated
FROM $series WHERE $uploaded;
INSERT INTO source_file (path, directory, pbx, device, inode, size, modified_ns, changed_ns, recording_key, audio_sha256, verdict, seen_at)
SELECT $path, '/var/spool/asterisk/monitor', 'freepbx', 2049, i, 960000, ($t0 + i * 30000) * 1000000, ($t0 + i * 30000) * 1000000,
       $key, $key || $key, 'registered', $created
FROM $series;
INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
SELECT $created, $key, 'registered', NULL, NULL, $path, 'worker' FROM $series;
INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
SELECT $updated, $key, 'create_call_log', 'pipedrive', 201, NULL, 'worker' FROM $series WHERE $uploaded;
INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
SELECT $updated, $key, 'attach_recording', 'pipedrive', 200, NULL, 'worker' FROM $series WHERE $uploaded;
INSERT INTO recording_warning (code, recording_key, recording_created)
SELECT CASE WHEN i % 3 = 0 THEN 'one_way_audio' ELSE 'clipping' END, $key, $created FROM $series WHERE i % 50 = 1;
INSERT INTO queue_job (queue, kind, args, unique_key, state, run_at, created_at, updated_at, finalized_at, attempt)
SELECT 'default', 'upload', '{}', 'upload:' || $key, 'completed', $updated, $created, $updated, $updated, 1
FROM $series WHERE i > $rows - 50000;
SQL
}

# The recordings each page opens: a recording every rows/requests, their waveforms.
keys_sql() {
  echo "SELECT key FROM recording WHERE state = 'uploaded' ORDER BY created_at LIMIT $requests OFFSET 0"
}

measure() {  # LABEL
  python3 - "$1" "$port" "$requests" "$work/keys.txt" <<'PY'
import base64, http.client, os, random, re, sys, time, urllib.parse
label, port, requests, keys_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
keys = [k.strip() for k in open(keys_file) if k.strip()]
auth = "Basic " + base64.b64encode(b"bench:" + os.environ["CALLREC_CONSOLE_PASSWORD"].encode()).decode()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
random.seed(19)

def get(path):
    path = path if path.startswith("/console") else "/console" + path
    t = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": auth})
    r = conn.getresponse()
    body = r.read()
    elapsed = (time.perf_counter() - t) * 1000
    if r.status != 200:
        sys.exit(f"console.sh: GET {path} answered {r.status}: {body[:300]!r}")
    return elapsed, body

def report(name, times, goal, rows=None):
    times = sorted(times)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    verdict = "ok" if p(0.95) <= goal else "MISSED"
    found = f"  rows {rows:5.1f}" if rows is not None else ""
    print(f"  {label:8} {name:30} p50 {p(0.5):7.1f} ms  p95 {p(0.95):7.1f} ms  max {times[-1]:7.1f} ms  (goal p95 <= {goal} ms: {verdict}){found}")

get("/")  # the first answer opens the store's connections
pages = {
    "overview": lambda i: "/",
    "list, first page": lambda i: "/recordings",
    "list by state failed": lambda i: "/recordings?state=failed",
    "list by code silence": lambda i: "/recordings?code=silence",
    "list by phone (as typed)": lambda i: "/recordings?phone=" + urllib.parse.quote(f"(617) 555-{1000 + (i * 37) % 9000}"),
    "list by call log": lambda i: f"/recordings?call_log={100000 + (i * 4999) % 900000}",
    "list by warning one_way_audio": lambda i: "/recordings?warning=one_way_audio",
    "list by source": lambda i: "/recordings?source=" + urllib.parse.quote("/var/spool/asterisk/monitor/"),
    "list by date (one day)": lambda i: f"/recordings?from=2026-{1 + i % 9:02d}-{1 + i % 28:02d}&to=2026-{1 + i % 9:02d}-{1 + i % 28:02d}",
    "reconcile page": lambda i: "/reconcile",
    "recording page": lambda i: "/recordings/" + keys[i % len(keys)],
    "delete confirmation": lambda i: "/recordings/" + keys[i % len(keys)] + "/delete",
}
for name, path in pages.items():
    times, rows = [], 0
    for i in range(requests):
        elapsed, body = get(path(i))
        times.append(elapsed)
        rows += len(re.findall(rb'<td><a href="/console/recordings/[0-9a-f]+">', body))
    # Rows: the recordings a list page showed, on average (a filter that finds nothing is no test).
    report(name, times, 50, rows / requests if name.startswith("list") else None)

# The list's next pages: follow the cursor from the first page, as a person paging would.
times, path = [], "/recordings"
while len(times) < requests:
    elapsed, body = get(path)
    if not path.endswith("/recordings"):
        times.append(elapsed)
    m = re.search(rb'rel="next" href="([^"]+)"', body)
    path = "/" + m.group(1).decode().replace("&amp;", "&").lstrip("/") if m else "/recordings"
report("list, next page", times, 20)

_, body = get("/recordings/" + keys[0])
if b"<h2>Waveform</h2>" not in body:
    sys.exit("console.sh: the recording page shows no waveform (the seeded one did not read back)")

_, body = get("/")
external = re.findall(rb'(?:src|href|action)="(?:https?:)?//[^"]*"', body)
size = len(body)
print(f"  {label:8} overview size {size / 1024:.1f} KB (goal <= 100 KB: {'ok' if size <= 100 * 1024 else 'MISSED'}); "
      f"references off the machine: {len(external)}{' ' + repr(external[:3]) if external else ''}")
PY
}

run() {  # sqlite|postgres
  local store=$1 flags t
  if [[ $store == sqlite ]]; then
    flags=(--state "$work/state")
    mkdir -p "$work/empty"
    "$bin" enqueue "$work/empty" "${flags[@]}" >/dev/null 2>&1  # makes and migrates the ledger
  else
    local url=${CALLREC_BENCH_POSTGRES_URL:-}
    if [[ -z $url ]]; then
      cluster="$work/pg"
      url=$(scripts/pg-cluster.sh start "$cluster" 2>/dev/null)
    fi
    psql "$url" -Xq -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null 2>&1 || true
    flags=(--database "$url")
    mkdir -p "$work/empty"
    "$bin" enqueue "$work/empty" "${flags[@]}" >/dev/null 2>&1
  fi
  t=$(date +%s.%N)
  if [[ $store == sqlite ]]; then
    seed_sql sqlite >"$work/seed.sql"
    python3 - "$work/state/callrec.sqlite" "$work/seed.sql" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
# No ANALYZE: callrec runs none, so the planner works from what callrec's own indexes tell it.
db.executescript("PRAGMA journal_mode=WAL; BEGIN;" + open(sys.argv[2]).read() + "COMMIT;")
PY
    python3 -c "import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]" \
      "$work/state/callrec.sqlite" "$(keys_sql)" >"$work/keys.txt"
    # The pages' recordings have a waveform of 1,000 points, as a transcode keeps it.
    python3 - "$work/state/callrec.sqlite" "$work/keys.txt" <<'PY'
import base64, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
levels = base64.b64encode(bytes((n * 37) % 256 for n in range(1000))).decode()
db.executemany("INSERT INTO recording_waveform (recording_key, seconds_per_point, levels) VALUES (?, 0.6, ?)",
               [(k.strip(), levels) for k in open(sys.argv[2]) if k.strip()])
db.commit()
PY
  else
    # PostgreSQL's autovacuum analyzes a table this size soon after a load: done here at once.
    { echo "BEGIN;"; seed_sql postgres; echo "COMMIT; ANALYZE;"; } | psql "$url" -Xq -v ON_ERROR_STOP=1 >/dev/null
    psql "$url" -XAtqc "$(keys_sql)" >"$work/keys.txt"
    psql "$url" -Xq -v ON_ERROR_STOP=1 -c "INSERT INTO recording_waveform (recording_key, seconds_per_point, levels)
      SELECT key, 0.6, (SELECT replace(encode(decode(string_agg(lpad(to_hex((g * 37) % 256), 2, '0'), '' ORDER BY g), 'hex'), 'base64'), E'\\n', '')
                        FROM generate_series(0, 999) g)
      FROM ($(keys_sql)) k" >/dev/null
  fi
  echo "  $store: seeded $rows recordings in $(python3 -c "print(f'{$(date +%s.%N) - $t:.0f}')") s" >&2
  # The phone numbers index (migration v8) made by callrec's own migration from what was seeded:
  # its backfill, timed at this size.
  t=$(date +%s.%N)
  if [[ $store == sqlite ]]; then
    python3 -c "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); db.executescript(sys.argv[2])" "$work/state/callrec.sqlite" \
      "DROP TABLE recording_number; DROP INDEX queue_job_unique_key; DELETE FROM grdb_migrations WHERE identifier = 'v8-recording-numbers';"
  else
    psql "$url" -Xq -v ON_ERROR_STOP=1 -c "DROP TABLE recording_number; DROP INDEX queue_job_unique_key; DELETE FROM callrec_schema WHERE version = 8" >/dev/null
  fi
  "$bin" enqueue "$work/empty" "${flags[@]}" >/dev/null 2>&1
  echo "  $store: migration v8 (the phone numbers of $rows recordings) took $(python3 -c "print(f'{$(date +%s.%N) - $t:.1f}')") s" >&2
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" console --listen "127.0.0.1:$port" "${flags[@]}" >"$work/console.log" 2>&1 &
  console=$!
  for _ in $(seq 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/console/" 2>/dev/null | grep -q 401 && break; sleep 0.05; done
  measure "$store"
  kill "$console"; wait "$console" 2>/dev/null || true; console=""
  if [[ -n $cluster ]]; then scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1; cluster=""; fi
}

echo "console.sh: $rows recordings, $requests requests a page ($bin)"
if [[ $stores == sqlite || $stores == both ]]; then run sqlite; fi
if [[ $stores == postgres || $stores == both ]]; then run postgres; fi

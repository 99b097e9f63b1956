#!/usr/bin/env bash
# The webhook goal G2 (issue 16), measured with the real binaries: `callrec worker --listen` (no
# fetch, transcode or upload slots: only the endpoint and its group commit work) answers signed
# Telnyx events sent by `callrec-webhook-load`, open loop: event i is due at start + i/RATE whatever
# the answers before it did, and its latency counts from that instant (no coordinated omission).
#   each event distinct, 4 per call (initiated, answered, hangup, recording.saved: the last
#   registers a recording and enqueues its fetch job, as a live one does); signed Ed25519 as
#   Telnyx signs, verified by the worker with the generator's public key;
#   goal: 2,000 events/s with p99 <= 50 ms, on SQLite and on PostgreSQL (a throwaway cluster,
#   scripts/pg-cluster.sh with fsync on, unless CALLREC_BENCH_POSTGRES_URL), every answer a 2xx.
# Smoke test: bench/webhooks.sh --rate 200 --seconds 5 --warmup 1
# CALLREC_BENCH_LOG_LEVEL=debug: the worker's log (kept with --keep) names each commit over 40 ms.
# Usage: bench/webhooks.sh [--rate N] [--seconds S] [--warmup S] [--connections N] [--backends sqlite,postgres]
#                          [--no-build] [--callrec PATH] [--load PATH] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release/callrec
load=""  # callrec-webhook-load: next to callrec unless --load
rate=2000
seconds=30
warmup=5
connections=64
backends=sqlite,postgres
build=1
keep=0
goal_p99_ms=50
while (($#)); do
  case "$1" in
    --rate) rate=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --connections) connections=$2; shift ;;
    --backends) backends=$2; shift ;;
    --no-build) build=0 ;;
    --callrec) bin=$2; build=0; shift ;;
    --load) load=$2; shift ;;
    --keep) keep=1 ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
  shift
done
if ((build)); then
  swift build -c release --product callrec >&2
  swift build -c release --product callrec-webhook-load >&2
fi
[[ -x $bin ]] || { echo "webhooks.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
load=${load:-$(dirname "$bin")/callrec-webhook-load}
[[ -x $load ]] || { echo "webhooks.sh: $load is missing; build it with: swift build -c release --product callrec-webhook-load" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-webhooks-bench.XXXXXX)
chmod 755 "$work"  # the throwaway PostgreSQL runs as an unprivileged user
worker="" cluster=""
cleanup() {
  [[ -n $worker ]] && kill "$worker" 2>/dev/null || true
  wait 2>/dev/null || true
  [[ -n $cluster ]] && scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1 || true
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
unset CALLREC_DATABASE TELNYX_API_KEY TELNYX_API_URL VOIPNOW_ACCESS_TOKEN VOIPNOW_API_URL
# Nothing is uploaded (no upload slots); a token the worker may want is made up.
export PIPEDRIVE_API_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export TELNYX_PUBLIC_KEY
TELNYX_PUBLIC_KEY=$("$load" --key-file "$work/key" --print-public-key)

# $1 = label; the environment says the store. Prints one result line (JSON) to $work/$1.json.
run() {
  local label=$1 log="$work/worker-$1.log" url=""
  "$bin" worker --listen 127.0.0.1:0 --fetch-slots 0 --concurrency 0 --upload-slots 0 --state "$work/state-$label" \
    --log-level "${CALLREC_BENCH_LOG_LEVEL:-notice}" >"$log" 2>&1 &
  worker=$!
  for _ in $(seq 600); do
    url=$(grep -o 'webhooks served at http://[^ ]*/webhooks/telnyx' "$log" 2>/dev/null | head -1 | sed 's/webhooks served at //') || true
    [[ -n $url ]] && break
    kill -0 "$worker" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $url ]]; then
    echo "webhooks.sh: the $label worker never served webhooks:" >&2; tail -20 "$log" >&2
    kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; worker=""
    return 1
  fi
  echo "webhooks.sh: $label: $rate events/s for $seconds s (+ $warmup s warm-up) over at most $connections connections to $url" >&2
  "$load" --url "$url" --rate "$rate" --seconds "$seconds" --warmup "$warmup" --connections "$connections" --key-file "$work/key" \
    >"$work/$label.json" 2>"$work/load-$label.log" || { cat "$work/load-$label.log" >&2; }
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
  worker=""
  # What the worker kept: one event row per event sent (warm-up included), one recording per call.
  "$bin" status --json --state "$work/state-$label" >"$work/status-$label.json" 2>/dev/null || true
}

report() {
  local label=$1
  python3 - "$work/$label.json" "$work/status-$label.json" "$label" "$goal_p99_ms" "$rate" <<'PY'
import json, sys
path, status_path, label, goal, rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
try:
    r = json.load(open(path))
except Exception:
    print(f"| {label} | – | – | – | – | – | – | no result (see the load log) | MISS |"); sys.exit(1)
try:
    recordings = sum(json.load(open(status_path)).get("recordings", {}).values())
except Exception:
    recordings = "?"
ok = r["errors"] == 0 and r["non_2xx"] == 0 and r["p99_ms"] is not None and r["p99_ms"] <= goal and r["achieved_rate"] >= 0.95 * rate
fmt = lambda v: "–" if v is None else f"{v:.1f}"
bad = f"{r['non_2xx']} non-2xx {r['statuses']}, {r['errors']} errors" if r["non_2xx"] or r["errors"] else "0"
print(f"| {label} | {r['sent']} | {r['achieved_rate']:.0f} | {fmt(r['p50_ms'])} | **{fmt(r['p99_ms'])}** | {fmt(r['max_ms'])} | {bad} | {recordings} | {'PASS' if ok else 'MISS'} |")
worst = ", ".join(f"{w['at'][11:19]} p99 {w['p99_ms']:.0f}/max {w['max_ms']:.0f} ms" for w in r.get("worst_seconds", [])[:3])
if worst: print(f"webhooks.sh: {label}: slowest seconds (UTC): {worst}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

results=()
IFS=, read -ra wanted <<<"$backends"
for backend in "${wanted[@]}"; do
  case "$backend" in
    sqlite) run SQLite && results+=(SQLite) ;;
    postgres)
      pg=${CALLREC_BENCH_POSTGRES_URL:-}
      if [[ -z $pg ]] && scripts/pg-cluster.sh available; then
        cluster="$work/pg"
        # Durable, as a production server: fsync, synchronous_commit and full_page_writes on.
        pg=$(CALLREC_PG_DURABLE=1 scripts/pg-cluster.sh start "$cluster" 2>"$work/pg.log")
        # A server that has run for a while recycles its WAL segments; a fresh cluster creates
        # (zero-fills and fsyncs, 16 MB each) a new one every few seconds at this rate, inside
        # some commit. 300 MB of WAL and a checkpoint leave segments to recycle, as in steady
        # state (CALLREC_BENCH_COLD=1 measures the fresh cluster instead).
        if [[ -n $pg && ${CALLREC_BENCH_COLD:-} != 1 ]]; then
          psql "$pg" -qAtX -v ON_ERROR_STOP=1 \
            -c "CREATE TABLE callrec_bench_wal AS SELECT g, repeat('x', 2000) AS filler FROM generate_series(1, 150000) AS g" \
            -c "DROP TABLE callrec_bench_wal" -c "CHECKPOINT" >/dev/null 2>>"$work/pg.log" \
            || echo "webhooks.sh: could not precondition the cluster's WAL (see $work/pg.log); measuring it cold" >&2
        fi
      fi
      if [[ -n $pg ]]; then
        CALLREC_DATABASE=$pg run PostgreSQL && results+=(PostgreSQL)
        [[ -n $cluster ]] && cp "$cluster/log" "$work/pg-server.log" 2>/dev/null || true
        scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1 || true; cluster=""
      else
        echo "webhooks.sh: PostgreSQL is not installed here (scripts/pg-cluster.sh available failed)" >&2
      fi
      ;;
    *) echo "webhooks.sh: unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

echo
echo "### Webhook endpoint: $rate signed events/s open loop, $seconds s measured after $warmup s, $connections connections (goal p99 <= $goal_p99_ms ms)"
echo
echo "| backend | events measured | answered/s | p50 ms | p99 ms | max ms | failed | recordings kept | goal |"
echo "|---|---|---|---|---|---|---|---|---|"
status=0
for label in "${results[@]}"; do report "$label" || status=1; done
((${#results[@]} == ${#wanted[@]})) || status=1
exit $status

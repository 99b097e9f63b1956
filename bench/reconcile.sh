#!/usr/bin/env bash
# The reconcile goal (issue 7), measured with the real binary against `callrec sandbox`:
#   10,000 uploaded recordings (one call log each), 1 % of their call logs deleted in the CRM;
#   `callrec reconcile` (the plan; --max-delete above the 100 so that every candidate is
#   confirmed) must spend <= 20 tokens per 50 call logs listed + 2 per confirmation (~4,200),
#   never a GET per recording, and its wall time must be the rate limiter's, not callrec's.
# Two runs: the Lite burst limit (20 requests per 2 s, where the limiter sets the pace) and a
# raised one (2,000 per 2 s, which shows callrec's own time). BURSTS="20" runs one of them.
# Usage: bench/reconcile.sh [--recordings N] [--deleted N] [--callrec PATH] [--bench PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release/callrec
bench=""  # callrec-bench (the benchmarks' plumbing): next to callrec unless --bench
recordings=10000
deleted=100
while (($#)); do
  case "$1" in
    --recordings) recordings=$2; shift ;;
    --deleted) deleted=$2; shift ;;
    --callrec) bin=$2; shift ;;
    --bench) bench=$2; shift ;;
    *) echo "usage: bench/reconcile.sh [--recordings N] [--deleted N] [--callrec PATH] [--bench PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "reconcile.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
bench=${bench:-$(dirname "$bin")/callrec-bench}
[[ -x $bench ]] || { echo "reconcile.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-reconcile-bench.XXXXXX)
sandbox=""
cleanup() {
  [[ -n $sandbox ]] && { kill "$sandbox" 2>/dev/null; wait "$sandbox" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
unset CALLREC_DATABASE
export PIPEDRIVE_API_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export PIPEDRIVE_DAILY_TOKENS=1000000
# Pipedrive only: the plan needs no provider credentials (with TELNYX_API_KEY set, reconcile also
# lists Telnyx recordings to report missing ones, which is not what this measures).
unset TELNYX_API_KEY TELNYX_API_URL VOIPNOW_ACCESS_TOKEN VOIPNOW_API_URL
counter() {  # $1 = python expression on the sandbox state `s`
  curl -fsS "$base/_sandbox/state" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

run() {  # $1 = burst per 2 s
  local burst=$1 state="$work/state-$1"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  "$bin" sandbox --port "$port" --burst "$burst" --daily-tokens 1000000 >"$work/sandbox-$burst.log" 2>&1 &
  sandbox=$!
  for _ in $(seq 100); do curl -fs "$base/_sandbox/state" >/dev/null 2>&1 && break; sleep 0.1; done
  export PIPEDRIVE_API_URL="$base/v1" PIPEDRIVE_BURST=$burst

  local t0 t1
  t0=$(date +%s.%N)
  "$bench" bench-reconcile-seed --sandbox-url "$base" --recordings "$recordings" --deleted "$deleted" --state "$state" --log-level warning
  t1=$(date +%s.%N)
  local seed_s; seed_s=$(python3 -c "print(f'{$t1-$t0:.1f}')")
  sleep 2.1  # the seeding's DELETEs leave the burst window empty
  local tokens0 lists0 gets0
  tokens0=$(counter 's["counters"]["tokens_spent"]')
  lists0=$(counter 's["counters"]["requests_per_route"].get("GET /v1/callLogs", 0)')
  gets0=$(counter 's["counters"]["requests_per_route"].get("GET /v1/callLogs/{id}", 0)')

  set +e
  /usr/bin/time -f "%e %M %U %S" -o "$work/time-$burst" "$bin" reconcile --state "$state" --max-delete $((deleted * 2)) --json --log-level warning \
    >"$work/report-$burst.json" 2>"$work/reconcile-$burst.log"
  local status=$?
  set -e
  local tokens1 lists1 gets1
  tokens1=$(counter 's["counters"]["tokens_spent"]')
  lists1=$(counter 's["counters"]["requests_per_route"].get("GET /v1/callLogs", 0)')
  gets1=$(counter 's["counters"]["requests_per_route"].get("GET /v1/callLogs/{id}", 0)')
  kill "$sandbox"; wait "$sandbox" 2>/dev/null || true; sandbox=""

  python3 - "$burst" "$status" "$recordings" "$deleted" "$seed_s" "$work/time-$burst" "$work/report-$burst.json" \
    "$((tokens1 - tokens0))" "$((lists1 - lists0))" "$((gets1 - gets0))" <<'PY'
import json, math, sys
burst, status, n, deleted, seed_s, timef, reportf, tokens, lists, gets = sys.argv[1:]
burst, status, n, deleted, tokens, lists, gets = map(int, (burst, status, n, deleted, tokens, lists, gets))
wall, rss_kb, user, system = open(timef).read().split()[-4:]
wall, user, system = float(wall), float(user), float(system)
doc = json.load(open(reportf))
r, t = doc["report"], doc["report"]["totals"]
requests = lists + gets
goal = 20 * math.ceil((n - deleted) / 50) + 2 * (deleted + 1)
floor = max(0, math.ceil(requests / burst) - 1) * 2.0  # the first `burst` requests go at once
print(f"burst {burst}/2 s: reconcile of {n} uploaded recordings, {deleted} call logs deleted in the CRM (exit {status}, outcome {r['outcome']})")
print(f"  found: {t['candidates']} candidates, {t['confirmed_gone']} confirmed gone, {t['listing_gaps']} listing gaps, {t['planned_recordings']} planned")
print(f"  requests: {lists} list pages + {gets} GETs (candidates + 1 sentinel) = {requests}; never a GET per recording: {gets <= deleted + 1}")
print(f"  tokens: {tokens} charged by the sandbox ({t['tokens_spent']} by the report); goal <= {goal} (20 per page of 50 + 2 per confirmation): {'met' if tokens <= goal else 'MISSED'}")
print(f"  wall {wall:.2f} s (rate-limiter floor {floor:.1f} s at {burst} per 2 s; {doc.get('rate_limited', 0)} answered 429; callrec CPU {user + system:.2f} s, peak RSS {int(rss_kb) // 1024} MiB); seeding took {seed_s} s")
PY
}

for burst in ${BURSTS:-20 2000}; do run "$burst"; done

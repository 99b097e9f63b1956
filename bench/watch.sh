#!/usr/bin/env bash
# The watch goal G1 (issue 15), measured with the real binaries: `callrec-pbx-sim` writes a live
# FreePBX tree (RATE calls/s for DURATION s, calls of 60-180 s: ~1,200 recordings open at 10/s),
# `callrec worker --watch` takes each recording as it closes and uploads it to a `callrec sandbox`
# process (limiter off: a burst of 100,000).
#   latency = the sandbox's upload time of the recording - the manifest's close time (joined by
#             the file's stem, which the upload's file name carries); goal p50 <= settle + 0.5 s,
#             p99 <= settle + 2 s, reported over all calls and without the deliberately late CDRs.
#             The sandbox dates uploads to the millisecond;
#   backlog = callrec_queue_depth from the worker's /metrics every 5 s; goal: no growth (its
#             slope over the stream's last 4 minutes, calls per minute);
#   --kill-every S: kill -9 and restart the worker every S seconds; then exactly one call log
#             (found by its marker, the call's key D6) per logged manifest call and none for the others.
# Smoke test: bench/watch.sh --rate 2 --duration 30 --call-seconds 5-15
# Usage: bench/watch.sh [--rate N] [--duration S] [--call-seconds A-B] [--quirks Q] [--kill-every S] [--settle S]
#                       [--seed N] [--start ISO] [--timezone Z] [--drain S] [--callrec PATH] [--sim PATH] [--keep]
# (--drain: how long to wait after the stream for the last uploads; default 600 s, past a CDR wait)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release/callrec
sim=""  # callrec-pbx-sim: next to callrec unless --sim
rate=10
duration=300
call_seconds=60-180
quirks="late-cdr=0.01:30s,ring-group,internal=0.1,missed=0.1"
kill_every=0
settle=2
seed=1
start=2026-11-01T05:50:00Z  # 01:50 EDT: the stream crosses New York's fall-back at 06:00Z
timezone=America/New_York
keep=0
drain=600
while (($#)); do
  case "$1" in
    --rate) rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --call-seconds) call_seconds=$2; shift ;;
    --quirks) quirks=$2; shift ;;
    --kill-every) kill_every=$2; shift ;;
    --settle) settle=$2; shift ;;
    --seed) seed=$2; shift ;;
    --start) start=$2; shift ;;
    --timezone) timezone=$2; shift ;;
    --callrec) bin=$2; shift ;;
    --sim) sim=$2; shift ;;
    --drain) drain=$2; shift ;;
    --keep) keep=1 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "watch.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
sim=${sim:-$(dirname "$bin")/callrec-pbx-sim}
[[ -x $sim ]] || { echo "watch.sh: $sim is missing; build it with: swift build -c release --product callrec-pbx-sim" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-watch-bench.XXXXXX)
tree=$work/tree
sandbox="" worker="" simulator=""
cleanup() {
  for p in $simulator $worker $sandbox; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
unset CALLREC_DATABASE TELNYX_API_KEY TELNYX_API_URL VOIPNOW_ACCESS_TOKEN VOIPNOW_API_URL
export PIPEDRIVE_API_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export PIPEDRIVE_DAILY_TOKENS=100000000 PIPEDRIVE_BURST=100000

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin" sandbox --port "$port" --burst 100000 --daily-tokens 100000000 >"$work/sandbox.log" 2>&1 &
sandbox=$!
for _ in $(seq 100); do curl -fs "$base/_sandbox/state" >/dev/null 2>&1 && break; sleep 0.1; done
export PIPEDRIVE_API_URL="$base/v1"

start_worker() {
  "$bin" worker --watch "$tree" --source freepbx --cdr "$tree/Master.csv" --timezone "$timezone" --region US \
    --extensions 100-199 --settle "$settle" --metrics-port 0 --state "$work/state" --log-level notice >>"$work/worker.log" 2>&1 &
  worker=$!
}
metrics_url() {  # the newest "metrics served at http://…/metrics" line (a restarted worker picks a new port)
  grep -o 'metrics served at http://[^ ]*/metrics' "$work/worker.log" 2>/dev/null | tail -1 | sed 's/metrics served at //'
}
queue_depth() {  # due jobs over all queues, or empty when the worker does not answer
  local url; url=$(metrics_url)
  [[ -n $url ]] || return 0
  local page; page=$(curl -fs --max-time 2 "$url" 2>/dev/null) || return 0
  awk '/^callrec_queue_depth/ {s += $NF} END {print s + 0}' <<<"$page"  # no line yet: no queue has had a job
}

echo "watch.sh: $rate calls/s for $duration s, calls of $call_seconds s, quirks $quirks, settle $settle s, kill -9 every ${kill_every} s (0: never); work in $work" >&2
"$sim" --layout freepbx --out "$tree" --rate "$rate" --duration "$duration" --call-seconds "$call_seconds" --seed "$seed" \
  --quirks "$quirks" --start "$start" --timezone "$timezone" --region US --manifest "$work/manifest.jsonl" >"$work/sim.log" 2>&1 &
simulator=$!
for _ in $(seq 100); do [[ -e $tree/Master.csv ]] && break; sleep 0.1; done
start_worker
t0=$(date +%s.%N)
kills=0 last_kill=$t0 last_sample=0
: >"$work/backlog.tsv"
sample() {
  local now depth; now=$(date +%s.%N)
  depth=$(queue_depth)
  if [[ -n $depth ]]; then printf '%s\t%s\n' "$(python3 -c "print(f'{$now-$t0:.1f}')")" "$depth" >>"$work/backlog.tsv"; fi
}
while kill -0 "$simulator" 2>/dev/null; do
  sleep 1
  now=$(date +%s)
  if ((now - last_sample >= 5)); then sample; last_sample=$now; fi
  if ((kill_every > 0)) && python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $last_kill >= $kill_every else 1)"; then
    kill -9 "$worker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
    kills=$((kills + 1)); last_kill=$(date +%s.%N)
    start_worker
  fi
done
wait "$simulator" || { echo "watch.sh: the simulator failed:" >&2; cat "$work/sim.log" >&2; exit 1; }
simulator=""
stream_end=$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")
# Drain: until every logged call's recording arrived (or --drain seconds: a CDR wait may run out).
expected=$(python3 -c "import json; print(sum(1 for l in open('$work/manifest.jsonl') if json.loads(l)['logged']))")
deadline=$(($(date +%s) + drain))
while (($(date +%s) < deadline)); do
  arrived=$(curl -fs "$base/_sandbox/state" | python3 -c "import json,sys; print(sum(1 for c in json.load(sys.stdin)['call_logs'] if c.get('recording')))")
  ((arrived >= expected)) && break
  sleep 2
  if (($(date +%s) - last_sample >= 5)); then sample; last_sample=$(date +%s); fi
done
kill -TERM "$worker" 2>/dev/null || true
wait "$worker" 2>/dev/null || true
worker=""
curl -fs "$base/_sandbox/state" >"$work/sandbox-state.json"

python3 - "$work" "$settle" "$kills" "$stream_end" "$rate" "$duration" <<'PY'
import hashlib, json, re, statistics, sys
from datetime import datetime
work, settle, kills, stream_end, rate, duration = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
def when(s): return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
calls = [json.loads(l) for l in open(f"{work}/manifest.jsonl")]
logs = [c for c in json.load(open(f"{work}/sandbox-state.json"))["call_logs"] if not c.get("deleted")]
key = lambda call: hashlib.sha256(f"callrec-call\0freepbx\0{call['call_id']}".encode()).hexdigest()[:32]  # D6; markers carry 32 hex
per_key = {}
for log in logs:
    m = re.search(r"\[callrec:([0-9a-f]{32,64}):p\d+\]", log.get("note") or "")
    if m: per_key.setdefault(m.group(1)[:32], []).append(log)
by_stem = {}
for log in logs:
    r = log.get("recording")
    if r: by_stem.setdefault(re.sub(r"(-part\d+)?\.mp3$", "", r["filename"]), []).append(when(r["uploaded_at"]))
lat, lat_on_time, missing = [], [], 0
for call in calls:
    if not call["logged"]: continue
    if call["stem"] not in by_stem: missing += 1; continue
    l = min(by_stem[call["stem"]]) - when(call["closed_at"])
    lat.append(l)
    if not call["late_cdr"]: lat_on_time.append(l)
def pct(xs, p): return sorted(xs)[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
logged = [c for c in calls if c["logged"]]
print(f"watch: {len(calls)} calls at {rate}/s for {duration} s ({len(logged)} to log; {sum(c['late_cdr'] for c in calls)} with a late CDR), settle {settle:g} s, {kills} kill -9s")
for name, xs in (("all", lat), ("without late CDRs", lat_on_time)):
    p50, p99 = pct(xs, 50), pct(xs, 99)  # uploads are dated to the millisecond
    print(f"  latency close->upload, {name}: n={len(xs)} p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(xs, default=float('nan')):.2f} s"
          f" (goal p50 <= {settle + 0.5:g}, p99 <= {settle + 2:g}: {'met' if xs and p50 <= settle + 0.5 and p99 <= settle + 2 else 'MISSED'})")
samples = [tuple(map(float, l.split())) for l in open(f"{work}/backlog.tsv") if l.strip()]
window = [(t, d) for t, d in samples if stream_end - 240 <= t <= stream_end] or samples
if len(window) >= 2:
    n = len(window); mt = sum(t for t, _ in window) / n; md = sum(d for _, d in window) / n
    var = sum((t - mt) ** 2 for t, _ in window)
    slope = sum((t - mt) * (d - md) for t, d in window) / var * 60 if var else 0.0
    print(f"  backlog (callrec_queue_depth, {len(samples)} samples): max {max(d for _, d in samples):.0f}, slope over the stream's last {window[-1][0] - window[0][0]:.0f} s {slope:+.2f} jobs/min")
else:
    print(f"  backlog: {len(samples)} samples (too few for a slope)")
wrong = [(c["call_id"], len(per_key.get(key(c), []))) for c in calls if len(per_key.get(key(c), [])) != (1 if c["logged"] else 0)]
bare = [k for k, ls in per_key.items() if any(not l.get("recording") for l in ls)]
print(f"  exactly once: {len(logged) - missing}/{len(logged)} logged calls arrived; call logs per call wrong for {len(wrong)} calls"
      f"{' e.g. ' + str(wrong[:5]) if wrong else ''}; {len(bare)} call logs without a recording; {len(logs) - sum(len(v) for v in per_key.values())} without a marker")
sys.exit(0 if not wrong and not missing else 1)
PY

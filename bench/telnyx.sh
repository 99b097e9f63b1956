#!/usr/bin/env bash
# The Telnyx goal G1 (issue 16), measured with the real binaries: a `callrec sandbox` process is a
# Telnyx that calls back (RATE calls/s for DURATION s, calls of 60-180 s, each announced by signed
# call.initiated / answered / hangup / recording.saved webhooks whose links expire after 10 min),
# `callrec worker --listen` receives them, downloads each recording, transcodes it and attaches it
# to a call log in the same sandbox's Pipedrive (limiter off: a burst of 100,000).
#   latency = audio_at - recording_sent_at of each call (GET /_sandbox/telnyx/calls: the first
#             delivery of its recording.saved, and the upload of the audio to the call log matched
#             to it; both in ms); goal p50 <= 1 s, p99 <= 3 s;
#   backlog = callrec_queue_depth from the worker's /metrics (the --listen port) every 5 s; goal:
#             no growth (its slope over the stream's last 4 minutes, jobs per minute);
#   exactly once: every call has exactly one call log (matched by its numbers, unique per call),
#             with audio; no call log without audio.
# --faults passes webhook faults to the sandbox (e.g. telnyx_duplicate=0.1,telnyx_reorder=1,telnyx_seed=7).
# Smoke test: bench/telnyx.sh --rate 1 --duration 20 --call-seconds 5-15
# Usage: bench/telnyx.sh [--rate N] [--duration S] [--call-seconds A-B] [--format wav|mp3] [--faults SPEC] [--drain S]
#                        [--no-build] [--callrec PATH] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release/callrec
rate=10
duration=300
call_seconds=60-180
format=""
faults=""
drain=300
build=1
keep=0
while (($#)); do
  case "$1" in
    --rate) rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --call-seconds) call_seconds=$2; shift ;;
    --format) format=$2; shift ;;
    --faults) faults=$2; shift ;;
    --drain) drain=$2; shift ;;
    --no-build) build=0 ;;
    --callrec) bin=$2; build=0; shift ;;
    --keep) keep=1 ;;
    *) sed -n '2,19p' "$0" >&2; exit 2 ;;
  esac
  shift
done
((build)) && swift build -c release --product callrec >&2
[[ -x $bin ]] || { echo "telnyx.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-telnyx-bench.XXXXXX)
sandbox="" worker=""
cleanup() {
  for p in $worker $sandbox; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
unset CALLREC_DATABASE VOIPNOW_ACCESS_TOKEN VOIPNOW_API_URL TELNYX_PUBLIC_KEY
export PIPEDRIVE_API_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export TELNYX_API_KEY="KEYBENCH$(od -An -N16 -tx8 /dev/urandom | tr -d ' ' | tr a-f A-F)_bench"
export PIPEDRIVE_DAILY_TOKENS=100000000 PIPEDRIVE_BURST=100000

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port) wport=$(free_port)
base="http://127.0.0.1:$port" hook="http://127.0.0.1:$wport/webhooks/telnyx"
export PIPEDRIVE_API_URL="$base/v1" TELNYX_API_URL="$base/v2"
sandbox_flags=(sandbox --port "$port" --burst 100000 --daily-tokens 100000000 --state "$work/sandbox")
[[ -n $faults ]] && sandbox_flags+=(--faults "$faults")
wait_sandbox() { for _ in $(seq 100); do curl -fs "$base/_sandbox/state" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# The sandbox's key pair is made at its first start (kept in its state directory): start it once
# to learn the public key, start the worker with it, then start the sandbox again calling back.
"$bin" "${sandbox_flags[@]}" >"$work/sandbox-0.log" 2>&1 &
sandbox=$!
wait_sandbox || { echo "telnyx.sh: the sandbox did not start:" >&2; cat "$work/sandbox-0.log" >&2; exit 1; }
TELNYX_PUBLIC_KEY=$(curl -fs "$base/_sandbox/telnyx/public-key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')
export TELNYX_PUBLIC_KEY
kill "$sandbox"; wait "$sandbox" 2>/dev/null || true; sandbox=""

"$bin" worker --listen "127.0.0.1:$wport" --state "$work/state" --log-level notice >"$work/worker.log" 2>&1 &
worker=$!
for _ in $(seq 600); do grep -q 'webhooks served at' "$work/worker.log" 2>/dev/null && break; kill -0 "$worker" 2>/dev/null || break; sleep 0.1; done
grep -q 'webhooks served at' "$work/worker.log" || { echo "telnyx.sh: the worker does not serve webhooks:" >&2; tail -20 "$work/worker.log" >&2; exit 1; }

calls_flags=(--telnyx-webhook "$hook" --telnyx-calls "$rate" --telnyx-call-seconds "$call_seconds" --telnyx-duration "$duration")
[[ -n $format ]] && calls_flags+=(--telnyx-format "$format")
echo "telnyx.sh: $rate calls/s for $duration s, calls of $call_seconds s${faults:+, faults $faults}; work in $work" >&2
"$bin" "${sandbox_flags[@]}" "${calls_flags[@]}" >"$work/sandbox.log" 2>&1 &
sandbox=$!
wait_sandbox || { echo "telnyx.sh: the sandbox did not start:" >&2; cat "$work/sandbox.log" >&2; exit 1; }
t0=$(date +%s.%N)

: >"$work/backlog.tsv"
sample() {  # callrec_queue_depth summed over queues, from the worker's /metrics
  local page depth
  page=$(curl -fs --max-time 2 "http://127.0.0.1:$wport/metrics" 2>/dev/null) || return 0
  depth=$(awk '/^callrec_queue_depth/ {s += $NF} END {print s + 0}' <<<"$page")
  printf '%s\t%s\n' "$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")" "$depth" >>"$work/backlog.tsv"
}
calls_json() { curl -fs --max-time 30 "$base/_sandbox/telnyx/calls" -H 'x-sandbox-fault: none'; }
# The stream: calls are placed for DURATION s (their recordings announced at RATE/s).
end=$(($(date +%s) + ${duration%.*}))
while (($(date +%s) < end)); do sample; sleep 5; done
stream_end=$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")
# Drain: until every call's audio arrived (or --drain seconds).
deadline=$(($(date +%s) + drain))
while (($(date +%s) < deadline)); do
  left=$(calls_json | python3 -c "import json,sys; c=json.load(sys.stdin)['calls']; print(sum(1 for x in c if x.get('audio_at') is None) if c else -1)") || left=-1
  ((left == 0)) && break
  sleep 2
  sample
done
calls_json >"$work/calls.json"
curl -fs "$base/_sandbox/state" >"$work/sandbox-state.json"
kill -TERM "$worker" 2>/dev/null || true
wait "$worker" 2>/dev/null || true
worker=""

python3 - "$work" "$stream_end" "$rate" "$duration" <<'PY'
import json, sys
work, stream_end, rate, duration = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = json.load(open(f"{work}/calls.json"))["calls"]
logs = [c for c in json.load(open(f"{work}/sandbox-state.json"))["call_logs"] if not c.get("deleted")]
def pct(xs, p): return sorted(xs)[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
lat = [(c["audio_at"] - c["recording_sent_at"]) / 1000 for c in calls if c.get("audio_at") is not None and c.get("recording_sent_at") is not None]
missing = [c["call_session_id"] for c in calls if c.get("audio_at") is None]
p50, p99 = pct(lat, 50), pct(lat, 99)
met = bool(lat) and not missing and p50 <= 1 and p99 <= 3
print(f"telnyx: {len(calls)} calls at {rate}/s for {duration} s; {len(lat)} with their audio")
print(f"  latency recording.saved -> audio at the sandbox: p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(lat, default=float('nan')):.2f} s"
      f" (goal p50 <= 1, p99 <= 3: {'met' if met else 'MISSED'})")
samples = [tuple(map(float, l.split())) for l in open(f"{work}/backlog.tsv") if l.strip()]
window = [(t, d) for t, d in samples if stream_end - 240 <= t <= stream_end] or samples
if len(window) >= 2:
    n = len(window); mt = sum(t for t, _ in window) / n; md = sum(d for _, d in window) / n
    var = sum((t - mt) ** 2 for t, _ in window)
    slope = sum((t - mt) * (d - md) for t, d in window) / var * 60 if var else 0.0
    print(f"  backlog (callrec_queue_depth, {len(samples)} samples): max {max(d for _, d in samples):.0f}, slope over the stream's last {window[-1][0] - window[0][0]:.0f} s {slope:+.2f} jobs/min")
else:
    print(f"  backlog: {len(samples)} samples (too few for a slope)")
# Exactly once: the call logs of each call, by its numbers (unique per simulated call).
per_call = {c["call_session_id"]: [l for l in logs if l.get("from_phone_number") == c["from"] and l.get("to_phone_number") == c["to"]] for c in calls}
wrong = [(s, len(ls)) for s, ls in per_call.items() if len(ls) != 1]
bare = [l["id"] for l in logs if not l.get("recording")]
matched = sum(len(ls) for ls in per_call.values())
print(f"  exactly once: {len(calls) - len(missing)}/{len(calls)} calls got their audio; call logs per call wrong for {len(wrong)} calls"
      f"{' e.g. ' + str(wrong[:5]) if wrong else ''}; {len(bare)} call logs without audio; {len(logs) - matched} call logs matching no call")
sys.exit(0 if met and not wrong and not bare else 1)
PY

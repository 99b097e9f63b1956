#!/usr/bin/env bash
# The API client's goals (issue 4), against `callrec sandbox` on loopback:
#   1. one large file (1 GiB; --quick: 128 MiB) uploaded through the client (callrec bench-api upload):
#      its peak RSS, and its throughput against `curl -F` of the same file to the same sandbox;
#   2. 1,000 call-log creates (--quick: 100) under the Lite burst limit (20 per 2 s): wall time
#      against the theoretical minimum, and the 429s the sandbox served (goal: none).
# Usage: bench/api.sh [--quick] [--callrec PATH] [--bench PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
bin=.build/release/callrec
bench=""  # callrec-bench (the benchmarks' plumbing): next to callrec unless --bench
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --callrec) bin=$2; shift ;;
    --bench) bench=$2; shift ;;
    *) echo "usage: bench/api.sh [--quick] [--callrec PATH] [--bench PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "api.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
bench=${bench:-$(dirname "$bin")/callrec-bench}
[[ -x $bench ]] || { echo "api.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }
if ((quick)); then size_mib=128; creates=100; else size_mib=1024; creates=1000; fi

work=$(mktemp -d /tmp/callrec-api-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PIPEDRIVE_API_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
export TELNYX_API_KEY="bench-telnyx" VOIPNOW_ACCESS_TOKEN="bench-voipnow"
export PIPEDRIVE_API_URL="http://127.0.0.1:$port/v1" PIPEDRIVE_BURST=20 PIPEDRIVE_DAILY_TOKENS=30000
base="http://127.0.0.1:$port"

"$bin" sandbox --port "$port" --state "$work/state" --burst 20 --daily-tokens 1000000 >"$work/sandbox.log" 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; wait $sandbox 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "$base/_sandbox/state" >/dev/null 2>&1 && break; sleep 0.1; done

create() {
  curl -fsS -X POST "$base/v1/callLogs" -H "x-api-token: $PIPEDRIVE_API_TOKEN" -H 'content-type: application/json' \
    -d '{"outcome":"connected","to_phone_number":"+1555","start_time":"2026-11-20 10:00:00","end_time":"2026-11-20 10:01:00"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])'
}
recording() {  # bytes and sha256 the sandbox stored for a call log
  curl -fsS "$base/_sandbox/state" | python3 -c "
import json,sys
for log in json.load(sys.stdin)['call_logs']:
    if log['id'] == '$1': r = log.get('recording') or {}; print(r.get('bytes'), r.get('sha256'))"
}

# 1. The large upload: a real MP3 head (the sandbox checks its first 16 MiB decode), then zeros.
file="$work/large.mp3"
sox -n -r 8000 -c 1 -C 24 "$file" synth 60 sine 300 vol 0.3 2>/dev/null
truncate -s "${size_mib}M" "$file"
sha=$(sha256sum "$file" | cut -d' ' -f1)
cat "$file" >/dev/null  # page cache, for both contenders alike

id1=$(create)
/usr/bin/time -f "%e %M" -o "$work/client.time" "$bench" bench-api upload "$file" --call-log "$id1" >"$work/client.out"
read -r client_s client_kb <"$work/client.time"
read -r got_bytes got_sha <<<"$(recording "$id1")"

id2=$(create)
# -H 'Expect:': without it curl waits up to 1 s for a "100 Continue" before sending a large body.
curl_s=$( { /usr/bin/time -f "%e" curl -fsS -o /dev/null -H 'Expect:' -H "x-api-token: $PIPEDRIVE_API_TOKEN" \
  -F "file=@$file;type=audio/mpeg;filename=large.mp3" "$base/v1/callLogs/$id2/recordings"; } 2>&1 | tail -1)
read -r curl_bytes curl_sha <<<"$(recording "$id2")"

# 2. Creates under the burst limit (after the window of the requests above has passed: the
#    sandbox counts per token, like Pipedrive, and this run starts with an empty window).
sleep 2.5
limited_before=$(curl -fsS "$base/_sandbox/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["rate_limited"])')
"$bench" bench-api creates --count "$creates" --concurrency 4 >"$work/creates.out"
limited_after=$(curl -fsS "$base/_sandbox/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["rate_limited"])')
creates_s=$(awk '{print $4}' "$work/creates.out")
minimum=$(( creates / 20 * 2 ))  # the issue's definition: N / 20 per 2 s (the strict bound is one window less: the first 20 go at t = 0)

python3 - "$size_mib" "$client_s" "$client_kb" "$curl_s" "$creates" "$creates_s" "$minimum" "$((limited_after - limited_before))" \
  "$sha" "$got_bytes" "$got_sha" "$curl_bytes" "$curl_sha" <<'PY'
import sys
(size, cs, ckb, curls, n, ns, minimum, limited, sha, gb, gs, cb, csha) = sys.argv[1:]
size, cs, ckb, curls, n, ns, minimum, limited = int(size), float(cs), int(ckb), float(curls), int(n), float(ns), int(minimum), int(limited)
mib = size
print(f"# API client benchmark ({'quick' if size < 1024 else 'full'})\n")
print("| measure | callrec client | curl -F | ratio (client ÷ curl throughput) |")
print("|---|---:|---:|---:|")
print(f"| {size} MiB upload, wall s | {cs:.2f} | {curls:.2f} | {curls / cs:.2f} |")
print(f"| throughput MiB/s | {mib / cs:.0f} | {mib / curls:.0f} | |")
print(f"| client peak RSS MiB | {ckb / 1024:.1f} | | |")
print(f"| bytes stored = file, SHA-256 equal | {gb == str(size << 20) and gs == sha} | {cb == str(size << 20) and csha == sha} | |")
print()
strict = max(minimum - 2, 1)
print("| creates | wall s | N/20 × 2 s | over it | strict bound (first 20 at t=0) | over it | 429s served |")
print("|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {n} | {ns:.2f} | {minimum} | {ns / max(minimum, 1) * 100 - 100:+.1f} % | {strict} | {ns / strict * 100 - 100:+.1f} % | {limited} |")
PY

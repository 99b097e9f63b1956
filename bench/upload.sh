#!/usr/bin/env bash
# The pipeline's goals (issue 6), with the release binary against a `callrec sandbox` process:
#   1. end to end over the corpus (no faults, limiter off): `callrec upload` wall time against
#      `callrec transcode` of the same corpus (goal <= 1.15x) and against the shell loop a user would
#      write (per file: curl create + ffmpeg + curl -F upload, xargs -P2; goal: callrec >= 1.4x
#      faster), with callrec's peak RSS (goal <= 64 MiB);
#   2. Pipedrive tokens per single-part recording on the happy path (goal: exactly 20), a re-run
#      (goal: 0 requests), and a soak with every fault class on (goal: <= 10 % above 20).
# Usage: bench/upload.sh [--quick] [--callrec PATH]     (--quick: the 20-call corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
bin=.build/release/callrec
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --callrec) bin=$2; shift ;;
    *) echo "usage: bench/upload.sh [--quick] [--callrec PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "upload.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
if ((quick)); then corpus=bench/corpus/quick; bench/make-corpus.sh "$corpus" --quick >&2; else corpus=bench/corpus/full; bench/make-corpus.sh "$corpus" >&2; fi
jobs=2
work=$(mktemp -d /tmp/callrec-upload-bench.XXXXXX)
# Each sandbox writes its pid beside its state ($(sandbox …) runs in a subshell, so an array
# filled there would stay empty here).
trap 'for f in "$work"/*.pid; do [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null; done; rm -rf "$work"' EXIT
unset CALLREC_DATABASE
export PIPEDRIVE_API_TOKEN="bench$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export PIPEDRIVE_BURST=100000 PIPEDRIVE_DAILY_TOKENS=100000000

sandbox() {  # $1 = state dir, $2 = faults; prints the base URL
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" sandbox --port "$port" --state "$1" --burst 100000 --daily-tokens 100000000 ${2:+--faults "$2"} >"$1.log" 2>&1 &
  echo $! >"$1.pid"
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/_sandbox/state" >/dev/null 2>&1 && break; sleep 0.05; done
  echo "http://127.0.0.1:$port"
}
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(d$2)"; }

files=$(($(wc -l <"$corpus/manifest.tsv") - 1))
audio=$(awk -F'\t' 'NR>1 {s+=$6} END {printf "%.0f", s}' "$corpus/manifest.tsv")
echo "corpus: $corpus, $files recordings, $((audio / 60)) min of audio, --jobs $jobs" >&2

# The corpus is read once first, so the first timed run does not pay for the page cache alone.
find "$corpus" -type f -exec cat {} + >/dev/null

# 1a. callrec transcode (the CPU stage alone)
/usr/bin/time -f "%e %M" -o "$work/t.time" "$bin" transcode "$corpus" --out "$work/t" --jobs $jobs --settle 0 --log-level error >/dev/null || true
read -r t_s t_kb <"$work/t.time"

# 1b. callrec upload against the sandbox, limiter off
base=$(sandbox "$work/sb1")
export PIPEDRIVE_API_URL="$base/v1"
/usr/bin/time -f "%e %M" -o "$work/u.time" "$bin" upload "$corpus" --settle 0 --state "$work/u" --jobs $jobs --json --log-level error >"$work/u.json" || true
read -r u_s u_kb <"$work/u.time"
ok=$(field "$work/u.json" "['summary']['ok']"); failed=$(field "$work/u.json" "['summary']['failed']")
tokens=$(field "$work/u.json" "['summary']['pipedrive_tokens']"); requests=$(field "$work/u.json" "['summary']['api_requests']")
single=$(python3 -c "import json; d=json.load(open('$work/u.json')); print(sum(1 for f in d['files'] if len(f['parts'])==1))")
parts=$(python3 -c "import json; d=json.load(open('$work/u.json')); print(sum(len(f['parts']) for f in d['files']))")
"$bin" upload "$corpus" --settle 0 --state "$work/u" --jobs $jobs --json --log-level error >"$work/u2.json" || true
rerun=$(field "$work/u2.json" "['summary']['api_requests']")

# 1c. the shell loop a user would write: per file, create the call log, ffmpeg to the same
#     settings (mono 8 kHz 24 kbps, 16 kHz 40 kbps, two legs 2x, above 16 kHz down to 16 kHz), curl -F.
cat >"$work/loop.sh" <<'LOOP'
#!/usr/bin/env bash
set -euo pipefail
f=$1 rate=$2 ch=$3 out=$4
r=$rate; ((r > 16000)) && r=16000
k=24; ((r >= 16000)) && k=40; k=$((k * ch))
id=$(curl -fsS -X POST "$PIPEDRIVE_API_URL/callLogs" -H "x-api-token: $PIPEDRIVE_API_TOKEN" -H 'content-type: application/json' \
  -d '{"outcome":"connected","to_phone_number":"+1555","start_time":"2026-11-20 10:00:00","end_time":"2026-11-20 10:01:00"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
mp3="$out/$(basename "$f").mp3"
ffmpeg -v error -y -i "$f" -ar "$r" -ac "$ch" -b:a "${k}k" "$mp3"
curl -fsS -o /dev/null -F "file=@$mp3;type=audio/mpeg" -H "x-api-token: $PIPEDRIVE_API_TOKEN" "$PIPEDRIVE_API_URL/callLogs/$id/recordings"
LOOP
chmod +x "$work/loop.sh"
mkdir -p "$work/loop"
base2=$(sandbox "$work/sb2")
start=$(date +%s.%N)
awk -F'\t' -v c="$corpus" 'NR>1 {print c "/" $1 "\t" $3 "\t" $4}' "$corpus/manifest.tsv" |
  PIPEDRIVE_API_URL="$base2/v1" xargs -P2 -d '\n' -n1 bash -c 'IFS=$'"'"'\t'"'"' read -r f r c <<<"$0"; '"$work"'/loop.sh "$f" "$r" "$c" '"$work"'/loop'
loop_s=$(python3 -c "print($(date +%s.%N)-$start)")

# 2. soak: every fault class on
base3=$(sandbox "$work/sb3" "429=0.01,500=0.01,503=0.01,slow=0.01,cut=0.01,lost=0.01,delay=0.3")
PIPEDRIVE_API_URL="$base3/v1" "$bin" upload "$corpus" --settle 0 --state "$work/s" --jobs $jobs --json --log-level error >"$work/s.json" || true
soak_tokens=$(field "$work/s.json" "['summary']['pipedrive_tokens']"); soak_ok=$(field "$work/s.json" "['summary']['ok']")

python3 - "$t_s" "$u_s" "$loop_s" "$u_kb" "$tokens" "$parts" "$single" "$rerun" "$soak_tokens" "$audio" "$files" "$ok" "$failed" "$soak_ok" "$requests" <<'PY'
import sys
t, u, loop, kb, tokens, parts, single, rerun, soak, audio, files, ok, failed, soak_ok, req = sys.argv[1:]
t, u, loop, kb, tokens, parts, soak, audio = float(t), float(u), float(loop), int(kb), int(tokens), int(parts), int(soak), float(audio)
print()
print(f"### Upload: {files} recordings, {audio/3600:.2f} h of audio ({ok} ok, {failed} failed)")
print()
print("| measure | value | goal |")
print("|---|---|---|")
print(f"| `callrec transcode` wall | {t:.1f} s ({audio/t:.0f}x realtime) | |")
print(f"| `callrec upload` wall (sandbox, limiter off) | {u:.1f} s ({audio/u:.0f}x realtime, {int(files)/u:.1f} files/s) | |")
print(f"| upload / transcode | **{u/t:.2f}x** | <= 1.15x |")
print(f"| shell loop (curl + ffmpeg + curl -F, xargs -P2) | {loop:.1f} s ({audio/loop:.0f}x realtime) | |")
print(f"| callrec speed-up over the shell loop | **{loop/u:.2f}x** | >= 1.4x |")
print(f"| callrec upload peak RSS | **{kb/1024:.1f} MiB** | <= 64 MiB |")
print(f"| Pipedrive tokens per part, happy path | **{tokens/parts:.2f}** ({tokens} for {parts} parts, {req} requests) | 20 |")
print(f"| API requests on a re-run | **{rerun}** | 0 |")
print(f"| tokens per part, soak (1 % of each fault class) | **{soak/parts:.2f}** ({soak_ok} ok) | <= 22 |")
PY

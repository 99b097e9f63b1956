#!/usr/bin/env bash
# The rescan goal G2 (issue 15), measured with the real binary: a FreePBX tree of 100,000 tiny
# recordings over ~1,000 day folders, every one already uploaded in the ledger (`callrec-bench
# seed-source`: recordings keyed by their call, D6, and each file's source_file row with its real
# stamp), then the startup scan of a watching worker that has nothing to do:
#   /usr/bin/time -v callrec worker --watch TREE --source freepbx --until-idle --upload-slots 0 --delete-slots 0
# goal: wall <= 10 s, peak RSS <= 64 MiB, and no recording's bytes read: `callrec-bench watch-opens`
# (inotify IN_OPEN|IN_ACCESS on every folder) must count 0 events on files (listing folders is fine).
# --cold drops the page cache first (root only), so the folders' inodes come from the disk.
# Usage: bench/rescan.sh [--calls N] [--days N] [--cold] [--callrec PATH] [--bench PATH] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."

bin=.build/release/callrec
bench=""  # callrec-bench: next to callrec unless --bench
calls=100000
days=1000
cold=0
keep=0
while (($#)); do
  case "$1" in
    --calls) calls=$2; shift ;;
    --days) days=$2; shift ;;
    --cold) cold=1 ;;
    --callrec) bin=$2; shift ;;
    --bench) bench=$2; shift ;;
    --keep) keep=1 ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "rescan.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
bench=${bench:-$(dirname "$bin")/callrec-bench}
[[ -x $bench ]] || { echo "rescan.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "rescan.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-rescan-bench.XXXXXX)
watcher=""
cleanup() {
  [[ -n $watcher ]] && { kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null || true; }
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
unset CALLREC_DATABASE PIPEDRIVE_API_TOKEN TELNYX_API_KEY VOIPNOW_ACCESS_TOKEN

t0=$(date +%s.%N)
"$bench" seed-source --calls "$calls" --days "$days" --tree "$work/tree" --state "$work/state" --log-level warning
seed_s=$(python3 -c "print(f'{$(date +%s.%N)-$t0:.1f}')")
tree=$(realpath "$work/tree")
if ((cold)); then
  sync
  if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then echo "rescan.sh: --cold needs root (the cache stays warm)" >&2; fi
fi

"$bench" watch-opens "$tree" >"$work/opens.json" 2>"$work/opens.log" &
watcher=$!
for _ in $(seq 600); do grep -q '^watching' "$work/opens.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^watching' "$work/opens.log" || { echo "rescan.sh: watch-opens did not start:" >&2; cat "$work/opens.log" >&2; exit 1; }

set +e
/usr/bin/time -v -o "$work/time.txt" "$bin" worker --watch "$tree" --source freepbx --timezone UTC --region US --until-idle \
  --upload-slots 0 --delete-slots 0 --state "$work/state" --log-level warning >"$work/worker.out" 2>"$work/worker.log"
status=$?
set -e
kill -TERM "$watcher"
wait "$watcher" || true
watcher=""

python3 - "$calls" "$status" "$seed_s" "$work/time.txt" "$work/opens.json" "$work/worker.log" <<'PY'
import json, re, sys
calls, status, seed_s, timef, opensf, logf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
text = open(timef).read()
def field(name):
    m = re.search(rf"{re.escape(name)}: (.+)", text)
    return m.group(1).strip() if m else "?"
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
parts = [float(p) for p in wall.split(":")] if wall != "?" else [float("nan")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_mib = int(field("Maximum resident set size (kbytes)")) / 1024
opens = json.load(open(opensf))
print(f"rescan: {calls} uploaded recordings in {opens['directories']} folders (seeded in {seed_s} s); worker exit {status}")
print(f"  wall {seconds:.2f} s (goal <= 10: {'met' if seconds <= 10 else 'MISSED'}), user {field('User time (seconds)')} s, "
      f"system {field('System time (seconds)')} s")
print(f"  peak RSS {rss_mib:.1f} MiB (goal <= 64: {'met' if rss_mib <= 64 else 'MISSED'})")
print(f"  files opened or read: {opens['file_events']} (goal 0: {'met' if opens['file_events'] == 0 and not opens['overflow'] else 'MISSED'}); "
      f"folder events {opens['directory_events']}{'; inotify queue OVERFLOWED' if opens['overflow'] else ''}")
if opens["files"]: print("  e.g. " + ", ".join(opens["files"][:5]))
if status != 0: print("  worker log: " + open(logf).read()[-2000:])
sys.exit(0 if status == 0 and opens["file_events"] == 0 else 1)
PY

#!/usr/bin/env bash
# The main job on the embedded defaults: install what is missing, build callrec, and transcode
# the sample calls in testdata/calls (validated, resampled where needed, chunked, MP3) into
# .callrec/demo/, then show what came out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product callrec 2>&1 | grep -E "error:|Build" >&2 || true
bin=$(swift build -c release --show-bin-path)/callrec

echo "== callrec transcode testdata/calls --out .callrec/demo" >&2
status=0
"$bin" transcode testdata/calls --out .callrec/demo "$@" || status=$?
echo >&2
echo "== outputs (every part is a standalone MP3 that decodes to exactly its share of the source)" >&2
find .callrec/demo -name '*.mp3' | sort | while read -r f; do
  printf '%8d bytes  %s\n' "$(stat -c %s "$f")" "$f"
done
echo >&2
echo "== one recording in detail: callrec probe" >&2
"$bin" probe testdata/calls/2026-11-21/legs/call-0005-support-legs.wav
exit $status

#!/usr/bin/env bash
# The main job on the embedded defaults: install what is missing, build callrec, and run the whole
# pipeline over the sample calls in testdata/calls — validate, transcode, chunk, create each call
# log and stream its audio — against the API sandbox (started in-process on a free loopback port,
# no account needed) with the ledger and queue in SQLite under .callrec/demo. Then show the call
# logs the sandbox holds and the checksums of the audio that arrived, and run it again: a re-run
# sends nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product callrec 2>&1 | grep -E "error:|Build" >&2 || true
bin=$(swift build -c release --show-bin-path)/callrec

echo "== callrec upload testdata/calls --sandbox --state .callrec/demo" >&2
status=0
"$bin" upload testdata/calls --sandbox --state .callrec/demo "$@" || status=$?
echo >&2
echo "== again: everything is done, so no API request is made" >&2
"$bin" upload testdata/calls --sandbox --state .callrec/demo --log-level warning | tail -1 || true
echo >&2
echo "== callrec status --state .callrec/demo" >&2
"$bin" status --state .callrec/demo
exit $status

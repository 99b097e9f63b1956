#!/usr/bin/env bash
# The main job on the embedded defaults: install what is missing, build callrec, and run the whole
# pipeline over the sample calls in testdata/calls — validate, transcode, chunk, create each call
# log and stream its audio — against the API sandbox (started in-process on a free loopback port,
# no account needed) with the ledger and queue in SQLite under .callrec/demo. The run shows what
# the sandbox holds (a summary, whether the audio arrived as the spool holds it, the newest call
# logs) above its own one-line summary. Then it runs again: a re-run sends nothing, and its
# one-line summary says so (0 API requests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build "${callrec_build[@]}" --product callrec 2>&1 | grep -E "error:|Build" >&2 || true
bin=$(swift build "${callrec_build[@]}" --show-bin-path)/callrec

echo "== callrec upload testdata/calls --sandbox --state .callrec/demo" >&2
status=0
"$bin" upload testdata/calls --sandbox --state .callrec/demo "$@" || status=$?
echo >&2
echo "== again: everything is done, so no API request is made" >&2
# The run's summary is its last line; the sandbox's view above it is the first run's again.
"$bin" upload testdata/calls --sandbox --state .callrec/demo --log-level warning | tail -n 1 || true
echo >&2
echo "== callrec status --state .callrec/demo" >&2
"$bin" status --state .callrec/demo
exit $status

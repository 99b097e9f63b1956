#!/usr/bin/env bash
# The index's token goal (issue 17): an account of 50,000 persons and 20,000 open deals with 5,000
# calls a day costs <= 1 Pipedrive token per call on average over the day, first build included;
# a call's match makes no request; a recording stays <= 21 tokens (create 10 + upload 10 + its
# share of the index). One simulated day per row (`callrec-bench bench-index-day`, release build):
# an in-process sandbox holds a generated account (numbers in every form people type); the day
# runs on a virtual clock minute by minute through the worker's refresh policy (the first build, an
# incremental refresh every 15 min skipping a listing a miss refreshed meanwhile, a persons refresh
# brought forward by a miss at most once a minute and backing off while misses stay unknown, a
# full pass a day); the CRM changes during business hours (persons given new numbers, and callers
# the CRM did not have added to it); the calls are matched through CallLinker against the index
# (SQLite, or PostgreSQL with --postgres URL); tokens are the sandbox's count of Pipedrive's costs.
# Usage: bench/match-day.sh [--no-build] [--postgres URL]
set -euo pipefail
cd "$(dirname "$0")/.."

bench=.build/release/callrec-bench
build=1
postgres=""
while (($#)); do
  case "$1" in
    --no-build) build=0 ;;
    --postgres) postgres=$2; shift ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
  shift
done
if ((build)); then swift build -c release --product callrec-bench >&2; fi
[[ -x $bench ]] || { echo "match-day.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }

echo "### One simulated day of the CRM index (goal: <= 1 token per call, 0 requests on a call's path, <= 21 tokens per recording)"
echo
echo "| store | persons / open deals | calls | CRM changes | full passes | incremental | miss refreshes | requests | tokens | tokens/call | requests on calls | tokens/recording | first build | goal |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
"$bench" bench-index-day
"$bench" bench-index-day --unknown 0.2
"$bench" bench-index-day --unknown 0.05 --changes 2000
if [[ -n $postgres ]]; then "$bench" bench-index-day --database "$postgres"; fi

#!/usr/bin/env bash
# The lookup goal (issue 17): a lookup in the CRM phone index <= 1 ms p99 at 50,000 persons, on
# SQLite and on PostgreSQL, measured with the real store code (`callrec-bench bench-match`, release
# build): the index is filled as a refresh fills it (pages of 500 through applyCRMPage, then the end
# of a full pass of each kind): 50,000 persons with 1-3 numbers each (the persons of every tenth
# organization also share its switchboard number), 10,000 organizations (every fifth with a number),
# 20,000 open deals + 5,000 won or lost, 5,000 leads; then 20,000 lookups (after 1,000 untimed) of
# random numbers, 70 % known and 30 % unknown, one after the other; p50/p99/max per lookup.
# PostgreSQL: CALLREC_BENCH_POSTGRES_URL, else a throwaway cluster (scripts/pg-cluster.sh, fsync on).
# Smoke test: bench/match.sh --persons 2000 --deals 800 --lookups 2000
# Usage: bench/match.sh [--persons N] [--deals N] [--lookups N] [--backends sqlite,postgres] [--no-build] [--bench PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

bench=.build/release/callrec-bench
persons=50000
deals=20000
lookups=20000
backends=sqlite,postgres
build=1
goal_p99_ms=1
while (($#)); do
  case "$1" in
    --persons) persons=$2; shift ;;
    --deals) deals=$2; shift ;;
    --lookups) lookups=$2; shift ;;
    --backends) backends=$2; shift ;;
    --no-build) build=0 ;;
    --bench) bench=$2; build=0; shift ;;
    *) sed -n '2,11p' "$0" >&2; exit 2 ;;
  esac
  shift
done
if ((build)); then swift build -c release --product callrec-bench >&2; fi
[[ -x $bench ]] || { echo "match.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }

work=$(mktemp -d /tmp/callrec-match-bench.XXXXXX)
chmod 755 "$work"  # the throwaway PostgreSQL runs as an unprivileged user
cluster=""
cleanup() {
  [[ -n $cluster ]] && scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
unset CALLREC_DATABASE
organizations=$((persons / 5 > 0 ? persons / 5 : 1))
leads=$((deals / 4))
flags=(bench-match --persons "$persons" --organizations "$organizations" --deals "$deals" --leads "$leads" --lookups "$lookups"
  --json --log-level warning)

# $1 = label, $2.. = store flags; one JSON line into $work/$1.json.
run() {
  local label=$1; shift
  echo "match.sh: $label: filling the index and timing $lookups lookups" >&2
  "$bench" "${flags[@]}" "$@" >"$work/$label.json" 2>"$work/$label.log" || { cat "$work/$label.log" >&2; return 1; }
}

results=()
IFS=, read -ra wanted <<<"$backends"
for backend in "${wanted[@]}"; do
  case "$backend" in
    sqlite) run SQLite --state "$work/state" && results+=(SQLite) ;;
    postgres)
      pg=${CALLREC_BENCH_POSTGRES_URL:-}
      if [[ -z $pg ]] && scripts/pg-cluster.sh available; then
        cluster="$work/pg"
        pg=$(CALLREC_PG_DURABLE=1 scripts/pg-cluster.sh start "$cluster" 2>"$work/pg.log")
      fi
      if [[ -n $pg ]]; then
        run PostgreSQL --database "$pg" && results+=(PostgreSQL)
        [[ -n $cluster ]] && scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1 || true; cluster=""
      else
        echo "match.sh: PostgreSQL is not installed here (scripts/pg-cluster.sh available failed)" >&2
      fi
      ;;
    *) echo "match.sh: unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

echo
echo "### CRM phone index lookup: $persons persons, $deals open deals, $lookups lookups (70 % known numbers; goal p99 <= $goal_p99_ms ms)"
echo
echo "| backend | persons | organizations | deals | leads | numbers | fill s | lookups (found) | p50 ms | p99 ms | max ms | goal |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
status=0
for label in "${results[@]}"; do
  python3 - "$work/$label.json" "$label" "$goal_p99_ms" <<'PY' || status=1
import json, sys
r, label, goal = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3])
ok = r["p99_ms"] <= goal
fill = "–" if r.get("fill_seconds") is None else f"{r['fill_seconds']:.1f}"
print(f"| {label} | {r['persons']} | {r['organizations']} | {r['deals']} | {r['leads']} | {r['numbers']} | {fill} | "
      f"{r['lookups']} ({r['found']}) | {r['p50_ms']:.3f} | **{r['p99_ms']:.3f}** | {r['max_ms']:.3f} | {'PASS' if ok else 'MISS'} |")
sys.exit(0 if ok else 1)
PY
done
((${#results[@]} == ${#wanted[@]})) || status=1
exit $status

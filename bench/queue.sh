#!/usr/bin/env bash
# The queue's goals (issue 5), measured with the real binary:
#   1. no-op jobs, enqueue + claim + complete: SQLite with one worker process, PostgreSQL with two
#      (goals: >= 500 jobs/s and >= 2,000 jobs/s on this 2-core machine);
#   2. how long a job held by a kill -9'ed worker takes to run again (goal with the defaults,
#      lease TTL 60 s + rescuer 15 s: <= 75 s). --quick uses a 3 s lease and a 1 s rescuer.
# PostgreSQL: CALLREC_BENCH_POSTGRES_URL, else a throwaway cluster (scripts/pg-cluster.sh).
# Usage: bench/queue.sh [--quick] [--callrec PATH] [--bench PATH]
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
    *) echo "usage: bench/queue.sh [--quick] [--callrec PATH] [--bench PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "queue.sh: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
bench=${bench:-$(dirname "$bin")/callrec-bench}
[[ -x $bench ]] || { echo "queue.sh: $bench is missing; build it with: swift build -c release --product callrec-bench" >&2; exit 2; }
if ((quick)); then jobs=5000; ttl=3; rescue=1; else jobs=50000; ttl=60; rescue=15; fi

work=$(mktemp -d /tmp/callrec-queue-bench.XXXXXX)
chmod 755 "$work"  # the throwaway PostgreSQL runs as an unprivileged user
cluster=""
cleanup() {
  [[ -n $cluster ]] && scripts/pg-cluster.sh stop "$cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
unset CALLREC_DATABASE
workers_flags=(worker --bench-slots 64 --until-idle --log-level warning)
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/($2):.0f}')"; }
secs() { python3 -c "print(f'{$1:.2f}')"; }

# $1 = label, $2.. = store flags; $workers processes drain the queue.
throughput() {
  local label=$1 workers=$2; shift 2
  local t0 t1 t2 pids=()
  t0=$(now)
  "$bench" bench-enqueue --count "$jobs" --batch 1000 "$@" >/dev/null
  t1=$(now)
  for i in $(seq "$workers"); do "$bench" "${workers_flags[@]}" "$@" 2>"$work/w$i.log" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  t2=$(now)
  local enq drain total
  enq=$(python3 -c "print($t1-$t0)"); drain=$(python3 -c "print($t2-$t1)"); total=$(python3 -c "print($t2-$t0)")
  printf '| %s | %d | %s | %s | %s | **%s** |\n' "$label" "$workers" "$(rate "$jobs" "$enq")" "$(rate "$jobs" "$drain")" "$(secs "$total")" "$(rate "$jobs" "$total")"
}

echo
echo "### Queue: $jobs no-op jobs, enqueue then claim + complete"
echo
echo "| backend | worker processes | enqueue jobs/s | claim+complete jobs/s | total s | enqueue+claim+complete jobs/s |"
echo "|---|---|---|---|---|---|"
throughput "SQLite" 1 --state "$work/sqlite"

pg=${CALLREC_BENCH_POSTGRES_URL:-}
if [[ -z $pg ]] && scripts/pg-cluster.sh available; then
  cluster="$work/pg"
  pg=$(scripts/pg-cluster.sh start "$cluster" 2>"$work/pg.log")
fi
if [[ -n $pg ]]; then
  CALLREC_DATABASE=$pg throughput "PostgreSQL" 2 --state "$work/pgstate"
  CALLREC_DATABASE=$pg throughput "PostgreSQL" 1 --state "$work/pgstate1"
else
  echo "| PostgreSQL | – | not installed here | | | |"
fi

# Rescue: worker A takes the one job (it sleeps 10 minutes) and is killed with SIGKILL; worker B,
# already running, must run it again within lease TTL + rescuer interval.
echo
echo "### Rescue after kill -9 (lease TTL ${ttl} s, rescuer every ${rescue} s)"
echo
# With "other-host", worker A runs in a pid namespace of its own (unshare, as root): B cannot
# see that A's process is gone, exactly as for a worker on another machine, so only the lease
# running out frees the job. On one host B sees the dead pid and frees it at its next rescue.
rescue_run() {
  local label=$1 where=$2; shift 2
  local trace="$work/trace-$label-$where" a b victim killed again wrap=()
  if [[ $where == other-host ]]; then
    if ! unshare --pid --fork true 2>/dev/null; then
      printf '| %s, %s | not measured: unshare --pid needs root | %s s |\n' "$label" "$where" "$((ttl + rescue))"; return
    fi
    wrap=(unshare --pid --fork)
  fi
  "$bench" bench-enqueue --count 1 --sleep-ms 600000 --trace "$trace" "$@" >/dev/null
  "${wrap[@]}" "$bench" worker --bench-slots 1 --lease-ttl "$ttl" --rescue-interval "$rescue" --log-level error "$@" 2>/dev/null & a=$!
  for _ in $(seq 600); do [[ -s $trace ]] && break; sleep 0.05; done
  "$bench" worker --bench-slots 1 --lease-ttl "$ttl" --rescue-interval "$rescue" --log-level error "$@" 2>/dev/null & b=$!
  sleep 0.5
  victim=$a
  if [[ $where == other-host ]]; then victim=$(pgrep -P "$a" | head -1); fi
  kill -9 "$victim"; killed=$(now); { wait "$a"; } 2>/dev/null || true
  for _ in $(seq $(((ttl + rescue) * 40 + 400))); do (($(grep -c '^start' "$trace") >= 2)) && break; sleep 0.05; done
  again=$(awk '/^start/ {n++; if (n==2) printf "%.3f", $5/1e9}' "$trace")
  kill -9 "$b" 2>/dev/null; wait "$b" 2>/dev/null || true
  # The sleeping job would hold the next run's worker: cancel what is left of it.
  ids=$("$bin" queue ls --queue bench --job-state available,running --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; print(" ".join(str(j["id"]) for j in json.load(sys.stdin)))')
  [[ -n $ids ]] && "$bin" queue cancel $ids "$@" >/dev/null 2>&1 || true
  if [[ -n $again ]]; then
    printf '| %s, %s | %s s | %s s |\n' "$label" "$where" "$(python3 -c "print(f'{$again-$killed:.1f}')")" "$((ttl + rescue))"
  else
    printf '| %s, %s | not run again within %s s | %s s |\n' "$label" "$where" "$((ttl + rescue + 10))" "$((ttl + rescue))"
  fi
}
echo "| backend, where the dead worker ran | kill -9 → job runs again | bound (TTL + rescuer) |"
echo "|---|---|---|"
rescue_run sqlite same-host --state "$work/rescue-sqlite"
if [[ -n $pg ]]; then
  CALLREC_DATABASE=$pg rescue_run postgres same-host --state "$work/rescue-pg"
  CALLREC_DATABASE=$pg rescue_run postgres other-host --state "$work/rescue-pg2"
fi

#!/usr/bin/env bash
# The upload pipeline on PostgreSQL with two workers under the faults real deployments meet
# (issue 18), then a check of exactly-once at the sandbox.
#
#   bench/chaos.sh [--minutes M] [--seed N] [--only restart|partition|disk|kill] [--events N]
#                  [--callrec PATH]
#
# - A `callrec sandbox` (with a few API faults of its own: 500, cut, lost, slow), a throwaway
#   PostgreSQL cluster (scripts/pg-cluster.sh), worker a on this host and worker b in a network
#   namespace of its own (veth pair), each with its state (and spool) on a 256 MiB tmpfs.
# - A feeder makes new calls (sox, with sidecars) every 15 s and enqueues them (again later when
#   the database is away).
# - Every 10-30 s (5-15 s with --only; seeded, printed: replay with --seed) one event: a PostgreSQL restart
#   (`pg_ctl stop -m fast` or `-m immediate`, then start), a partition of worker b from the
#   database (blackhole rules, 15-40 s), a full disk under one worker (10-30 s), or a `kill -9`
#   of one worker (started again 2-5 s later). --only keeps one kind; --events N stops after N.
# - At the end every fault is healed, the queue drains, and the ledger is checked against the
#   sandbox: every recording uploaded or failed with a code (none lost), one live call log per
#   part (none doubled), every call log callrec made has its audio, none is a stray.
# Measured per event: a restart's resume (PostgreSQL accepts connections -> the next job
# completes), a partition's takeover (cut -> each job worker b held is claimed by worker a) and
# finish. Prints a summary; exits 1 when anything was lost or doubled.
#
# Needs root (namespaces, tmpfs), iproute2, PostgreSQL's server binaries, sox, python3 and the
# release binary (swift build -c release --product callrec).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=30 seed=$RANDOM$RANDOM only="" events=0 bin=.build/release/callrec
while (($#)); do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --seed) seed=$2; shift ;;
    --only) only=$2; shift ;;
    --events) events=$2; shift ;;
    --callrec) bin=$2; shift ;;
    *) echo "usage: bench/chaos.sh [--minutes M] [--seed N] [--only restart|partition|disk|kill] [--events N] [--callrec PATH]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bin ]] || { echo "chaos: $bin is missing; build it with: swift build -c release --product callrec" >&2; exit 2; }
((EUID == 0)) || { echo "chaos: needs root (network namespaces, tmpfs)" >&2; exit 2; }
for tool in ip sox psql python3 curl; do command -v $tool >/dev/null || { echo "chaos: $tool is missing (scripts/setup.sh --test)" >&2; exit 2; }; done
bin=$(readlink -f "$bin")
RANDOM=$seed
echo "chaos: seed $seed (replay with --seed $seed), ${minutes} min${only:+, only $only}$( ((events > 0)) && echo ", at most $events events")" >&2

work=$(mktemp -d /tmp/callrec-chaos.XXXXXX)
chmod 755 "$work"
n=$((RANDOM % 200 + 20))
ns="crchaos-$n" link="crh-$n" peer="crn-$n"
host_ip="10.231.$n.1" db_ip="10.231.$n.2" b_ip="10.231.$n.3"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [[ -f $work/a.pid ]] && kill -9 "$(cat "$work/a.pid")" 2>/dev/null
  [[ -f $work/b.pid ]] && kill -9 "$(cat "$work/b.pid")" 2>/dev/null
  [[ -f $work/sb.pid ]] && kill "$(cat "$work/sb.pid")" 2>/dev/null
  ip rule del from "$db_ip" to "$b_ip" blackhole 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip link del "$link" 2>/dev/null
  scripts/pg-cluster.sh stop "$work/pg" 2>/dev/null
  umount "$work/a" "$work/b" 2>/dev/null
  [[ -n ${CHAOS_KEEP:-} ]] && { echo "chaos: kept $work" >&2; return; }
  rm -rf "$work"
}
trap cleanup EXIT

# --- the second host, the database, the disks, the sandbox ---
ip netns add "$ns"
ip link add "$link" type veth peer name "$peer"
ip link set "$peer" netns "$ns"
ip addr add "$host_ip/24" dev "$link"
ip addr add "$db_ip/24" dev "$link"
ip link set "$link" up
ip netns exec "$ns" ip addr add "$b_ip/24" dev "$peer"
ip netns exec "$ns" ip link set "$peer" up
ip netns exec "$ns" ip link set lo up
url=$(CALLREC_PG_LISTEN="$db_ip" scripts/pg-cluster.sh start "$work/pg" 2>"$work/pg-start.log")
port=${url##*:}; port=${port%%/*}
url_b="postgres://callrec@$db_ip:$port/callrec_test"
mkdir -p "$work/a" "$work/b" "$work/in"
mount -t tmpfs -o size=256m tmpfs "$work/a"
mount -t tmpfs -o size=256m tmpfs "$work/b"
# The sandbox takes the token it accepts from its environment.
export PIPEDRIVE_API_TOKEN="chaos$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export PIPEDRIVE_BURST=100000 PIPEDRIVE_DAILY_TOKENS=100000000
unset TELNYX_PUBLIC_KEY CALLREC_CONSOLE_PASSWORD CALLREC_DATABASE
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" sandbox --host 0.0.0.0 --port "$sport" --state "$work/sb" --burst 100000 --daily-tokens 100000000 \
  --faults "500=0.01,cut=0.01,lost=0.01,slow=0.3,delay=0.3" >"$work/sandbox.log" 2>&1 &
echo $! >"$work/sb.pid"
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$sport/_sandbox/state" >/dev/null 2>&1 && break; sleep 0.05; done
sql() { psql "$url" -XAtqc "$1" 2>/dev/null; }

# --- the workers (started again after a kill) ---
flags=(worker --concurrency 1 --upload-slots 2 --lease-ttl 10 --rescue-interval 1 --poll-interval 0.5 --log-level notice)
start_worker() {  # a | b
  if [[ $1 == a ]]; then
    CALLREC_DATABASE="$url" PIPEDRIVE_API_URL="http://127.0.0.1:$sport/v1" \
      "$bin" "${flags[@]}" --state "$work/a" >>"$work/a.log" 2>&1 &
  else
    CALLREC_DATABASE="$url_b" PIPEDRIVE_API_URL="http://$host_ip:$sport/v1" \
      ip netns exec "$ns" "$bin" "${flags[@]}" --state "$work/b" >>"$work/b.log" 2>&1 &
  fi
  echo $! >"$work/$1.pid"
}
start_worker a
start_worker b

# --- the feeder: new calls every 15 s, enqueued (again later while the database is away) ---
batch() {  # NAME COUNT: COUNT new calls with sidecars in $work/in/NAME, enqueued
  local name=$1 count=$2 i dir="$work/in/$1"
  mkdir -p "$dir"
  for i in $(seq 1 "$count"); do
    sox -n -r 8000 -e u-law -c 1 "$dir/call-$name-$i.wav" synth $((3 + i % 5)) pinknoise vol 0.3 synth $((3 + i % 5)) sine amod 2 2>/dev/null
    printf '{"call_log": {"outcome": "connected", "to_phone_number": "+1555%07d", "start_time": "2026-12-01 10:%02d:00", "subject": "Chaos call %s-%d"}}' \
      $((RANDOM * 100 + i)) $((i % 60)) "$name" "$i" >"$dir/call-$name-$i.json"
  done
  for _ in $(seq 60); do
    CALLREC_DATABASE="$url" "$bin" enqueue "$dir" --settle 0 --state "$work/feeder" >>"$work/feeder.log" 2>&1 && return 0
    sleep 1
  done
}
feed() {
  local n=0
  while :; do
    n=$((n + 1)); batch "feed-$n" 8
    sleep 15
  done
}
feed & pids+=($!)

# --- the events ---
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }
log_event() { printf '%6.0fs %s\n' "$(python3 -c "print($(now) - $t0)")" "$*" | tee -a "$work/events.log" >&2; }
completed() { sql "SELECT count(*) FROM queue_job WHERE state = 'completed'"; }
b_owner() { sql "SELECT DISTINCT lease_owner FROM queue_job WHERE lease_owner LIKE '%:$(cat "$work/b.pid"):%'" | head -1; }

restart() {
  local mode=$1 before due t_up t_done
  # Work waiting when the server goes: what resumes is measured.
  restarts=$((restarts + 1)); batch "restart-$restarts" 12
  scripts/pg-cluster.sh down "$work/pg" "$mode" 2>/dev/null
  sleep 0.$((RANDOM % 9 + 1))
  scripts/pg-cluster.sh up "$work/pg" 2>/dev/null
  t_up=$(now)
  before=$(completed); due=$(sql "SELECT count(*) FROM queue_job WHERE state IN ('available','running')")
  if [[ ${due:-0} == 0 ]]; then log_event "restart -m $mode: queue idle at start, resume not measured"; return; fi
  while (($(python3 -c "print(int($(now) - $t_up < 120))"))); do
    [[ $(completed) != "$before" ]] && break
    sleep 0.1
  done
  t_done=$(now)
  local resume; resume=$(elapsed "$t_up" "$t_done")
  echo "$resume" >>"$work/resume.txt"
  log_event "restart -m $mode: work resumed ${resume}s after PostgreSQL accepted connections"
}

partition() {
  local hold=$((15 + RANDOM % 26)) owner="" jobs="" t_cut id taken
  # The cut falls while worker b holds jobs (what is measured is their takeover).
  partitions=$((partitions + 1)); batch "partition-$partitions" 12
  for _ in $(seq 200); do
    owner=$(b_owner)
    if [[ -n $owner ]]; then jobs=$(sql "SELECT id FROM queue_job WHERE state = 'running' AND lease_owner = '$owner'" | tr '\n' ' '); fi
    [[ -n ${jobs// /} ]] && break
    sleep 0.1
  done
  ip netns exec "$ns" ip rule add to "$db_ip" blackhole
  ip rule add from "$db_ip" to "$b_ip" blackhole
  t_cut=$(now)
  log_event "partition of worker b for ${hold}s; it held jobs: ${jobs:-none}"
  # The takeover is timed by the database's own clock: the rescue writes its instant into the
  # job's error history (the polling below only notices it, a few tenths of a second later).
  local left=" $jobs " facts expires rescued
  while (($(python3 -c "print(int($(now) - $t_cut < $hold))"))) || [[ -n ${left// /} ]]; do
    for id in $left; do
      facts=$(sql "SELECT (state <> 'running' OR lease_owner IS DISTINCT FROM '$owner')::text || ' ' ||
                     coalesce((SELECT max((e->>'at')::int8) FROM jsonb_array_elements(errors) e
                               WHERE e->>'kind' = 'rescued' AND (e->>'at')::int8 >= ${t_cut%.*}000)::text, '-')
                   FROM queue_job WHERE id = $id")
      [[ ${facts%% *} == true ]] || continue
      rescued=${facts#* }
      if [[ $rescued == - ]]; then
        taken=$(elapsed "$t_cut" "$(now)")
        log_event "  job $id left worker b ${taken}s after the cut without a rescue (it finished before the cut took hold)"
      else
        taken=$(python3 -c "print(f'{$rescued / 1000 - $t_cut:.1f}')")
        echo "$taken" >>"$work/takeover.txt"
        log_event "  job $id taken from worker b ${taken}s after the cut (lease TTL 10 s + rescue interval 1 s)"
      fi
      left=${left// $id / }
    done
    (($(python3 -c "print(int($(now) - $t_cut > 120))"))) && { log_event "  jobs still held 120 s after the cut: $left"; break; }
    sleep 0.2
  done
  ip netns exec "$ns" ip rule del to "$db_ip" blackhole
  ip rule del from "$db_ip" to "$b_ip" blackhole
  log_event "partition healed"
}

fill_disk() {
  local w=$1 hold=$((10 + RANDOM % 21)) free
  free=$(df --output=avail -B1 "$work/$w" | tail -1)
  fallocate -l "$free" "$work/$w/chaos-filler" 2>/dev/null || dd if=/dev/zero of="$work/$w/chaos-filler" bs=1M 2>/dev/null || true
  log_event "disk of worker $w full for ${hold}s"
  sleep "$hold"
  rm -f "$work/$w/chaos-filler"
  log_event "disk of worker $w freed"
}

kill_worker() {
  local w=$1 pause=$((2 + RANDOM % 4))
  kill -9 "$(cat "$work/$w.pid")" 2>/dev/null || true
  log_event "kill -9 worker $w; started again in ${pause}s"
  sleep "$pause"
  start_worker "$w"
}

t0=$(now); end=$(python3 -c "print($t0 + $minutes * 60)")
count=0 restarts=0 partitions=0
kinds=(restart partition disk kill)
while (($(python3 -c "print(int($(now) < $end))"))); do
  ((events > 0 && count >= events)) && break
  # One kind only (a goal's measurement): events come faster.
  if [[ -n $only ]]; then sleep $((5 + RANDOM % 11)); else sleep $((10 + RANDOM % 21)); fi
  kind=${only:-${kinds[RANDOM % 4]}}
  case $kind in
    restart) restart $([[ $((RANDOM % 2)) == 0 ]] && echo fast || echo immediate) ;;
    partition) partition ;;
    disk) fill_disk $([[ $((RANDOM % 2)) == 0 ]] && echo a || echo b) ;;
    kill) kill_worker $([[ $((RANDOM % 2)) == 0 ]] && echo a || echo b) ;;
    *) echo "chaos: unknown event kind $kind" >&2; exit 2 ;;
  esac
  count=$((count + 1))
done

# --- heal, drain, check ---
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true; pids=()
for w in a b; do kill -0 "$(cat "$work/$w.pid")" 2>/dev/null || start_worker "$w"; done
log_event "chaos over after $count events; draining the queue"
for _ in $(seq 1200); do
  left=$(sql "SELECT count(*) FROM queue_job WHERE state IN ('available','running')")
  [[ $left == 0 ]] && break
  sleep 0.5
done
for w in a b; do kill -TERM "$(cat "$work/$w.pid")" 2>/dev/null; done
sleep 2
curl -fs -H 'x-sandbox-fault: none' "http://127.0.0.1:$sport/_sandbox/state" >"$work/sandbox-state.json"
psql "$url" -XAtq -F $'\t' -c "SELECT key, state, coalesce(error_code, ''), path FROM recording" >"$work/recordings.tsv"
psql "$url" -XAtq -F $'\t' -c "SELECT recording_key, idx, coalesce(call_log_id, ''), state FROM part" >"$work/parts.tsv"
psql "$url" -XAtq -F $'\t' -c "SELECT state, count(*) FROM queue_job GROUP BY state" >"$work/jobs.tsv"
python3 - "$work" "$seed" "$count" <<'EOF'
import json, sys, collections, statistics
work, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = json.load(open(f"{work}/sandbox-state.json"))
logs = [l for l in state.get("call_logs", []) if not l.get("deleted")]
marked = collections.defaultdict(list)
for l in logs:
    note = l.get("note") or ""
    if "[callrec:" in note:
        marked[note[note.index("[callrec:") + 1:note.index("]", note.index("[callrec:"))]].append(l)
recs = [line.split("\t") for line in open(f"{work}/recordings.tsv").read().splitlines() if line]
parts = [line.split("\t") for line in open(f"{work}/parts.tsv").read().splitlines() if line]
jobs = dict(line.split("\t") for line in open(f"{work}/jobs.tsv").read().splitlines() if line)
by_state = collections.Counter(r[1] for r in recs)
lost = [r for r in recs if r[1] not in ("uploaded", "failed")]
failed = collections.Counter(r[2] for r in recs if r[1] == "failed")
doubled = {m: len(v) for m, v in marked.items() if len(v) > 1}
owned = {p[2] for p in parts if p[2]}
no_audio = [l["id"] for l in logs if "[callrec:" in (l.get("note") or "") and not l.get("has_recording")]
strays = [l["id"] for l in logs if "[callrec:" in (l.get("note") or "") and l["id"] not in owned]
def stats(name):
    try:
        xs = [float(x) for x in open(f"{work}/{name}").read().split()]
    except FileNotFoundError:
        return "none"
    return f"n={len(xs)} median={statistics.median(xs):.1f}s max={max(xs):.1f}s"
print(f"chaos: seed {seed}, {count} events")
print(f"  recordings: {len(recs)} ({dict(by_state)}); failed by code: {dict(failed)}")
print(f"  jobs: {jobs}")
print(f"  lost (neither uploaded nor failed): {len(lost)}")
print(f"  doubled (markers with more than one live call log): {len(doubled)} {doubled if doubled else ''}")
print(f"  call logs without audio: {len(no_audio)}; strays (no part owns them): {len(strays)}")
print(f"  restart resume: {stats('resume.txt')}; partition takeover: {stats('takeover.txt')}")
bad = len(lost) + len(doubled) + len(no_audio) + len(strays)
print("chaos: PASS" if bad == 0 else "chaos: FAIL")
sys.exit(0 if bad == 0 else 1)
EOF

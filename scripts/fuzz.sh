#!/usr/bin/env bash
# libFuzzer over every parser of untrusted bytes (fuzz/: one harness per parser, built with
# SwiftPM's fuzzer sanitizer, Swift's address sanitizer and coverage instrumentation into its own
# scratch path .build-fuzz, so callrec's .build is never touched).
#
#   scripts/fuzz.sh [--runs N] [--no-build] [--out DIR] [SECONDS] [NAME...]
#
# Runs each harness (all, or the NAMEs: sidecar cdr names container mpeg telnyx multipart) for
# SECONDS (default 60; 0 with --runs: no time limit) on its committed seeds (fuzz/corpus/NAME/)
# plus what earlier runs found (.build-fuzz/corpus/NAME/), one at a time, and prints per harness:
# executions, executions per second, crashes. Exits 1 on any crash, timeout or sanitizer report,
# leaving the input under .build-fuzz/crashes/NAME/ and libFuzzer's output in
# .build-fuzz/logs/NAME.log. A crash replays with: .build-fuzz/release/FuzzNAME FILE
# --out DIR keeps corpus, crashes and logs under DIR instead, and runs copies of the harnesses
# there, so a rebuild meanwhile cannot touch a long run:
#   nice -n 10 scripts/fuzz.sh --runs 10000000 --out .build-fuzz/long 0 cdr
set -euo pipefail
cd "$(dirname "$0")/.."

runs=""
build=1
out=.build-fuzz
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --no-build) build=""; shift ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
all=(sidecar cdr names container mpeg telnyx multipart)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")

# name → executable target (fuzz/Package.swift)
target() {
  case $1 in
    sidecar) echo FuzzSidecar ;; cdr) echo FuzzCDR ;; names) echo FuzzNames ;; container) echo FuzzContainer ;;
    mpeg) echo FuzzMPEG ;; telnyx) echo FuzzTelnyx ;; multipart) echo FuzzMultipart ;;
    *) echo "fuzz.sh: no harness '$1' (known: ${all[*]})" >&2; exit 2 ;;
  esac
}
for name in "${names[@]}"; do target "$name" > /dev/null; done

# Coverage needs -sanitize-coverage as well: SwiftPM's --sanitize=fuzzer alone links libFuzzer
# but leaves the modules uninstrumented (libFuzzer then finds nothing "interesting").
flags=(--package-path fuzz --scratch-path .build-fuzz -c release --sanitize=fuzzer
       -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table)
mkdir -p .build-fuzz/logs
if [[ -n $build ]]; then
  echo "== swift build ${flags[*]}" >&2
  if ! swift build "${flags[@]}" > .build-fuzz/logs/build.log 2>&1; then
    grep -E 'error|warning' .build-fuzz/logs/build.log | head -40 >&2 || tail -40 .build-fuzz/logs/build.log >&2
    echo "== fuzz build FAILED (.build-fuzz/logs/build.log)" >&2
    exit 1
  fi
fi
bin=$(swift build "${flags[@]}" --show-bin-path)
if [[ $out != .build-fuzz ]]; then
  mkdir -p "$out/bin"
  for name in "${names[@]}"; do cp "$bin/$(target "$name")" "$out/bin/"; done
  bin=$out/bin
fi

limits=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
[[ -n $runs ]] && limits+=("-runs=$runs")
[[ $seconds -gt 0 ]] && limits+=("-max_total_time=$seconds")
# Swift's own backtracer would take the crash signal from libFuzzer (and can stall): off.
export SWIFT_BACKTRACE=enable=no
# No allocation stacks and a small quarantine: a quarter more inputs a second. A crash replayed
# with ASAN_OPTIONS=malloc_context_size=30 shows where the memory was allocated and freed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0:quarantine_size_mb=16}

failed=0
printf '%-10s %14s %10s %8s\n' harness executions exec/s crashes
for name in "${names[@]}"; do
  exe="$bin/$(target "$name")"
  work=$out/corpus/$name crashes=$out/crashes/$name log=$out/logs/$name.log
  mkdir -p "$work" "$crashes" "$out/logs"
  dict=()
  [[ -f fuzz/dict/$name.dict ]] && dict=("-dict=fuzz/dict/$name.dict")
  status=0
  "$exe" "${limits[@]}" "${dict[@]}" -artifact_prefix="$crashes/" "$work" "fuzz/corpus/$name" > "$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(grep -cE '^(==[0-9]+==ERROR|SUMMARY: |ALARM: working on the last Unit for|==[0-9]+== ERROR: libFuzzer)' "$log" || true)
  if [[ $status -ne 0 || $found -ne 0 ]]; then
    failed=1
    [[ $found -gt 0 ]] || found=1
  fi
  printf '%-10s %14s %10s %8s\n' "$name" "${executions:-?}" "${rate:-?}" "$found"
  if [[ $status -ne 0 ]]; then
    echo "  $name: exit $status; log $log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|Fatal error|.*Precondition failed|.*Fatal error)' "$log" | head -5 | sed 's/^/  /' >&2 || true
    for input in "$crashes"/*; do [[ -e $input ]] && echo "  replay: ASAN_OPTIONS=malloc_context_size=30 $exe $input" >&2; done
  fi
done
exit $failed

#!/usr/bin/env bash
# The whole test suite: install what is missing (libraries, and ffmpeg/mp3val/sox as independent
# decoders), build, run every test, then the short benchmark comparison (callrec vs the C
# reference loop, lame, ffmpeg and sox) and print its table. Benchmarks measure; they never fail
# the run on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh --test

# Style first (seconds, before minutes of build): swift format lint with .swift-format.
echo "== swift format lint" >&2
if ! scripts/lint.sh; then
  echo "== lint FAILED (the violations above; make format fixes most)" >&2
  exit 1
fi

# ONE build serves the tests and the benchmarks (setup.sh's callrec_build: release, with
# testability for the suites' @testable imports): the benchmarks measure optimised code, the
# tests' audio loops run fast, and no package is compiled twice (a debug build for the tests and
# a release one for the benchmarks cost about a third of the CI time).
build=("${callrec_build[@]}")
echo "== swift build ${build[*]} --build-tests" >&2
swift build "${build[@]}" --build-tests
bin=$(swift build "${build[@]}" --show-bin-path)
# A throwaway PostgreSQL cluster for the database tests (TestPostgres reads the URL), stopped on exit.
if scripts/pg-cluster.sh available; then
  pg_tmp=$(mktemp -d)
  chmod 755 "$pg_tmp" # as root the cluster runs as an unprivileged user, who must reach it
  trap 'scripts/pg-cluster.sh stop "$pg_tmp/pg" || true; rm -rf "$pg_tmp"' EXIT
  CALLREC_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh start "$pg_tmp/pg")
  export CALLREC_TEST_POSTGRES_URL
  echo "== PostgreSQL test cluster: $CALLREC_TEST_POSTGRES_URL" >&2
else
  echo "PostgreSQL not installable here: PostgreSQL tests are skipped" >&2
  pg_missing=1
fi
echo "== swift test" >&2
# The kill -9 chaos test of two PostgreSQL workers, and the database outage tests (restarts, a
# partition), time real processes against each other: they run on their own after the rest, not
# squeezed among hundreds of parallel tests on two cores.
chaos='killNineOneOfTwoWorkersOnPostgres|DatabaseOutageProcessTests'
swift test "${build[@]}" --skip-build --skip "$chaos" 2>&1 | tee .build/test-output.txt | grep -vE '^(◇|↳|\[)' || true
# The summary line is what counts (the pipe above only trims the per-test chatter).
if ! grep -qE '^✔ Test run with [0-9]+ tests.* passed' .build/test-output.txt; then
  echo "== tests FAILED" >&2
  grep -E '✘|↳' .build/test-output.txt | head -80 >&2 || true
  exit 1
fi
echo "== swift test --filter $chaos" >&2
swift test "${build[@]}" --skip-build --filter "$chaos" 2>&1 | tee .build/test-output-chaos.txt | grep -vE '^(◇|\[)' || true
if ! grep -qE '^✔ Test run with [0-9]+ tests?.* passed' .build/test-output-chaos.txt; then
  echo "== chaos test FAILED" >&2
  exit 1
fi

# Under CI the PostgreSQL tests must run: a missing cluster, or a test shown skipped for want of
# PostgreSQL (`.enabled(if: … "PostgreSQL is not available")`), fails the run.
if [[ -n "${CI:-}" ]]; then
  pg_skipped=$(cat .build/test-output.txt .build/test-output-chaos.txt | grep -cE 'skipped: "PostgreSQL is not available' || true)
  if [[ -n "${pg_missing:-}" || "$pg_skipped" != "0" ]]; then
    echo "== FAILED under CI: the PostgreSQL tests did not run (${pg_missing:+no cluster could be started; }$pg_skipped test(s) skipped); scripts/setup.sh --test installs PostgreSQL" >&2
    cat .build/test-output.txt .build/test-output-chaos.txt | grep -E 'skipped: "PostgreSQL is not available' | head -20 >&2 || true
    exit 1
  fi
  # The console's real-browser test, and the partition test (network namespaces need root),
  # must run too.
  if grep -qE 'skipped: "(chromium|needs PostgreSQL, root)' .build/test-output.txt .build/test-output-chaos.txt; then
    echo "== FAILED under CI: a browser or network-namespace test was skipped (scripts/setup.sh --test installs chromium, chromium-driver, selenium and iproute2; namespaces need root)" >&2
    grep -hE 'skipped: "(chromium|needs PostgreSQL, root)' .build/test-output.txt .build/test-output-chaos.txt >&2 || true
    exit 1
  fi
fi

# Fuzzing (issue 18): every parser of untrusted bytes under libFuzzer + AddressSanitizer, 20 s each.
# The fuzz package builds into .build-fuzz (long the first time), never touching .build.
echo "== scripts/fuzz.sh 20" >&2
if ! scripts/fuzz.sh 20; then
  echo "== fuzzing FAILED (inputs under .build-fuzz/crashes/NAME/, logs under .build-fuzz/logs/)" >&2
  exit 1
fi

if [[ "${CALLREC_SKIP_BENCH:-}" != "1" ]]; then
  echo "== benchmark (short): callrec vs C reference, lame, ffmpeg, sox" >&2
  # callrec and callrec-bench (the benchmarks' plumbing) were built above, with the tests.
  bench/compare.sh --quick --callrec "$bin/callrec" || echo "bench: a row failed (see above)" >&2
  echo "== API client (short): streamed upload vs curl -F, creates under the burst limit" >&2
  bench/api.sh --quick --callrec "$bin/callrec" || echo "bench: api.sh failed (see above)" >&2
  echo "== queue (short): no-op jobs on SQLite and PostgreSQL, rescue after kill -9" >&2
  bench/queue.sh --quick --callrec "$bin/callrec" || echo "bench: queue.sh failed (see above)" >&2
  echo "== pipeline (short): upload vs transcode vs the ffmpeg+curl loop, tokens per part" >&2
  bench/upload.sh --quick --callrec "$bin/callrec" || echo "bench: upload.sh failed (see above)" >&2
fi
if [[ "${CALLREC_PACKAGE_BENCHMARK:-}" == "1" ]]; then
  # Off by default: building the bench package costs ~6 minutes of CI (make bench-swift runs it).
  echo "== package-benchmark (bench/): decode, validate, encode, chunk planning" >&2
  swift package --package-path bench --disable-sandbox benchmark --no-progress --format markdown 2>&1 \
    | grep -vE '^\[|Compiling|Building|Fetching|Cloning|Working copy|Computing|Creating' || echo "bench: package-benchmark failed" >&2
fi
grep -E '^✔ Test run with' .build/test-output.txt

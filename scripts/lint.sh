#!/usr/bin/env bash
# Style check with the toolchain's swift-format and the repository's .swift-format: the rules
# only (imports ordered, no `fileprivate` at file scope, no parentheses around conditions, ...).
# The pretty-printer is off (--debug-disable-pretty-print): the code's layout (aligned
# continuation lines, SQL in multi-line strings inside calls) is not what it would print, and
# re-flowing every file is not the point. Exit 1 on a violation, printing each one.
#   scripts/lint.sh          check (CI: scripts/test.sh runs it before the build)
#   scripts/lint.sh --fix    apply the rules' own fixes in place (`make format`)
set -euo pipefail
cd "$(dirname "$0")/.."
paths=()
for p in Sources Tests Package.swift bench/Package.swift bench/Benchmarks bench/Tools fuzz/Package.swift fuzz/Sources; do
  [[ -e $p ]] && paths+=("$p")
done
if [[ "${1:-}" == "--fix" ]]; then
  exec swift format format --in-place --parallel --debug-disable-pretty-print --recursive "${paths[@]}"
fi
swift format lint --strict --parallel --debug-disable-pretty-print --recursive "${paths[@]}"

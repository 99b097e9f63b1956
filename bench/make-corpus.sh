#!/usr/bin/env bash
# Generates the benchmark corpus (reproducible: fixed seed).
#
#   bench/make-corpus.sh DIR [--quick] [--force]
#
# full (default): 200 calls of 30-180 s (~5.8 h) in mixed telephony formats + long/call-2h.wav
#                 (2 h, 8 kHz µ-law): ~7.8 h of audio, ~560 MB on disk.
# --quick:        20 calls of 30-60 s + long/call-20m.wav (20 min): ~0.6 h, ~30 MB. For CI.
#
# The mix (per cycle of 20 calls): 6 WAV µ-law 8k, 3 A-law 8k, 2 PCM16 8k, 2 GSM 6.10 8k,
# 2 PCM16 16k, 2 two-leg stereo PCM16 8k, 1 FLAC 16k, 1 PCM16 44.1k, 1 PCM16 48k (the last two
# are resampled to 16 kHz). Every call has a sidecar JSON. DIR/manifest.tsv lists path, format,
# rate, channels, frames and seconds of every file; the benchmark reads it.
#
# The generator is bench/reference/gen_corpus.c (C over libsndfile, ~1 s for the quick corpus,
# well under a minute for the full one). It is rebuilt into bench/bin/ when its source is newer.
# If DIR already holds a corpus made with the same parameters and generator, nothing is done
# (--force regenerates).
set -euo pipefail

usage() { echo "usage: bench/make-corpus.sh DIR [--quick] [--force]" >&2; exit 2; }

dir="" quick=0 force=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --force) force=1 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $arg" >&2; usage ;;
    *) [[ -z "$dir" ]] || usage; dir="$arg" ;;
  esac
done
[[ -n "$dir" ]] || usage

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gen="$bench/bin/gen_corpus"
src="$bench/reference/gen_corpus.c"

if [[ ! -x "$gen" || "$src" -nt "$gen" ]]; then
  command -v gcc >/dev/null || { echo "make-corpus.sh: gcc is required" >&2; exit 1; }
  mkdir -p "$bench/bin"
  if ! gcc -O2 -Wall -Wextra -o "$gen" "$src" -lsndfile -lm; then
    echo "make-corpus.sh: could not build gen_corpus (is libsndfile1-dev installed?)" >&2
    exit 1
  fi
fi

seed=20261120
if ((quick)); then
  args=(-s "$seed" -n 20 -a 30 -b 60 -l 1200 -L call-20m)
else
  args=(-s "$seed" -n 200 -a 30 -b 180 -l 7200 -L call-2h)
fi
stamp="gen_corpus ${args[*]} $(sha256sum "$src" | cut -c1-16)"

if ((!force)) && [[ -f "$dir/.stamp" && -f "$dir/manifest.tsv" ]] && [[ "$(cat "$dir/.stamp")" == "$stamp" ]]; then
  echo "make-corpus.sh: $dir is up to date ($(awk -F'\t' 'NR>1{s+=$6; n++} END{printf "%d files, %.2f h", n, s/3600}' "$dir/manifest.tsv"))" >&2
  exit 0
fi

# regenerate from scratch; refuse to wipe something that is not a corpus
if [[ -e "$dir" && -n "$(ls -A "$dir" 2>/dev/null)" && ! -f "$dir/manifest.tsv" ]]; then
  echo "make-corpus.sh: $dir exists, is not empty and is not a corpus; refusing to overwrite it" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
"$gen" -o "$dir" "${args[@]}"
printf '%s\n' "$stamp" >"$dir/.stamp"
du -sh "$dir" | awk '{print "make-corpus.sh: " $1 " on disk"}' >&2

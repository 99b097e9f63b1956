#!/usr/bin/env bash
# Runs the same transcoding work through callrec, the C reference loop, the lame CLI, ffmpeg and
# sox, and prints one markdown table (also written to bench/out/results.md).
#
#   bench/compare.sh [--quick] [--jobs N] [--callrec PATH] [--tools LIST] [--no-verify]
#
#   --quick        the CI corpus (20 calls of 30-60 s + a 20-minute call) instead of the full one
#                  (200 calls of 30-180 s + a 2-hour call)
#   --jobs N       the parallel row uses N jobs (default: nproc); every tool also runs with 1 job
#   --callrec PATH the binary (default: .build/release/callrec under the repository root)
#   --tools LIST   comma-separated subset of: callrec,ref,lame,ffmpeg,sox (default: all)
#   --no-verify    skip decoding every output to check its format and length
#
# The work, identical for every tool, is callrec's defaults (DESIGN.md §3, research/audio.md §7.1):
# output rate = input rate up to 16 kHz, otherwise 16 kHz; 1 channel stays mono, 2 channels stay
# two (independent STEREO, not joint, where the tool allows it); CBR at 24 kbps per channel for
# 8 kHz and 40 for 16 kHz; LAME algorithm quality 5; no ID3 tags. See bench/README.md.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

quick=0
jobs="$(nproc)"
callrec=""
tools="callrec,ref,lame,ffmpeg,sox"
verify=1
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --jobs) [[ $# -ge 2 ]] || usage; jobs="$2"; shift ;;
    --jobs=*) jobs="${1#*=}" ;;
    --callrec) [[ $# -ge 2 ]] || usage; callrec="$2"; shift ;;
    --callrec=*) callrec="${1#*=}" ;;
    --tools) [[ $# -ge 2 ]] || usage; tools="$2"; shift ;;
    --tools=*) tools="${1#*=}" ;;
    --no-verify) verify=0 ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --jobs wants a positive integer" >&2; exit 2; }
for t in ${tools//,/ }; do
  case "$t" in callrec|ref|lame|ffmpeg|sox) ;; *) echo "compare.sh: unknown tool: $t" >&2; exit 2 ;; esac
done
want() { [[ ",$tools," == *",$1,"* ]]; }

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
[[ "$repo" != *[[:space:]]* ]] || { echo "compare.sh: the repository path must not contain blanks (xargs)" >&2; exit 1; }
callrec="${callrec:-$repo/.build/release/callrec}"
[[ "$callrec" == /* ]] || callrec="$PWD/$callrec"
mode=$([[ $quick == 1 ]] && echo quick || echo full)
corpus="$bench/corpus/$mode"
out="$bench/out"
work="$out/work-$mode"
TIME=/usr/bin/time

missing=()
for tool in gcc ffmpeg ffprobe lame sox xargs awk nproc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[[ -x "$TIME" ]] || missing+=("/usr/bin/time (package: time)")
if ((${#missing[@]})); then
  echo "compare.sh: missing: ${missing[*]}" >&2
  echo "  Debian: apt-get install gcc libsndfile1-dev libmp3lame-dev libsoxr-dev ffmpeg lame sox libsox-fmt-mp3 time" >&2
  exit 1
fi

log() { printf '%s\n' "$*" >&2; }

# ---- corpus -------------------------------------------------------------------------------------
log "== corpus ($mode)"
"$bench/make-corpus.sh" "$corpus" $([[ $quick == 1 ]] && echo --quick)
manifest="$corpus/manifest.tsv"

# A one-minute call on its own, for the memory table.
onemin="$bench/corpus/one-minute"
if [[ ! -f "$onemin/long/call-1m.wav" || "$bench/reference/gen_corpus.c" -nt "$onemin/long/call-1m.wav" ]]; then
  rm -rf "$onemin"
  "$bench/bin/gen_corpus" -o "$onemin" -s 7 -n 0 -l 60 -L call-1m 2>/dev/null
fi

# ---- the C reference ----------------------------------------------------------------------------
ref="$bench/bin/transcode_ref"
if [[ ! -x "$ref" || "$bench/reference/transcode_ref.c" -nt "$ref" ]]; then
  log "== building $ref"
  mkdir -p "$bench/bin"
  gcc -O2 -Wall -Wextra -o "$ref" "$bench/reference/transcode_ref.c" -lsndfile -lmp3lame -lsoxr -lpthread
fi

have_callrec=0
if want callrec; then
  if [[ -x "$callrec" ]]; then
    have_callrec=1
  else
    log "== callrec row skipped: no binary at $callrec"
    log "   build it first:  (cd $repo && swift build -c release --product callrec)"
  fi
fi

# ---- the work list ------------------------------------------------------------------------------
rm -rf "$work"
mkdir -p "$work"
# One line per input: abs path, stem, in rate, in channels, frames, out rate, out channels, kbps
# (total), expected output frames. The output frame count after resampling is what libsoxr emits
# in total for N input frames: floor(N * out / in + 0.5) (measured, see bench/README.md).
awk -F'\t' -v root="$corpus" 'NR > 1 {
    path = root "/" $1; n = split($1, parts, "/"); stem = parts[n]; sub(/\.[^.]*$/, "", stem)
    rate = $3 + 0; ch = $4 + 0; frames = $5 + 0
    orate = rate <= 16000 ? rate : 16000
    och = ch == 2 ? 2 : 1
    kpc = orate <= 8000 ? 24 : orate <= 12000 ? 32 : orate <= 16000 ? 40 : orate <= 22050 ? 56 : 64
    expect = orate == rate ? frames : int(frames * orate / rate + 0.5)
    printf "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\n", path, stem, rate, ch, frames, orate, och, kpc * och, expect, frames / rate
  }' "$manifest" | sort -t $'\t' -k10,10gr -k2,2 >"$work/jobs.tsv"
# Longest first (the usual batch schedule): otherwise the long call, last in the manifest, would
# start when everything else is done and leave the other workers idle. callrec orders its own work.
nfiles=$(wc -l <"$work/jobs.tsv")
audio_s=$(awk -F'\t' 'NR > 1 { s += $6 } END { printf "%.3f", s }' "$manifest")
# the same stems must not repeat: the per-file tools write flat OUTDIR/<stem>.mp3
dups=$(cut -f2 "$work/jobs.tsv" | sort | uniq -d | head -3)
[[ -z "$dups" ]] || { log "compare.sh: duplicate file names in the corpus: $dups"; exit 1; }
cut -f1 "$work/jobs.tsv" >"$work/files.txt"

# Per-file command lines for xargs -L 1 (no shell in between; the paths contain no blanks).
# lame:   Debian's lame reads its input through libsndfile, so it opens µ-law, A-law, GSM and FLAC
#         directly; no decoder pipe is needed. --resample always names the output rate: LAME would
#         otherwise choose a rate itself (research/audio.md S11); when it equals the input rate LAME
#         does not resample, and for 44.1/48 kHz it uses LAME's own resampler (the lame CLI's way).
#         --noreplaygain: the CLI runs a ReplayGain analysis by default, the library and callrec do not.
#         -m s is plain stereo (not joint). The CLI writes the LAME tag itself.
awk -F'\t' -v dir="@OUT@" '{
    printf "--silent --noreplaygain -q 5 --cbr -b %d -m %s --resample %g %s %s/%s.mp3\n",
      $8, ($7 == 2 ? "s" : "m"), $6 / 1000, $1, dir, $2 }' "$work/jobs.tsv" >"$work/lame.args.in"
# ffmpeg: one process per file, its own decoders, swresample when the rate changes,
#         -compression_level 5 = LAME -q 5, -joint_stereo 0 = STEREO, no ID3v2; the mp3 muxer writes
#         the Xing/LAME header with delay and padding.
awk -F'\t' -v dir="@OUT@" '{
    printf "-nostdin -hide_banner -loglevel error -y -i %s -map 0:a:0 -ar %d -ac %d -c:a libmp3lame -b:a %dk -compression_level 5 -joint_stereo 0 -map_metadata -1 -id3v2_version 0 %s/%s.mp3\n",
      $1, $6, $7, $8, dir, $2 }' "$work/jobs.tsv" >"$work/ffmpeg.args.in"
# sox:    -C <kbps>.5 = CBR at <kbps> with LAME quality 5 (the fraction is the quality); the `rate`
#         effect (sox's own high-quality resampler) only where the rate changes; --comment "" keeps
#         sox from adding an ID3 "Processed by SoX" tag. sox cannot ask LAME for plain STEREO, so
#         LAME's default (joint stereo) is used for the two-leg files, and for CBR sox writes no
#         LAME/Xing tag (decoded length = input + encoder delay + padding).
awk -F'\t' -v dir="@OUT@" '{
    printf "-V1 %s --comment \"\" -C %d.5 -c %d %s/%s.mp3%s\n",
      $1, $8, $7, dir, $2, ($6 != $3 ? " rate " $6 : "") }' "$work/jobs.tsv" >"$work/sox.args.in"

# warm the page cache so the first row is not charged for disk reads
cat "$work/files.txt" | xargs cat >/dev/null

# ---- running --------------------------------------------------------------------------------------
# results: tool jobs rc wall user sys maxrss_kb outputs
results="$work/results.tsv"
: >"$results"

# run_timed NAME JOBS OUTDIR CMD... — time the whole command (all its child processes included:
# GNU time reports wall, user+sys of the process tree, and the largest max RSS of any single process).
run_timed() {
  local name="$1" j="$2" dir="$3"; shift 3
  rm -rf "$dir"
  mkdir -p "$dir"
  local stats="$work/time-$name-$j" rc=0
  log "-- $name, $j job(s)"
  "$TIME" -f '%e %U %S %M' -o "$stats" "$@" >"$work/$name-$j.log" 2>&1 || rc=$?
  local outputs
  outputs=$(find "$dir" -name '*.mp3' -type f | wc -l)
  # GNU time puts "Command exited with non-zero status N" before its line when the command fails
  read -r wall user sys rss < <(tail -n 1 "$stats")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$j" "$rc" "$wall" "$user" "$sys" "$rss" "$outputs" >>"$results"
  log "   wall ${wall}s, cpu $(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')s, peak RSS $((rss / 1024)) MB, exit $rc, $outputs mp3 files"
  if ((rc != 0)); then
    log "   $name exited with $rc; its output is in $work/$name-$j.log:"
    tail -5 "$work/$name-$j.log" | sed 's/^/     /' >&2
  fi
}

run_tool() {
  local name="$1" j="$2" dir="$work/out-$1"
  case "$name" in
    callrec)
      # a fresh working directory each time, so callrec's default state (.callrec/) starts empty
      rm -rf "$work/callrec-cwd"
      mkdir -p "$work/callrec-cwd"
      (cd "$work/callrec-cwd" && run_timed callrec "$j" "$dir" "$callrec" transcode "$corpus" --out "$dir" --jobs "$j" --settle 0) ;;
    ref) run_timed ref "$j" "$dir" "$ref" -j "$j" -o "$dir" - <"$work/files.txt" ;;
    lame | ffmpeg | sox)
      sed "s#@OUT@#$dir#g" "$work/$name.args.in" >"$work/$name.args"
      run_timed "$name" "$j" "$dir" xargs -a "$work/$name.args" -P "$j" -L 1 "$name" ;;
  esac
}

job_counts=(1)
((jobs > 1)) && job_counts+=("$jobs")
order=()
for t in callrec ref lame ffmpeg sox; do
  want "$t" || continue
  [[ "$t" == callrec && $have_callrec == 0 ]] && continue
  order+=("$t")
done
log "== $nfiles files, $(awk -v s="$audio_s" 'BEGIN{printf "%.2f", s/3600}') h of audio; jobs: ${job_counts[*]}; tools: ${order[*]}"
for j in "${job_counts[@]}"; do
  for t in "${order[@]}"; do run_tool "$t" "$j"; done
done

# ---- verification: decode every output of the last run ------------------------------------------
# For each input: all its outputs (<stem>.mp3 or <stem>-partNN.mp3) have the expected rate, channels
# and bit rate, and their decoded frames add up to the expected count exactly (ffmpeg's decoder
# honours the LAME/Xing delay and padding).
verify_tool() {
  local name="$1" dir="$work/out-$1" probes="$work/probe-$1.tsv"
  find "$dir" -name '*.mp3' -type f | sort >"$work/mp3-$1.txt"
  # shellcheck disable=SC2016
  xargs -r -a "$work/mp3-$1.txt" -P "$jobs" -n 1 sh -c '
    f="$1"
    eval "$(ffprobe -v error -select_streams a:0 -show_entries stream=sample_rate,channels,bit_rate -of default=nw=1 "$f")"
    bytes=$(ffmpeg -nostdin -v error -i "$f" -f s16le - | wc -c)
    printf "%s\t%s\t%s\t%s\t%s\n" "$f" "${sample_rate:-0}" "${channels:-0}" "${bit_rate:-0}" "$(( bytes / 2 / ${channels:-1} ))"
  ' _ >"$probes"
  awk -F'\t' -v tool="$name" '
    FNR == NR { stem[$2] = 1; orate[$2] = $6; och[$2] = $7; kbps[$2] = $8; expect[$2] = $9; order[++n] = $2; next }
    {
      k = $1; sub(/^.*\//, "", k); sub(/\.mp3$/, "", k); sub(/-part[0-9]+$/, "", k)
      if (!(k in stem)) { stray++; next }
      got[k] += $5; parts[k]++
      if ($2 != orate[k] || $3 != och[k] || $4 != kbps[k] * 1000) badfmt[k] = $2 "Hz/" $3 "ch/" $4 "bps"
    }
    END {
      fmt_ok = 0; exact = 0; missing = 0; maxdev = 0; worst = ""
      for (i = 1; i <= n; i++) {
        k = order[i]
        if (!(k in parts)) { missing++; continue }
        if (!(k in badfmt)) fmt_ok++
        d = got[k] - expect[k]; if (d == 0) exact++
        if ((d < 0 ? -d : d) > (maxdev < 0 ? -maxdev : maxdev)) { maxdev = d; worst = k }
      }
      printf "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", tool, fmt_ok, exact, missing, stray + 0, maxdev, worst
    }' "$work/jobs.tsv" "$probes"
}

verify_file="$work/verify.tsv"
: >"$verify_file"
if ((verify)); then
  log "== verifying outputs (decoding every MP3 of the $jobs-job run)"
  for t in "${order[@]}"; do verify_tool "$t" >>"$verify_file"; done
fi

# ---- callrec: memory on one long call and on a one-minute call; the long call's parts ---------
mem_file="$work/memory.tsv"
: >"$mem_file"
long_rel=$(awk -F'\t' 'NR > 1 && $1 ~ /^long\// { print $1 }' "$manifest")
long_frames=$(awk -F'\t' 'NR > 1 && $1 ~ /^long\// { print $5 }' "$manifest")
long_rate=$(awk -F'\t' 'NR > 1 && $1 ~ /^long\// { print $3 }' "$manifest")
long_stem=$(basename "${long_rel%.*}")
spot=""
measure_mem() {  # TOOL LABEL DIR_OR_FILE
  local tool="$1" label="$2" input="$3" dir="$work/mem-$1-$2" rc=0
  rm -rf "$dir" "$work/callrec-cwd"
  mkdir -p "$dir" "$work/callrec-cwd"
  if [[ "$tool" == callrec ]]; then
    (cd "$work/callrec-cwd" && "$TIME" -f '%e %M' -o "$work/mem-stats" "$callrec" transcode "$(dirname "$input")" --out "$dir" --jobs 1 --settle 0) \
      >"$work/mem-$tool-$label.log" 2>&1 || rc=$?
  else
    "$TIME" -f '%e %M' -o "$work/mem-stats" "$ref" -j 1 -o "$dir" "$input" >"$work/mem-$tool-$label.log" 2>&1 || rc=$?
  fi
  read -r wall rss < <(tail -n 1 "$work/mem-stats")
  printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$label" "$rss" "$wall" "$rc" >>"$mem_file"
}
if ((have_callrec)) || want ref; then
  log "== peak memory on single calls"
  for t in callrec ref; do
    [[ "$t" == callrec && $have_callrec == 0 ]] && continue
    want "$t" || continue
    measure_mem "$t" long "$corpus/$long_rel"
    measure_mem "$t" 1min "$onemin/long/call-1m.wav"
  done
fi
if ((have_callrec)); then
  # every part of the long call decodes to its exact share: the parts add up to the source's frames
  log "== callrec: the long call's parts"
  sum=0
  spot="| part | decoded frames | seconds | bytes |"$'\n'"|---|---:|---:|---:|"$'\n'
  while IFS= read -r p; do
    n=$(($(ffmpeg -nostdin -v error -i "$p" -f s16le - | wc -c) / 2))
    sum=$((sum + n))
    spot+="| ${p#"$work/mem-callrec-long/"} | $n | $(awk -v n="$n" -v r="$long_rate" 'BEGIN{printf "%.3f", n/r}') | $(stat -c %s "$p") |"$'\n'
  done < <(find "$work/mem-callrec-long" -name "$long_stem.mp3" -o -name "$long_stem-part*.mp3" | sort)
  if ((sum == long_frames)); then verdict="OK: the parts add up to the source's $long_frames frames"
  else verdict="MISMATCH: the parts add up to $sum frames, the source has $long_frames ($((sum - long_frames)))"; fi
  spot+=$'\n'"$verdict"$'\n'
  log "   $verdict"
fi

# ---- the report -------------------------------------------------------------------------------
report="$out/results.md"
mkdir -p "$out"
{
  echo "# callrec transcode benchmark ($mode corpus)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)) ·"\
    "$nfiles files, $(awk -v s="$audio_s" 'BEGIN{printf "%.2f h", s/3600}') of audio ·" \
    "lame $(lame --version | awk 'NR==1{print $4}'), ffmpeg $(ffmpeg -version | awk 'NR==1{print $3}'), sox $(sox --version | awk '{print $NF}')"
  echo
  echo "| tool | jobs | wall s | CPU s | CPU s / audio h | peak RSS MB | × realtime | callrec ÷ tool | C ref ÷ tool | exit | MP3 files |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' -v audio="$audio_s" '
    { name[NR] = $1; j[NR] = $2; rc[NR] = $3; wall[NR] = $4; cpu[NR] = $5 + $6; rss[NR] = $7; outs[NR] = $8
      ok = $3 == 0 && $8 > 0
      if ($1 == "callrec" && ok) crx[$2] = audio / ($4 > 0 ? $4 : 0.01)
      if ($1 == "ref" && ok) rfx[$2] = audio / ($4 > 0 ? $4 : 0.01) }
    END {
      for (i = 1; i <= NR; i++) {
        w = wall[i] > 0 ? wall[i] : 0.01; x = audio / w
        if (rc[i] != 0 || outs[i] == 0) {  # a failed run has no throughput worth comparing
          printf "| %s | %d | %.2f | %.2f | — | %.1f | failed | — | — | %d | %d |\n",
            name[i], j[i], wall[i], cpu[i], rss[i] / 1024, rc[i], outs[i]
          continue
        }
        ratio = (j[i] in crx) ? sprintf("%.2f", crx[j[i]] / x) : "n/a"
        rratio = (j[i] in rfx) ? sprintf("%.2f", rfx[j[i]] / x) : "n/a"
        printf "| %s | %d | %.2f | %.2f | %.2f | %.1f | %.0f | %s | %s | %d | %d |\n",
          name[i], j[i], wall[i], cpu[i], cpu[i] / (audio / 3600), rss[i] / 1024, x, ratio, rratio, rc[i], outs[i]
      }
    }' "$results"
  if ! ((have_callrec)) && want callrec; then
    echo "| callrec | — | skipped: no binary at \`${callrec#"$repo/"}\` (\`swift build -c release --product callrec\`) | | | | | | | | |"
  fi
  echo
  echo "× realtime = seconds of audio per wall second. callrec ÷ tool = callrec's throughput over the tool's at the"
  echo "same job count (above 1: callrec is faster); C ref ÷ tool likewise against the C reference loop, the floor."
  echo "CPU s = user + sys of the whole run, child processes included."
  echo "Peak RSS = the largest single process (for the per-file tools: the largest of the per-file processes)."
  if [[ -s "$verify_file" ]]; then
    echo
    echo "### Output check ($jobs-job run, every MP3 decoded with ffmpeg)"
    echo
    echo "| tool | inputs | format ok | exact length | missing | stray files | largest length error (frames) |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    awk -F'\t' -v n="$nfiles" '{ printf "| %s | %d | %d | %d | %d | %d | %+d%s |\n", $1, n, $2, $3, $4, $5, $6, ($7 != "" ? " (" $7 ")" : "") }' "$verify_file"
    echo
    echo "format ok = every output of the input has the expected sample rate, channels and CBR bit rate."
    echo "exact length = decoded frames (all parts together) equal the input's frames, or floor(frames × 16000 / rate + 0.5)"
    echo "when resampled (what libsoxr emits)."
  fi
  if [[ -s "$mem_file" ]]; then
    echo
    echo "### Peak memory on a single call (1 job)"
    echo
    echo "| tool | input | peak RSS MB | wall s | exit |"
    echo "|---|---|---:|---:|---:|"
    awk -F'\t' -v long="$long_rel" '{ printf "| %s | %s | %.1f | %.2f | %d |\n", $1, ($2 == "long" ? long : "call-1m.wav (60 s µ-law 8 kHz)"), $3 / 1024, $4, $5 }' "$mem_file"
  fi
  if [[ -n "$spot" ]]; then
    echo
    echo "### callrec: parts of $long_rel ($long_frames frames)"
    echo
    printf '%s' "$spot"
  fi
  echo
  echo "Commands (per file for the xargs rows; OUT is the row's output directory):"
  echo
  echo '```'
  ran() { [[ " ${order[*]} " == *" $1 "* ]]; }
  show() { grep -F -- "$2" "$work/$1.args.in" | head -n 1 | sed "s#$corpus/##g; s#@OUT@#OUT#g"; }
  first=$(head -n 1 "$work/files.txt")
  resampled=$(awk -F'\t' '$6 != $3 { print $1; exit }' "$work/jobs.tsv")
  if ran callrec; then echo "callrec transcode CORPUS --out OUT --jobs N"; fi
  if ran ref; then echo "transcode_ref -j N -o OUT - < files.txt"; fi
  for t in lame ffmpeg sox; do
    ran "$t" || continue
    printf 'xargs -P N -L 1 %-6s %s\n' "$t" "$(show "$t" " $first ")"
    if [[ -n "$resampled" && "$resampled" != "$first" ]]; then
      printf 'xargs -P N -L 1 %-6s %s\n' "$t" "$(show "$t" " $resampled ")"
    fi
  done
  echo '```'
} >"$report"

echo
cat "$report"
echo
log "written to ${report#"$repo/"}; logs and outputs in ${work#"$repo/"}/"
# a non-zero exit when any run failed, so CI notices
if awk -F'\t' '$3 != 0 { bad = 1 } END { exit bad ? 0 : 1 }' "$results"; then exit 1; fi

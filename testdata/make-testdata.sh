#!/usr/bin/env bash
# Rebuilds the small phone-call fixtures under testdata/calls/.
#
# Every recording is a short two-party conversation spoken by espeak-ng (two voices taking turns,
# with pauses between turns), made to sound like a phone line with sox (band-limited to the
# telephone band, level-normalised, a faint line-noise floor) and written in one telephony format.
# Each audio file gets a sidecar JSON with the same stem (DESIGN.md §2).
#
# Requirements (Debian): espeak-ng sox libsox-fmt-mp3 lame, and optionally ffmpeg built with libopus
# (for the Ogg Opus fixture; skipped with a message if it is missing). GNU date and awk.
#
# Output is deterministic for a given set of tool versions: espeak-ng is deterministic, every sox
# call runs with -R (fixed seeds, fixed timestamps) and ffmpeg runs with +bitexact.
#
# Usage: testdata/make-testdata.sh            (writes testdata/calls/, replacing what was there)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/calls"

missing=()
for tool in espeak-ng sox soxi lame date awk; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "make-testdata.sh: missing tools: ${missing[*]}" >&2
  echo "  on Debian/Ubuntu: sudo apt-get install espeak-ng sox libsox-fmt-mp3 lame ffmpeg" >&2
  exit 1
fi
sox_help="$(sox -h 2>&1 || true)"
if [[ "$sox_help" != *"AUDIO FILE FORMATS:"*" mp3 "* ]]; then
  echo "make-testdata.sh: this sox cannot handle mp3 (install libsox-fmt-mp3)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

SOX=(sox -R -V1)

# The two speakers. espeak-ng voice + variant, words per minute, pitch (0-99).
VOICE_A=(-v en-us+m3 -s 175 -p 40)   # the agent (caller in most calls)
VOICE_B=(-v en-gb+f3 -s 170 -p 60)   # the customer
VOICE_C=(-v en-us+f2 -s 165 -p 50)   # network announcements / voicemail greetings

# Pauses between turns, cycled (seconds): people don't answer on a metronome.
PAUSES=(0.5 0.8 0.4 1.0 0.6 0.7 1.2 0.5)

# say SPEAKER TEXT OUT.wav  — speech at 22050 Hz mono s16 (espeak-ng's native rate)
say() {
  local who="$1" text="$2" dst="$3" voice
  case "$who" in
    A) voice=("${VOICE_A[@]}") ;;
    B) voice=("${VOICE_B[@]}") ;;
    C) voice=("${VOICE_C[@]}") ;;
    *) echo "unknown speaker $who" >&2; return 1 ;;
  esac
  espeak-ng "${voice[@]}" -w "$dst" "$text"
}

# tone SPEC OUT.wav — network tones at 22050 Hz mono
#   ring: North American ringback (440+480 Hz, 2 s on, 4 s off), one cycle
#   busy: busy signal (480+620 Hz, 0.5 s on, 0.5 s off), one cycle
#   beep: the voicemail beep (1 kHz, 0.4 s)
tone() {
  local kind="$1" dst="$2"
  case "$kind" in
    ring) "${SOX[@]}" -n -r 22050 -c 1 -b 16 "$dst" synth 2 sine 440 sine 480 channels 1 vol 0.35 pad 0 4 ;;
    busy) "${SOX[@]}" -n -r 22050 -c 1 -b 16 "$dst" synth 0.5 sine 480 sine 620 channels 1 vol 0.35 pad 0 0.5 ;;
    beep) "${SOX[@]}" -n -r 22050 -c 1 -b 16 "$dst" synth 0.4 sine 1000 vol 0.3 pad 0.2 0.3 ;;
    *) echo "unknown tone $kind" >&2; return 1 ;;
  esac
}

# conversation OUT.wav LAYOUT TURN...
#   LAYOUT: mono  — both parties on one channel
#           legs  — two channels, speaker A on the left (caller leg), everyone else on the right
#   TURN:   "A:text", "B:text", "C:text" (speech) or "tone:ring|busy|beep"
# Output: 22050 Hz, s16, 1 or 2 channels, raw (no line effects yet).
conversation() {
  local dst="$1" layout="$2"; shift 2
  local i=0 parts=() turn who text seg
  for turn in "$@"; do
    who="${turn%%:*}"; text="${turn#*:}"
    seg="$work/seg-$i.wav"
    if [[ "$who" == tone ]]; then tone "$text" "$seg.raw.wav"; else say "$who" "$text" "$seg.raw.wav"; fi
    local pause="${PAUSES[$((i % ${#PAUSES[@]}))]}"
    if [[ "$layout" == legs ]]; then
      # 'remix 1 0': the talker on the left, digital silence on the right (and the reverse).
      if [[ "$who" == A ]]; then mix=(remix 1 0); else mix=(remix 0 1); fi
      "${SOX[@]}" "$seg.raw.wav" "$seg" "${mix[@]}" pad 0 "$pause"
    else
      "${SOX[@]}" "$seg.raw.wav" "$seg" pad 0 "$pause"
    fi
    parts+=("$seg")
    i=$((i + 1))
  done
  # a little lead-in before the first word and a tail before the hang-up, like a real recording
  "${SOX[@]}" "${parts[@]}" "$dst" pad 0.4 0.6
}

# phone SRC.wav DST.wav RATE [BAND] — the line: band-limit, normalise, resample, add a noise floor.
#   BAND defaults to the narrowband telephone channel 300-3400 Hz (G.711); 16 kHz "HD voice" uses
#   100-7000 Hz. Noise: white noise shaped to the same band at about -62 dBFS RMS.
phone() {
  local src="$1" dst="$2" rate="$3" band="${4:-300-3400}"
  local ch; ch="$(soxi -c "$src")"
  "${SOX[@]}" "$src" "$work/line.wav" sinc "$band" compand 0.01,0.25 -70,-70,-40,-28,0,-6 -4 gain -n -6 rate -v "$rate"
  local dur; dur="$(soxi -D "$work/line.wav")"
  "${SOX[@]}" -n -r "$rate" -c "$ch" -b 16 "$work/noise.wav" synth "$dur" whitenoise vol 0.002 sinc "$band"
  "${SOX[@]}" -m -v 1 "$work/line.wav" -v 1 "$work/noise.wav" -b 16 "$dst"
}

# seconds FILE — duration of a WAV rounded to the nearest whole second (at least 1)
seconds() { soxi -D "$1" | awk '{ s = int($1 + 0.5); if (s < 1) s = 1; print s }'; }

# plus START SECONDS — "YYYY-MM-DD HH:MM:SS" (UTC) + seconds
plus() { date -u -d "@$(( $(date -u -d "$1" +%s) + $2 ))" '+%Y-%m-%d %H:%M:%S'; }

rm -rf "$out"
mkdir -p "$out/2026-11-20" "$out/2026-11-21/legs" "$out/2026-11-22"

# ---------------------------------------------------------------------------------------------
# 1. µ-law 8 kHz mono WAV — a renewal call, full sidecar with end_time, deal and both providers.
conversation "$work/c1.wav" mono \
  "B:Hello, this is Dana speaking." \
  "A:Hi Dana, it's Sam from Northwind, about your renewal next month." \
  "B:Oh right. We wanted to ask about the annual plan." \
  "A:I can send the annual quote today, same discount as last year." \
  "B:That works, thanks."
phone "$work/c1.wav" "$work/c1-line.wav" 8000
f="$out/2026-11-20/call-0001-renewal.wav"
"${SOX[@]}" "$work/c1-line.wav" -e u-law -b 8 -r 8000 -c 1 "$f"
start="2026-11-20 10:00:00"; end="$(plus "$start" "$(seconds "$f")")"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "connected",
    "to_phone_number": "+15551230000",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "Renewal call",
    "note": "<p>Discussed renewal; sending the annual quote.</p>",
    "person_id": 1,
    "org_id": 2,
    "deal_id": 3,
    "lead_id": null,
    "user_id": 7
  },
  "call_log_id": null,
  "telnyx_recording_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
  "voipnow_event": { "user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Nqey1" }
}
EOF

# ---------------------------------------------------------------------------------------------
# 2. A-law 8 kHz mono WAV — a message left with a colleague; no end_time (derived from the audio),
#    linked to a lead (UUID) and no deal; VoipNow reference only.
conversation "$work/c2.wav" mono \
  "B:Accounts desk, Priya speaking." \
  "A:Hi, could I speak to Marco please?" \
  "B:He's out until Thursday. Can I take a message?" \
  "A:Yes please. Sam from Northwind, about the pilot." \
  "B:Got it, I'll pass that on."
phone "$work/c2.wav" "$work/c2-line.wav" 8000
f="$out/2026-11-20/call-0002-message.wav"
"${SOX[@]}" "$work/c2-line.wav" -e a-law -b 8 -r 8000 -c 1 "$f"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "left_message",
    "to_phone_number": "+442071230000",
    "from_phone_number": "+15559870000",
    "start_time": "2026-11-20 14:32:10",
    "subject": "Pilot follow-up",
    "note": "<p>Left a message with Priya for Marco.</p>",
    "person_id": 11,
    "org_id": 12,
    "lead_id": "adf21080-0e10-11eb-879b-05d71fb426ec",
    "user_id": 7
  },
  "call_log_id": null,
  "voipnow_event": { "user_id": "@me", "extension": "0003*210", "event_type": 1, "event_id": "Kq7x2" }
}
EOF

# ---------------------------------------------------------------------------------------------
# 3. GSM 6.10 8 kHz mono WAV — a voicemail: greeting, beep, message. Telnyx reference only.
conversation "$work/c3.wav" mono \
  "tone:ring" \
  "C:Hi, you've reached Alex Chen. I can't take your call right now. Please leave a message after the tone." \
  "tone:beep" \
  "A:Hi Alex, this is Sam from Northwind. I'm calling about the contract we discussed last week. The revised terms are in your inbox. Could you call me back on five five five, nine eight seven, zero zero zero zero? Thanks, bye."
phone "$work/c3.wav" "$work/c3-line.wav" 8000
f="$out/2026-11-20/call-0003-voicemail.wav"
"${SOX[@]}" "$work/c3-line.wav" -e gsm-full-rate -r 8000 -c 1 "$f"
start="2026-11-20 16:05:00"; end="$(plus "$start" "$(seconds "$work/c3-line.wav")")"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "left_voicemail",
    "to_phone_number": "+15553334444",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "Contract terms",
    "note": "<p>Voicemail: revised terms sent by e-mail.</p>",
    "person_id": 21,
    "org_id": null,
    "deal_id": 23,
    "lead_id": null,
    "user_id": 8
  },
  "call_log_id": null,
  "telnyx_recording_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"
}
EOF

# ---------------------------------------------------------------------------------------------
# 4. PCM16 16 kHz mono WAV (wideband "HD voice") — a wrong number, no provider references at all,
#    no end_time.
conversation "$work/c4.wav" mono \
  "B:Good morning, Lakeside Dental." \
  "A:Oh, sorry, I was trying to reach Harbor Logistics." \
  "B:No problem, you have the wrong number."
phone "$work/c4.wav" "$work/c4-line.wav" 16000 100-7000
f="$out/2026-11-21/call-0004-wrong-number.wav"
"${SOX[@]}" "$work/c4-line.wav" -e signed-integer -b 16 -r 16000 -c 1 "$f"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "wrong_number",
    "to_phone_number": "+15557776666",
    "from_phone_number": "+15559870000",
    "start_time": "2026-11-21 09:15:00",
    "subject": "Cold call",
    "user_id": 7
  },
  "call_log_id": null
}
EOF

# ---------------------------------------------------------------------------------------------
# 5. Two-leg stereo PCM16 8 kHz WAV — caller (agent) on the left, callee on the right, each leg
#    silent (only its line noise) while the other talks. Both provider references.
conversation "$work/c5.wav" legs \
  "B:Support, this is Jordan." \
  "A:Hi Jordan, exports keep failing in Northwind sales." \
  "B:I see it. Restarting the job now."
phone "$work/c5.wav" "$work/c5-line.wav" 8000
f="$out/2026-11-21/legs/call-0005-support-legs.wav"
"${SOX[@]}" "$work/c5-line.wav" -e signed-integer -b 16 -r 8000 -c 2 "$f"
start="2026-11-21 11:20:00"; end="$(plus "$start" "$(seconds "$f")")"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "connected",
    "to_phone_number": "+15552220000",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "Export failures",
    "note": "<p>Export job restarted by support.</p>",
    "person_id": 31,
    "org_id": 32,
    "deal_id": 33,
    "lead_id": null,
    "user_id": 9
  },
  "call_log_id": null,
  "telnyx_recording_id": "16fd2706-8baf-433b-82eb-8c7fada847da",
  "voipnow_event": { "user_id": "@me", "extension": "0003*211", "event_type": 0, "event_id": "Zp3m9" }
}
EOF

# ---------------------------------------------------------------------------------------------
# 6. FLAC 16 kHz mono — attached to an existing call log (call_log_id set), lead not deal.
conversation "$work/c6.wav" mono \
  "A:Hi Chris, Sam again. Did the pricing make sense?" \
  "B:Mostly. Could you send me a trial link?" \
  "A:Sure, I'll send it today."
phone "$work/c6.wav" "$work/c6-line.wav" 16000 100-7000
f="$out/2026-11-21/call-0006-trial.flac"
"${SOX[@]}" "$work/c6-line.wav" -b 16 -r 16000 -c 1 -C 8 "$f"
start="2026-11-21 15:45:30"; end="$(plus "$start" "$(seconds "$work/c6-line.wav")")"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "connected",
    "to_phone_number": "+15554441111",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "Trial request",
    "note": "<p>Wants a trial link.</p>",
    "person_id": 41,
    "org_id": 42,
    "deal_id": null,
    "lead_id": "5c0e3f1a-9b8d-4e2f-a6c7-3d4e5f6a7b8c",
    "user_id": 7
  },
  "call_log_id": "CAd92b224eb4a39b5ad8fea92ff0e",
  "telnyx_recording_id": null,
  "voipnow_event": null
}
EOF

# ---------------------------------------------------------------------------------------------
# 7. MP3 44.1 kHz mono (as a softphone would upload it) — no answer: ringback, then the network
#    announcement. Made by sox (line effects, 44.1 kHz WAV) then lame CBR 56 kbps, which writes the
#    LAME/Info tag so decoders know the exact length. --resample 44.1 keeps the rate: without it the
#    lame CLI picks 32 kHz for 56 kbps mono by itself.
conversation "$work/c7.wav" mono \
  "tone:ring" \
  "C:The person you are calling is not available. Please try again later."
phone "$work/c7.wav" "$work/c7-line.wav" 44100
f="$out/2026-11-22/call-0007-no-answer.mp3"
lame --quiet -m m -b 56 -q 5 --resample 44.1 "$work/c7-line.wav" "$f"
start="2026-11-22 08:59:00"; end="$(plus "$start" "$(seconds "$work/c7-line.wav")")"
cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "no_answer",
    "to_phone_number": "+15556660000",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "First contact",
    "person_id": 51,
    "deal_id": 53,
    "user_id": 8
  },
  "call_log_id": null,
  "telnyx_recording_id": "a8098c1a-f86e-11da-bd1a-00112444be1e"
}
EOF

# ---------------------------------------------------------------------------------------------
# 8. Ogg Opus 16 kHz mono (optional: needs ffmpeg with libopus) — busy: a busy signal, then the
#    carrier's announcement.
ffmpeg_encoders="$(ffmpeg -hide_banner -encoders 2>/dev/null || true)"
if [[ "$ffmpeg_encoders" == *libopus* ]]; then
  conversation "$work/c8.wav" mono \
    "tone:busy" "tone:busy" "tone:busy" "tone:busy" \
    "C:All lines are busy. Please hold or call again later."
  phone "$work/c8.wav" "$work/c8-line.wav" 16000 100-7000
  f="$out/2026-11-22/call-0008-busy.opus"
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$work/c8-line.wav" \
    -c:a libopus -b:a 16k -application voip -fflags +bitexact -flags:a +bitexact \
    -map_metadata -1 "$f"
  start="2026-11-22 09:02:00"; end="$(plus "$start" "$(seconds "$work/c8-line.wav")")"
  cat >"${f%.*}.json" <<EOF
{
  "call_log": {
    "outcome": "busy",
    "to_phone_number": "+15556660000",
    "from_phone_number": "+15559870000",
    "start_time": "$start",
    "end_time": "$end",
    "subject": "First contact (retry)",
    "note": "<p>Line busy.</p>",
    "person_id": 51,
    "org_id": null,
    "deal_id": 53,
    "lead_id": null,
    "user_id": 8
  },
  "call_log_id": null,
  "telnyx_recording_id": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
  "voipnow_event": { "user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Bu5y8" }
}
EOF
else
  echo "make-testdata.sh: ffmpeg with libopus not found; skipping the Ogg Opus fixture" >&2
fi

echo "testdata written to $out:"
(cd "$out" && find . -type f | sort | while read -r p; do
  printf '  %-45s %8d bytes\n' "$p" "$(stat -c %s "$p")"
done)
du -sh "$here" | awk '{print "testdata/ total: " $1}'

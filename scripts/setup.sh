#!/usr/bin/env bash
# Installs what callrec needs on Debian (bookworm): the C libraries it links and, with --test,
# the independent decoders and tools the tests and benchmarks use. Idempotent: installs only
# what is missing. Needs root (or sudo) only when something is missing.
set -euo pipefail

build_packages=(libsndfile1-dev libmp3lame-dev libsoxr-dev libphonenumber-dev tzdata pkg-config)
test_packages=(ffmpeg mp3val mpg123 sox libsox-fmt-mp3 espeak-ng lame time gcc make hyperfine curl python3 python3-pip postgresql postgresql-client
  iproute2 chromium chromium-driver)

packages=("${build_packages[@]}")
[[ "${1:-}" == "--test" ]] && packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 2; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The console's browser test drives chromium through Selenium (PyPI).
if [[ "${1:-}" == "--test" ]] && ! python3 -c 'import selenium' 2>/dev/null; then
  echo "setup: installing selenium (pip)" >&2
  python3 -m pip install -q selenium 2>/dev/null || python3 -m pip install -q --break-system-packages selenium
fi

if ! command -v swift >/dev/null; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do [[ -x $d/swift ]] && export PATH="$d:$PATH"; done
fi
command -v swift >/dev/null || { echo "setup: Swift 6.1 or later is required (https://www.swift.org/install/linux/)" >&2; exit 2; }

# The one build configuration of the two commands (demo.sh, test.sh) and of `make bench`: release,
# with testability so that the test suites build on the same compiled dependencies (a second
# configuration would compile every package again).
callrec_build=(-c release -Xswiftc -enable-testing)

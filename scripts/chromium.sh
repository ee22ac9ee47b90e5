#!/usr/bin/env bash
# Installs (once) Debian's Chromium, which the HTML-report test opens headless, and prints
# its path. Does nothing when it is there.
set -euo pipefail
find_chromium() { command -v chromium || command -v chromium-browser || true; }
found="$(find_chromium)"
if [ -z "$found" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the HTML report test needs Chromium (Debian package chromium); install it (as root: apt-get install chromium)" >&2
    exit 1
  fi
  # test files run in parallel: one installs
  exec 9>/tmp/trackshift-chromium.lock
  flock 9
  found="$(find_chromium)"
  if [ -z "$found" ]; then
    echo "installing chromium with apt-get (first time only)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
    found="$(find_chromium)"
  fi
fi
echo "$found"

#!/usr/bin/env bash
# Creates (once) a pinned Python environment (mlflow by default) that the integration
# tests and fixture scripts use, and prints its directory.
# It lives outside the clone, keyed by a hash of the pins, so fresh clones reuse it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# an optional argument names another pin file under python/ (e.g. requirements-mlflow2.txt)
req="$here/python/${1:-requirements.txt}"
key="$( (cat "$req"; python3 --version) | sha256sum | cut -c1-16)"
root="${TRACKSHIFT_CACHE:-$HOME/.cache/trackshift}"
venv="$root/py-$key"
mkdir -p "$root"
# test files run in parallel and may ask for the same environment at once: one builds it
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "creating the pinned Python environment in $venv (first time only)" >&2
  rm -rf "$venv"   # a half-built one from an interrupted install
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
  # "#pip-apart: PKG==V" lines: packages whose metadata asks for a newer Python than these
  # machines have although their code runs here; installed alone, their dependencies above
  apart="$(sed -n 's/^#pip-apart: *//p' "$req")"
  if [ -n "$apart" ]; then
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --ignore-requires-python $apart >&2
  fi
  touch "$venv/.complete"
fi
echo "$venv"

#!/usr/bin/env bash
# Debian packages the test suite and the Linux packaging use (virtual display, tray host,
# packaging linters, NSIS). Installs what is missing when it can (root with apt-get); otherwise
# says what is missing, and the tests that need it are skipped (CI sets
# FLOWORK_REQUIRE_SYSTEM_TESTS=1 so that they fail instead).
# A line of scripts/system-packages.txt may name a command after the package: when that command
# is already on PATH the package is not installed (Node.js from another source ships its own npm,
# and Debian's npm package then conflicts with it: apt-get refuses with "held broken packages").
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dpkg-query >/dev/null; then
    # macOS, Windows, other Linux distributions: the tests that need these skip themselves.
    echo "Not a Debian system: skipping scripts/system-packages.txt (the tests that need them are skipped)" >&2
    exit 0
fi
missing=()
while read -r pkg provides _; do
    [ -n "$pkg" ] || continue
    if [ -n "${provides:-}" ] && command -v "$provides" >/dev/null; then
        continue
    fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < <(grep -v '^\s*#' scripts/system-packages.txt)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "Not installed (tests that need them will be skipped): ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}" >&2
fi

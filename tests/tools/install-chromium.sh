#!/usr/bin/env bash
# Installs Chromium from Debian's packages, for the headless-browser test of `mdspec spec-map --html`
# (tests/test_trace_specmap.py). Quiet and successful when it is already there; does nothing (and says so)
# where it cannot install: not root, or no apt-get.
set -uo pipefail

command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: not installed (needs root and apt-get: apt-get install chromium)" >&2
    exit 1
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || {
    echo "install-chromium: apt-get install chromium failed" >&2
    exit 1
}
command -v chromium >/dev/null 2>&1 || { echo "install-chromium: installed, but no chromium on PATH" >&2; exit 1; }
echo "install-chromium: $(chromium --version 2>/dev/null)"

#!/usr/bin/env bash
# Install the headless browser the MLflow UI check (tests/tuning/test_browser.py) drives.
#
# The test uses Playwright for Python (the `dev` extra) with Debian's Chromium instead of
# `playwright install`, which downloads from a CDN that CI machines may not reach.
# Idempotent: does nothing when a Chromium is already on PATH. Needs root (or sudo) for apt.
# Exits non-zero when it could not install one (the caller decides: .ci/run fails under CI).
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
        echo "browser: $(command -v "$name") already installed"
        exit 0
    fi
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "browser: not root and no sudo; cannot install Chromium" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser: no apt-get on this system; cannot install Chromium" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
echo "browser: installed $(command -v chromium) ($(chromium --version 2>/dev/null || echo '?'))"

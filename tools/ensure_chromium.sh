#!/usr/bin/env bash
# The docs env's browser: Debian's chromium, installed with apt when missing (never a
# browser build downloaded by a tool). Needs root or sudo where it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium

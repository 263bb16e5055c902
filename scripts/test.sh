#!/usr/bin/env bash
# Install into .venv-test (torch from this machine's disk, no download), Debian's Chromium for the browser test,
# and run ruff and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed and this is not root: the browser test will be skipped" >&2
  fi
fi
# The tests cover timm models too, which need torchvision: torch 2.14.1 + torchvision 0.29.1 (on this disk)
# go into their own venv so that the app's lighter .venv (torch 2.13.0) stays as it is.
python3 -m venv .venv-test
.venv-test/bin/python -m pip install -q --upgrade pip
.venv-test/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".[dev,timm]"
.venv-test/bin/ruff check .
.venv-test/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Install into .venv (CPU torch from this machine's disk) and start the app on http://127.0.0.1:7860
# with the offline default (the digits demo); no network needed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" -e .
exec .venv/bin/python app.py "$@"

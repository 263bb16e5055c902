#!/usr/bin/env bash
# Install into .venv (CPU torch from this machine's disk: no multi-GB CUDA download) and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[dev]"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"

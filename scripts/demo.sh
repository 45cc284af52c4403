#!/bin/sh
# Runs the demo against the simulated Telegram; creates .venv on first use.
# Usage: scripts/demo.sh [demo options]    (PYTHON picks the interpreter, default python3)
set -eu
cd "$(dirname -- "$0")/.."

. scripts/venv.sh

exec .venv/bin/python -m forwarder demo "$@"

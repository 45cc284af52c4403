#!/bin/sh
# Runs the demo against the simulated Telegram; creates .venv on first use.
# Usage: scripts/demo.sh [demo options]    (PYTHON picks the interpreter, default python3)
set -eu
cd "$(dirname -- "$0")/.."

stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install, so re-runs are fast.
if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml -newer "$stamp")" ]; then
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
fi

exec .venv/bin/python -m forwarder demo "$@"

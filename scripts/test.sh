#!/bin/sh
# Lint, format check, type check and tests; creates .venv on first use.
# Usage: scripts/test.sh [pytest options]    (PYTHON picks the interpreter, default python3)
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

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

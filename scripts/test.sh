#!/bin/sh
# Lint, format check, type check and tests; creates .venv on first use.
# Usage: scripts/test.sh [pytest options]    (PYTHON picks the interpreter, default python3)
set -eu
cd "$(dirname -- "$0")/.."

. scripts/venv.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

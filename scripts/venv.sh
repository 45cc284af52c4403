# Sourced by demo.sh and test.sh from the repo root: creates .venv on first use and installs
# the project into it, again only when pyproject.toml changed, so re-runs are fast.
stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml -newer "$stamp")" ]; then
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
fi

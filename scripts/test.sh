#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow tests included — what CI runs.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest --runslow "$@"

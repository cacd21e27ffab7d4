#!/usr/bin/env bash
# Set up (idempotent) and run the test suite; arguments go to pytest (e.g. -k broker, -m "not integration").
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/pytest -q "$@"
code=$?
if [ "$code" -eq 5 ]; then
    echo "test.sh: ERROR: pytest collected no tests (exit 5) -- wrong path or -k/-m filter? That is a failure." >&2
    exit 1
fi
exit "$code"

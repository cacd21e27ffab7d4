#!/usr/bin/env bash
# The README's main job: set up (venv, install, Kafka jars), then run the live demo until Ctrl-C.
# Extra arguments go to `borderfuse demo` (see `.venv/bin/borderfuse demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/borderfuse demo "$@"

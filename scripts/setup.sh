#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine of the CI kind: .venv with python3.11 and the
# project (editable, with test extras), java + mvn checks, the prometheus package (promtool for
# the alert-rule tests; no service is started), and the Kafka jars for the test broker.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# --- tools the broker needs (checked first: cheap, and the clearest failure)
command -v java >/dev/null || die "java not found: install a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless)"
command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install -y maven); it fetches the Kafka jars"

# --- Debian packages
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "prometheus is missing and we are not root: apt-get install -y prometheus"
        SUDO="sudo"
    fi
    say "installing the prometheus package (promtool, prometheus) ..."
    $SUDO apt-get update -q
    # RUNLEVEL=1 and policy-rc.d (if present) keep the package's service from being started.
    $SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends prometheus
fi

# --- Chromium and its driver, for the console's browser tests and benchmark (headless; not started here)
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "chromium is missing and we are not root: apt-get install -y chromium chromium-driver"
        SUDO="sudo"
    fi
    say "installing the chromium and chromium-driver packages ..."
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

# --- the console's browser libraries (Leaflet, milsymbol) from npm, pinned by console/web/package-lock.json,
# copied into console/web/vendor (served by the console: no CDN at run time). Redone when the lockfile changes.
command -v npm >/dev/null || die "npm not found: install Node.js and npm (apt-get install -y npm)"
WEB=console/web
WEB_STAMP="$WEB/vendor/.lock-$(sha256sum "$WEB/package-lock.json" | cut -c1-16)"
if [ ! -f "$WEB_STAMP" ]; then
    say "installing the console's web libraries (npm ci) ..."
    (cd "$WEB" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    rm -rf "$WEB/vendor" && mkdir -p "$WEB/vendor/images"
    cp "$WEB/node_modules/leaflet/dist/leaflet.js" "$WEB/node_modules/leaflet/dist/leaflet.css" "$WEB/vendor/"
    cp "$WEB/node_modules/leaflet/dist/images/"*.png "$WEB/vendor/images/"
    cp "$WEB/node_modules/milsymbol/dist/milsymbol.js" "$WEB/vendor/"
    touch "$WEB_STAMP"
fi

# --- virtualenv
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: the project needs Python 3.11"
if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
# Re-install only when pyproject.toml changed since the last successful install.
STAMP=".venv/.borderfuse-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
    say "installing borderfuse (editable, with test extras) into .venv ..."
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    rm -f .venv/.borderfuse-installed-*
    touch "$STAMP"
fi

# --- Kafka jars for the development/test broker (cached per machine; no-op when cached)
.venv/bin/python - <<'PY'
import sys
from borderfuse.devbroker.broker import BrokerError, fetch_kafka
from borderfuse.ingest.settings import load_settings

broker = load_settings().broker
try:
    libs = fetch_kafka(broker.kafka_version, broker.cache_dir)
except BrokerError as exc:
    sys.exit(f"setup: ERROR: {exc}")
print(f"setup: Kafka {broker.kafka_version} jars in {libs}", file=sys.stderr)
PY
.venv/bin/python -c 'import sys; from borderfuse.ingest.plate_key import DEFAULT_KEY_FILE as f, ensure_dev_plate_key as e; e(f) and print(f"setup: made the development plate key {f} (mode 600)", file=sys.stderr)' || { echo "setup: ERROR: no plate key (see the line above)" >&2; exit 1; }  # plates are pseudonymised with it (docs/operations.md)
.venv/bin/borderfuse console users dev >&2 || { echo "setup: ERROR: no console users file (see the line above)" >&2; exit 1; }  # dev logins for the console (README)
# --- the development Kafka principals' passwords (SASL/SCRAM; outside the work tree, mode 600, never committed)
.venv/bin/borderfuse broker credentials >/dev/null || die "no Kafka credentials file (see the line above)"
say "done"

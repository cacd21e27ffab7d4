"""`borderfuse run` refuses bad settings and an unreachable broker with one clear line, exit 2."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from borderfuse.devbroker.processes import free_port

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BORDERFUSE_")}
    return subprocess.run([sys.executable, "-m", "borderfuse.ingest.cli", *args], env={**clean, **(env or {})}, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("toml, needle", [
    ("[kafka]\nbootstrap = 'x'\n", "unknown key(s) bootstrap"),
    ("[service]\ntransaction_interval_ms = 0\n", "transaction_interval_ms must be > 0"),
    ("[service]\nmerge_max_wait_s = 'soon'\n", "service.merge_max_wait_s: expected float"),
    ("[nope]\n", "unknown section [nope]"),
    ("not toml [", "not valid TOML"),
])
def test_bad_config_file_is_one_clear_line(tmp_path, toml, needle):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_missing_config_file(tmp_path):
    result = run_cli("--config", str(tmp_path / "absent.toml"), "run")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_missing_sectors_file_is_named(tmp_path):
    result = run_cli("run", "--no-metrics", env={"BORDERFUSE_ICD__GEO_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert f"sectors file {tmp_path}/sectors.geojson does not exist" in result.stderr


def test_unreachable_broker_is_one_clear_line():
    port = free_port()
    result = run_cli("run", "--no-metrics", env={"BORDERFUSE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
                                                 "BORDERFUSE_SERVICE__STARTUP_TIMEOUT_S": "1"})
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"borderfuse run: cannot reach Kafka at 127.0.0.1:{port}"), result.stderr


def test_help_describes_exactly_once_and_metrics():
    result = run_cli("run", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for needle in ("exactly-once", "one Kafka transaction", "schema id 202", "/metrics", "SIGTERM"):
        assert needle in text


@pytest.mark.parametrize("logger, level, shown", [
    ("kafka.net.selector", logging.WARNING, False),   # event-loop timing: noise for an operator
    ("kafka.net.selector", logging.ERROR, True),
    ("kafka.producer.sender", logging.WARNING, True),
    ("kafka.conn", logging.INFO, False),
])
def test_configure_logging_keeps_kafka_noise_out(logger, level, shown):
    from borderfuse.ingest.commands.run import configure_logging

    saved = {name: logging.getLogger(name).level for name in ("kafka", "kafka.net.selector")}
    try:
        configure_logging()
        assert logging.getLogger(logger).isEnabledFor(level) is shown
    finally:
        for name, value in saved.items():
            logging.getLogger(name).setLevel(value)

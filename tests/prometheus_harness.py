"""A real Prometheus server for tests: scrapes given targets every second, answers PromQL.

    with PrometheusHarness(["127.0.0.1:9108"]) as prom:
        prom.wait_for("up == 1")
        result = prom.query('sum by (topic) (rate(borderfuse_records_consumed_total[10s]))')

Uses the Debian `prometheus` binary (PROMETHEUS_BIN overrides the path). Storage lives in a
temporary directory removed on stop. Errors are `PrometheusHarnessError` with Prometheus's own
log tail attached, so a failed start says why.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterable

import yaml

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"


class PrometheusHarnessError(RuntimeError):
    """Prometheus did not start, did not answer, or rejected a query."""


def prometheus_available() -> bool:
    return Path(PROMETHEUS_BIN).is_file() and os.access(PROMETHEUS_BIN, os.X_OK)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def scrape_config(targets: Iterable[str], job: str = "borderfuse", interval_s: float = 1.0,
                  rule_files: Iterable[str] = ()) -> dict:
    """The generated prometheus.yml as a dict (exposed for tests that want to inspect it)."""
    return {
        "global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s",
                   "scrape_timeout": f"{interval_s:g}s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }


class PrometheusHarness:
    """Start with `start()` (or `with`), stop with `stop()`; `query()` runs an instant query."""

    def __init__(self, targets: Iterable[str], *, job: str = "borderfuse", interval_s: float = 1.0,
                 rule_files: Iterable[str | Path] = (), ready_timeout_s: float = 30.0):
        self.targets = list(targets)
        self.job = job
        self.interval_s = interval_s
        self.rule_files = [str(Path(p).resolve()) for p in rule_files]
        self.ready_timeout_s = ready_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "PrometheusHarness":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if not prometheus_available():
            raise PrometheusHarnessError(f"no prometheus binary at {PROMETHEUS_BIN} (apt-get install prometheus)")
        self._workdir = Path(tempfile.mkdtemp(prefix="borderfuse-prom-"))
        config_path = self._workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(scrape_config(self.targets, self.job, self.interval_s,
                                                            self.rule_files)))
        self.port = free_port()
        log = open(self._workdir / "prometheus.log", "wb")
        try:
            self._proc = subprocess.Popen(
                [PROMETHEUS_BIN, f"--config.file={config_path}", f"--storage.tsdb.path={self._workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise PrometheusHarnessError(f"prometheus exited with {self._proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise PrometheusHarnessError(f"prometheus not ready within {self.ready_timeout_s} s:\n{tail}")

    def log_tail(self, lines: int = 20) -> str:
        if self._workdir is None or not (self._workdir / "prometheus.log").exists():
            return ""
        return "\n".join((self._workdir / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _api(self, path: str, params: dict) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusHarnessError(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusHarnessError(f"{url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusHarnessError(f"{url}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        """Instant query; returns the `result` list (for a vector: [{"metric": {...}, "value": [t, "v"]}])."""
        data = self._api("/api/v1/query", {"query": promql})
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"metric": {}, "value": data["result"]}]

    def targets_health(self) -> list[str]:
        return [t["health"] for t in self._api("/api/v1/targets", {})["activeTargets"]]

    def wait_for(self, promql: str, timeout_s: float = 30.0, poll_s: float = 0.5) -> list[dict]:
        """Poll until `promql` returns a non-empty result; returns it, or raises with the last state."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise PrometheusHarnessError(
                    f"{promql!r} still empty after {timeout_s} s; targets: {self.targets_health()}\n{self.log_tail()}")
            time.sleep(poll_s)


# --- PromQL text helpers (shared by the dashboard and alert-rule tests) -------------------
_PROMQL_NON_METRIC_WORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "Inf", "NaN",
})
_GROUPING_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)\s*(\()?")
# Grafana's template variables, replaced by something PromQL parses.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$__range_s": "3600"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, label names or durations).

    Good enough for the expressions we write; selectors by `{__name__=...}` alone are not seen.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"\{[^}]*\}", " ", text)       # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)      # ranges and subqueries
    text = _GROUPING_CLAUSE.sub(" ", text)       # label lists
    return {m.group(1) for m in _IDENTIFIER.finditer(text)
            if m.group(2) is None and m.group(1) not in _PROMQL_NON_METRIC_WORDS}


def expand_grafana_variables(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    return expr


def promtool_available() -> bool:
    return Path(PROMTOOL_BIN).is_file() and os.access(PROMTOOL_BIN, os.X_OK)


def promtool(*args: str | Path, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run promtool; the caller asserts on returncode and shows stdout/stderr on failure."""
    return subprocess.run([PROMTOOL_BIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)

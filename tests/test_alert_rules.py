"""Prometheus alert rules: promtool accepts them, their unit tests pass, every alert has a firing
and a silent case, and they use only metrics ServiceMetrics defines."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from borderfuse.ingest.metrics import ServiceMetrics

try:
    from prometheus_harness import PROMTOOL_BIN, promql_metric_names, promtool, promtool_available
except ImportError:  # tests/ became a package
    from tests.prometheus_harness import PROMTOOL_BIN, promql_metric_names, promtool, promtool_available

RULES_DIR = Path(__file__).resolve().parent.parent / "dashboards" / "prometheus"
ALERTS_FILE = RULES_DIR / "alerts.yml"
ALERTS_TEST_FILE = RULES_DIR / "alerts_test.yml"
EXPECTED_ALERTS = {
    "BorderfuseServiceDown", "BorderfuseConsumerLagGrowing", "BorderfuseDeadLetterSpike",
    "BorderfuseSideSilent", "BorderfuseSideNeverSeen", "BorderfuseLatencyP99High",
    "BorderfuseBrokerUnreachable", "BorderfuseNoCommit", "BorderfuseRollbacks", "BorderfusePublishErrors",
    "BorderfuseAlarmLatencyHigh",
}
needs_promtool = pytest.mark.skipif(not promtool_available(),
                                    reason=f"promtool not found at {PROMTOOL_BIN} (apt-get install prometheus)")


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_expected_alerts_exist():
    assert {rule["alert"] for rule in alert_rules()} == EXPECTED_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_summary_and_uses_only_service_metrics(rule):
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    unknown = promql_metric_names(rule["expr"]) - ServiceMetrics().metric_names() - {"up"}
    assert not unknown, f"{rule['alert']} uses metrics ServiceMetrics does not define: {sorted(unknown)}"


@pytest.mark.parametrize("alert", sorted(EXPECTED_ALERTS))
def test_unit_tests_cover_the_alert_firing_and_not_firing(alert):
    cases = [case for test in yaml.safe_load(ALERTS_TEST_FILE.read_text())["tests"]
             for case in test.get("alert_rule_test", []) if case["alertname"] == alert]
    assert any(case["exp_alerts"] for case in cases), f"no test where {alert} fires"
    assert any(not case["exp_alerts"] for case in cases), f"no test where {alert} stays silent"


@needs_promtool
def test_promtool_check_rules():
    result = promtool("check", "rules", ALERTS_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alert_rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_test_rules():
    result = promtool("test", "rules", ALERTS_TEST_FILE.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout

"""Grafana dashboards and provisioning: JSON parses, every query uses only metrics ServiceMetrics
defines (and PromQL parses them), every metric is shown somewhere, datasource uids agree."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from borderfuse.ingest.metrics import ServiceMetrics

try:
    from prometheus_harness import expand_grafana_variables, promql_metric_names, promtool, promtool_available
except ImportError:  # tests/ became a package
    from tests.prometheus_harness import expand_grafana_variables, promql_metric_names, promtool, promtool_available

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "dashboards" / "grafana"
DATASOURCES_FILE = ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_FILE = ROOT / "dashboards" / "provisioning" / "dashboards" / "borderfuse.yml"
DASHBOARD_FILES = sorted(DASHBOARD_DIR.glob("*.json"))
# Series Prometheus itself adds to every scrape.
PROMETHEUS_OWN_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def all_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # collapsed rows nest their panels


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) for every PromQL target of every panel."""
    return [(f"panel {p.get('id')} {p.get('title')!r} target {t.get('refId')}", t["expr"])
            for p in all_panels(dashboard.get("panels", [])) for t in p.get("targets", []) if "expr" in t]


def provisioned_uids() -> set[str]:
    return {ds["uid"] for ds in yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]}


def base_metric_names(metrics: ServiceMetrics) -> set[str]:
    """One name per family as a query would use it (counters with _total, histograms' _bucket)."""
    names = set()
    for family in metrics.registry.collect():
        names.add({"counter": f"{family.name}_total", "histogram": f"{family.name}_bucket"}.get(family.type, family.name))
    return names


def test_there_is_the_overview_dashboard():
    assert DASHBOARD_DIR / "borderfuse-overview.json" in DASHBOARD_FILES


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path):
    dashboard = load(path)
    assert dashboard["uid"] and dashboard["title"]
    panels = list(all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    assert all("gridPos" in p for p in panels)
    assert queries(dashboard), f"{path.name}: no queries"


def test_dashboard_uids_are_unique():
    uids = [load(p)["uid"] for p in DASHBOARD_FILES]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_queries_use_only_metrics_the_service_defines(path):
    known = ServiceMetrics().metric_names() | PROMETHEUS_OWN_METRICS
    unknown = {(where, name) for where, expr in queries(load(path)) for name in promql_metric_names(expr)
               if name not in known}
    assert not unknown, f"{path.name} queries metrics ServiceMetrics does not define: {sorted(unknown)}"


def test_every_service_metric_is_on_a_dashboard():
    used = {name for path in DASHBOARD_FILES for _, expr in queries(load(path)) for name in promql_metric_names(expr)}
    missing = base_metric_names(ServiceMetrics()) - used
    assert not missing, f"no panel shows {sorted(missing)}"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_datasource_uids_agree_with_the_provisioning_file(path):
    uids = provisioned_uids()
    dashboard = load(path)
    for panel in all_panels(dashboard["panels"]):
        for holder in [panel, *panel.get("targets", [])]:
            ds = holder.get("datasource")
            if ds is None:
                continue
            assert ds.get("type") == "prometheus" and ds.get("uid") in uids, \
                f"{path.name} panel {panel.get('id')}: datasource {ds} not in provisioned uids {uids}"


def test_provisioning_files_are_well_formed():
    sources = yaml.safe_load(DATASOURCES_FILE.read_text())
    assert sources["apiVersion"] == 1
    assert [ds["type"] for ds in sources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load(PROVIDERS_FILE.read_text())
    assert providers["apiVersion"] == 1
    assert all(p["type"] == "file" and p["options"]["path"].startswith("/") for p in providers["providers"])


@pytest.mark.parametrize("expr, names", [
    ("up", {"up"}),
    ('up{job="borderfuse"} == 0', {"up"}),
    ("sum by (topic) (rate(borderfuse_records_consumed_total[$__rate_interval]))", {"borderfuse_records_consumed_total"}),
    ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))", {"x_bucket"}),
    ("sum(rate(a_total[1m])) by (topic) / ignoring(reason) group_left sum(b)", {"a_total", "b"}),
    ("time() - max by (side) (last_seen{side=~\"DE|PL\"}) > 60", {"last_seen"}),
    ("a offset 5m and bool b or c unless d", {"a", "b", "c", "d"}),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ("vector(1) * 1e9 + Inf", set()),
    ("absent(g:recorded:rate5m)", {"g:recorded:rate5m"}),
])
def test_promql_metric_names(expr, names):
    assert promql_metric_names(expr) == names


@pytest.mark.skipif(not promtool_available(), reason="needs promtool (Debian package prometheus)")
def test_promtool_parses_every_dashboard_query(tmp_path):
    rules = [{"record": f"dashboard:{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}:{i}", "expr": expand_grafana_variables(expr)}
             for path in DASHBOARD_FILES for i, (_, expr) in enumerate(queries(load(path)))]
    rules_file = tmp_path / "dashboard_queries.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard_queries", "rules": rules}]}))
    result = promtool("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout

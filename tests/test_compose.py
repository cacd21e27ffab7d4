"""The compose deployment, checked without a Docker engine: files exist, ports and addresses agree
across compose, borderfuse.toml, prometheus.yml and the Grafana provisioning, the settings load,
and the topic-init command creates the topics the code uses."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from borderfuse.ingest.cli import build_parser
from borderfuse.ingest.settings import load_settings
from borderfuse.ingest.topics import HOTLIST_TOPIC, INPUT_TOPICS, dlq_topic, icd_topics, sector_topics

try:
    from prometheus_harness import promtool, promtool_available
except ImportError:  # tests/ became a package
    from tests.prometheus_harness import promtool, promtool_available

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
TOML_FILE = COMPOSE_DIR / "borderfuse.toml"
PROMETHEUS_FILE = COMPOSE_DIR / "prometheus.yml"
EXPECTED_SERVICES = {"kafka", "topic-init", "borderfuse", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def settings():
    return load_settings(TOML_FILE, environ={})


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def bind_mounts(service: dict) -> list[tuple[Path, PurePosixPath]]:
    """(local path, container path) of every bind mount (named volumes left out)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE_DIR / source).resolve(), PurePosixPath(target)))
    return mounts


def local_path_of(service: dict, container_path: str | Path) -> Path | None:
    """Where a container path comes from on this machine, via the service's bind mounts."""
    path = PurePosixPath(container_path)
    for local, target in bind_mounts(service):
        if path == target or target in path.parents:
            return local / path.relative_to(target)
    return None


def container_ports(service: dict) -> set[int]:
    return {int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'PLAINTEXT://kafka:9092,HOST://localhost:29092' -> {'PLAINTEXT': ('kafka', 9092), ...}"""
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_compose_has_the_services(compose):
    assert set(compose["services"]) == EXPECTED_SERVICES


def test_every_bind_mount_source_exists(compose):
    for name, service in compose["services"].items():
        for local, target in bind_mounts(service):
            assert local.exists(), f"service {name}: mount source {local} (for {target}) does not exist"


@pytest.mark.parametrize("name", ["topic-init", "borderfuse"])
def test_service_image_builds_from_the_repository(compose, name):
    build = compose["services"][name]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == ROOT
    dockerfile = context / build["dockerfile"]
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install \.(\s|$)", text)
    copied = [src for line in re.findall(r"^COPY\s+(.+)$", text, re.M) for src in line.split()[:-1]
              if not src.startswith("--")]
    for src in copied:
        assert (context / src).exists(), f"{dockerfile.name}: COPY source {src} missing"
    package_dirs = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs and package_dirs <= {Path(s).name for s in copied}, "Dockerfile must COPY every folder pip installs"
    assert {"pyproject.toml", "README.md"} <= set(copied)


def test_toml_loads_through_load_settings(settings):
    assert settings.kafka.bootstrap_servers
    assert settings.service.topic_prefix == "", "topics create ignores the prefix, the service would not"


def test_metrics_port_agrees_across_compose_toml_and_prometheus(compose, settings):
    service = compose["services"]["borderfuse"]
    assert settings.metrics.host == "0.0.0.0", "metrics must listen beyond the container's loopback"
    assert settings.metrics.port in container_ports(service)
    scrape = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS_FILE.read_text())["scrape_configs"]}
    targets = [t for sc in scrape["borderfuse"]["static_configs"] for t in sc["targets"]]
    assert targets == [f"borderfuse:{settings.metrics.port}"]


def test_kafka_bootstrap_matches_the_advertised_listener(compose, settings):
    kafka = env(compose["services"]["kafka"])
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    inter_broker = kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert settings.kafka.bootstrap_servers == "{}:{}".format(*advertised[inter_broker])
    assert advertised[inter_broker][0] == "kafka" and bound[inter_broker][1] == advertised[inter_broker][1]
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    # a single broker cannot host three replicas of the transaction log the service writes to
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_image_is_kafka_4_kraft(compose):
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert env(kafka)["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize("name", ["topic-init", "borderfuse"])
def test_config_file_and_icd_dirs_are_mounted_where_the_toml_says(compose, settings, name):
    service = compose["services"][name]
    command = service["command"]
    config = command[command.index("--config") + 1]
    assert local_path_of(service, config) == TOML_FILE
    geo = local_path_of(service, settings.icd.geo_dir)
    schemas = local_path_of(service, settings.icd.schemas_dir)
    assert geo is not None and (geo / "sectors.geojson").is_file() and (geo / "sensors.json").is_file()
    assert schemas is not None and (schemas / "pl" / "registry.json").is_file()


def test_commands_parse_with_the_real_cli(compose):
    parser = build_parser()
    run = parser.parse_args(compose["services"]["borderfuse"]["command"][1:])
    assert run.command == "run"
    init = parser.parse_args(compose["services"]["topic-init"]["command"][1:])
    assert (init.command, init.action) == ("topics", "create")
    assert init.bootstrap is None, "topic-init must use the toml's bootstrap, like the service"


def test_topic_init_creates_every_topic_the_code_uses(compose, settings):
    geo = local_path_of(compose["services"]["topic-init"], settings.icd.geo_dir)
    created = {spec.name for spec in icd_topics(geo)}
    used = {*INPUT_TOPICS, *(dlq_topic(t) for t in INPUT_TOPICS), HOTLIST_TOPIC, *sector_topics(geo).values()}
    assert used <= created
    assert {f"incidents.S{i}" for i in range(1, 5)} <= created


def test_dependencies_start_in_order(compose):
    services = compose["services"]
    assert services["topic-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["borderfuse"]["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["kafka"]


def test_prometheus_mounts_config_and_alert_rules(compose):
    prometheus = compose["services"]["prometheus"]
    config_arg = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert local_path_of(prometheus, config_arg.split("=", 1)[1]) == PROMETHEUS_FILE
    for rule_file in yaml.safe_load(PROMETHEUS_FILE.read_text())["rule_files"]:
        assert local_path_of(prometheus, rule_file) == ROOT / "dashboards" / "prometheus" / "alerts.yml"


def test_grafana_provisioning_matches_the_mounts(compose):
    grafana = compose["services"]["grafana"]
    assert local_path_of(grafana, "/etc/grafana/provisioning") == ROOT / "dashboards" / "provisioning"
    providers = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/borderfuse.yml").read_text())["providers"]
    for provider in providers:
        assert local_path_of(grafana, provider["options"]["path"]) == ROOT / "dashboards" / "grafana"
    home = env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert local_path_of(grafana, home).is_file()
    datasources = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/prometheus.yml").read_text())
    url = datasources["datasources"][0]["url"]
    assert url == f"http://prometheus:{min(container_ports(compose['services']['prometheus']))}"


@pytest.mark.skipif(not promtool_available(), reason="needs promtool (Debian package prometheus)")
def test_promtool_check_config(tmp_path):
    # Point rule_files at the repository copy, as the compose mount does inside the container.
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    config["rule_files"] = [str(ROOT / "dashboards" / "prometheus" / "alerts.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = promtool("check", "config", local)
    assert result.returncode == 0, result.stdout + result.stderr

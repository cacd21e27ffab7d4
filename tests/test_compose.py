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
KAFKA_PROPERTIES = COMPOSE_DIR / "kafka" / "server.properties"
SECRETS_DIR = COMPOSE_DIR / "secrets"   # made by compose/make-secrets.sh, never committed
EXPECTED_SERVICES = {"kafka", "topic-init", "borderfuse", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def settings():
    return load_settings(TOML_FILE, environ={})


@pytest.fixture(scope="module")
def kafka_props() -> dict[str, str]:
    lines = [ln for ln in KAFKA_PROPERTIES.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory) -> Path:
    """What compose/make-secrets.sh makes (run here into a temporary dir: openssl + this venv's borderfuse)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    out = tmp_path_factory.mktemp("secrets")
    result = subprocess.run(["bash", str(COMPOSE_DIR / "make-secrets.sh"), str(out)], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "BORDERFUSE": str(Path(sys.executable).parent / "borderfuse")})
    assert result.returncode == 0, result.stderr
    return out


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


def test_every_bind_mount_source_exists(compose, made_secrets):
    for name, service in compose["services"].items():
        for local, target in bind_mounts(service):
            if SECRETS_DIR in local.parents:  # generated: make-secrets.sh must make it
                local = made_secrets / local.relative_to(SECRETS_DIR)
            assert local.exists(), f"service {name}: mount source {local} (for {target}) does not exist"
        for env_file in service.get("env_file", []):
            assert (made_secrets / (COMPOSE_DIR / env_file).resolve().relative_to(SECRETS_DIR)).is_file()


def test_secrets_are_never_committed_and_private(made_secrets):
    from borderfuse.ingest.kafka_security import dev_principals, load_credentials

    assert "/compose/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    assert sorted(load_credentials(made_secrets / "credentials.toml")) == sorted(dev_principals())
    for name in ("credentials.toml", "kafka.env", "kafka.p12", "ca.key", "admin-client.properties", "plate-key"):
        assert (made_secrets / name).stat().st_mode & 0o077 == 0, name
    env_text = (made_secrets / "kafka.env").read_text()
    assert env_text.count("--add-scram SCRAM-SHA-512=[name=") == len(dev_principals())
    assert "ADMIN_PASSWORD=" in env_text and "KEYSTORE_PASSWORD=" in env_text


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


def test_kafka_bootstrap_matches_the_advertised_listener(compose, settings, kafka_props):
    kafka = compose["services"]["kafka"]
    assert local_path_of(kafka, "/etc/kafka/borderfuse/server.properties") == KAFKA_PROPERTIES
    assert "/etc/kafka/borderfuse/server.properties" in kafka["command"][-1]
    advertised = listeners(kafka_props["advertised.listeners"])
    bound = listeners(kafka_props["listeners"])
    inter_broker = kafka_props["inter.broker.listener.name"]
    assert settings.kafka.bootstrap_servers == "{}:{}".format(*advertised[inter_broker])
    assert advertised[inter_broker][0] == "kafka" and bound[inter_broker][1] == advertised[inter_broker][1]
    assert kafka_props["controller.listener.names"] in bound
    assert advertised["HOST"][1] in container_ports(kafka)
    # a single broker cannot host three replicas of the transaction log the service writes to
    assert kafka_props["transaction.state.log.replication.factor"] == "1"
    assert kafka_props["auto.create.topics.enable"] == "false"


def test_image_is_kafka_4_kraft(compose, kafka_props):
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka_props["process.roles"] == "broker,controller"


def test_clients_authenticate_over_tls_and_acls_deny_by_default(compose, settings, kafka_props):
    protocols = dict(item.split(":") for item in kafka_props["listener.security.protocol.map"].split(","))
    client_listeners = set(listeners(kafka_props["advertised.listeners"]))
    assert {protocols[name] for name in client_listeners} == {"SASL_SSL"}, "every client listener: SCRAM over TLS"
    assert "PLAINTEXT" not in protocols.values()
    assert kafka_props["sasl.enabled.mechanisms"] == kafka_props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert kafka_props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert kafka_props["super.users"] == "User:admin" and kafka_props["allow.everyone.if.no.acl.found"] == "false"
    assert kafka_props["ssl.client.auth"] == "none" and kafka_props["ssl.keystore.location"].endswith(".p12")
    # every SASL listener has its JAAS entry: in the file, or (with the admin password) added at start
    command = compose["services"]["kafka"]["command"][-1]
    for name, protocol in protocols.items():
        mechanism = (kafka_props.get(f"listener.name.{name.lower()}.sasl.enabled.mechanisms")
                     or kafka_props["sasl.enabled.mechanisms"]).lower()
        key = f"listener.name.{name.lower()}.{mechanism}.sasl.jaas.config"
        assert key in kafka_props or key in command, key
    assert "$$SCRAM_ARGS" in command and "ssl.keystore.password=$$KEYSTORE_PASSWORD" in command
    assert "password=" not in KAFKA_PROPERTIES.read_text().replace("required;", ""), "no secret in the file"
    # the service's side: SASL_SSL as borderfuse, the CA and the passwords mounted from the secrets
    assert (settings.kafka.security_protocol, settings.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert settings.kafka.username == "borderfuse"
    service = compose["services"]["borderfuse"]
    assert local_path_of(service, settings.kafka.credentials_file) == SECRETS_DIR / "credentials.toml"
    assert local_path_of(service, settings.kafka.ssl_cafile) == SECRETS_DIR / "ca.pem"


def test_the_service_gets_a_plate_key_it_can_read(compose, settings, made_secrets):
    """Without one the service exits 2 at start: compose mounts make-secrets.sh's key where the toml says."""
    from borderfuse.ingest.plate_key import read_plate_key

    service = compose["services"]["borderfuse"]
    assert local_path_of(service, settings.privacy.plate_key_file) == SECRETS_DIR / "plate-key"
    assert settings.privacy.plate_key_id != "dev1"   # not the development key's id
    assert len(read_plate_key(made_secrets / "plate-key")) >= 32


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
    assert init.principal == "admin" and not init.no_acls, "topic-init creates the topics and the ACLs as admin"


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

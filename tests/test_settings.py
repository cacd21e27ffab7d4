"""Settings: defaults, TOML file, BORDERFUSE_<SECTION>__<KEY> overrides, errors that name the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from borderfuse.ingest.settings import DEFAULT_GEO_DIR, Settings, SettingsError, load_settings


def test_defaults_without_file_or_environment():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.broker.kafka_version == "4.1.1" and settings.broker.port == 9092
    assert settings.icd.geo_dir == DEFAULT_GEO_DIR and (DEFAULT_GEO_DIR / "sectors.geojson").is_file()


def test_file_then_environment_later_wins(tmp_path):
    config = tmp_path / "borderfuse.toml"
    config.write_text('[kafka]\nbootstrap_servers = "10.0.0.1:9092"\npoll_max_records = 50\n'
                      '[broker]\nport = 19092\ncache_dir = "~/kcache"\n')
    settings = load_settings(config, environ={"BORDERFUSE_BROKER__PORT": "29092", "UNRELATED": "x",
                                              "BORDERFUSE_FUSION__ALLOWED_LATENESS_S": "3.5"})
    assert settings.kafka.bootstrap_servers == "10.0.0.1:9092" and settings.kafka.poll_max_records == 50
    assert settings.broker.port == 29092  # environment beats the file
    assert settings.broker.cache_dir == Path.home() / "kcache"  # ~ expanded
    assert settings.fusion.allowed_lateness_s == 3.5
    assert settings.kafka.group_id == "borderfuse"  # untouched default


@pytest.mark.parametrize("toml, environ, names", [
    ("[broker]\nport = 70000\n", {}, "port"),
    ("[broker]\nport = \"abc\"\n", {}, "broker.port"),
    ("[kafka]\npoll_timeout_ms = 0\n", {}, "poll_timeout_ms"),
    ("[kafka]\nbootstrap = \"x\"\n", {}, "bootstrap"),
    ("[nosuch]\nx = 1\n", {}, "[nosuch]"),
    ("kafka = 3\n", {}, "[kafka]"),
    ("", {"BORDERFUSE_METRICS__PORT": "-1"}, "port"),
    ("", {"BORDERFUSE_FUSION__DUPLICATE_WINDOW_S": "soon"}, "fusion.duplicate_window_s"),
    ("", {"BORDERFUSE_NOSUCH__X": "1"}, "BORDERFUSE_NOSUCH__X"),
    ("", {"BORDERFUSE_BROKER__HEAP": "1"}, "heap"),
])
def test_bad_key_or_value_names_the_key(tmp_path, toml, environ, names):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as info:
        load_settings(config, environ=environ)
    assert names in str(info.value)


@pytest.mark.parametrize("content, message", [(None, "does not exist"), ("[kafka\n", "is not valid TOML")])
def test_bad_file_names_the_file(tmp_path, content, message):
    config = tmp_path / "c.toml"
    if content is not None:
        config.write_text(content)
    with pytest.raises(SettingsError, match=message) as info:
        load_settings(config, environ={})
    assert str(config) in str(info.value)


@pytest.mark.parametrize("environ, field, value", [
    ({}, "security_protocol", "SASL_PLAINTEXT"),
    ({}, "sasl_mechanism", "SCRAM-SHA-512"),
    ({}, "username", "borderfuse"),
    ({"BORDERFUSE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "BORDERFUSE_KAFKA__SSL_CAFILE": "/ca.pem"}, "ssl_cafile", "/ca.pem"),
    ({"BORDERFUSE_KAFKA__CREDENTIALS_FILE": "~/c.toml"}, "credentials_file", Path.home() / "c.toml"),
])
def test_kafka_security_fields(environ, field, value):
    assert getattr(load_settings(environ=environ).kafka, field) == value


def test_credentials_default_outside_the_work_tree():
    from borderfuse.ingest.settings import PACKAGE_ROOT

    path = load_settings(environ={}).kafka.credentials_file
    assert path == Path.home() / ".config" / "borderfuse" / "dev-credentials.toml"
    assert PACKAGE_ROOT not in path.parents


@pytest.mark.parametrize("raw, expected", [("false", False), ("0", False), ("True", True), ("yes", True)])
def test_broker_authentication_switch(raw, expected):
    assert load_settings(environ={"BORDERFUSE_BROKER__AUTHENTICATION": raw}).broker.authentication is expected
    assert load_settings(environ={}).broker.authentication is True


@pytest.mark.parametrize("environ, names", [
    ({"BORDERFUSE_KAFKA__SECURITY_PROTOCOL": "SSL"}, "security_protocol must be one of PLAINTEXT, SASL_PLAINTEXT"),
    ({"BORDERFUSE_KAFKA__SASL_MECHANISM": "PLAIN"}, "sasl_mechanism must be one of"),
    ({"BORDERFUSE_KAFKA__USERNAME": ""}, "username"),
    ({"BORDERFUSE_BROKER__AUTHENTICATION": "maybe"}, "broker.authentication"),
])
def test_bad_security_settings_are_one_clear_error(environ, names):
    with pytest.raises(SettingsError) as info:
        load_settings(environ=environ)
    assert names in str(info.value) and "\n" not in str(info.value)

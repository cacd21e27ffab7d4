"""Principals' credentials (file, mode, generation) and the kafka-python kwargs every client passes."""
from __future__ import annotations

import stat

import attrs
import pytest

from borderfuse.ingest.kafka_security import (
    CredentialsError, centre_principal, client_config, dev_principals, load_credentials, write_credentials,
)
from borderfuse.ingest.settings import KafkaSettings, SettingsError


def test_dev_principals_follow_the_sectors():
    assert dev_principals(["S1", "Q9"]) == ["admin", "borderfuse", "pl-agency", "de-agency", "ops", "centre-S1",
                                            "centre-Q9"]
    assert centre_principal("S3") == "centre-S3" and len(dev_principals()) == 9


def test_write_credentials_generates_mode_600_and_keeps_existing(tmp_path):
    path = tmp_path / "sub" / "creds.toml"
    creds, added = write_credentials(path, ["admin", "borderfuse"])
    assert added == ["admin", "borderfuse"] and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path) == creds and creds["admin"] != creds["borderfuse"]
    more, added = write_credentials(path, ["admin", "borderfuse", "centre-S1"])
    assert added == ["centre-S1"] and {k: more[k] for k in creds} == creds
    assert write_credentials(path, ["admin"]) == (more, [])


@pytest.mark.parametrize("content, mode, message", [
    (None, 0o600, "does not exist"),
    ('[principals.admin]\npassword = "x"\n', 0o644, "readable by others"),
    ("not toml [", 0o600, "cannot be read as TOML"),
    ('[other]\nx = 1\n', 0o600, "no [principals.<name>] tables"),
    ('[principals.admin]\npassword = 3\n', 0o600, "[principals.admin] has no string password"),
])
def test_bad_credentials_files_are_named(tmp_path, content, mode, message):
    path = tmp_path / "creds.toml"
    if content is not None:
        path.write_text(content)
        path.chmod(mode)
    with pytest.raises(CredentialsError, match=message.replace("[", r"\[").replace(".", r"\.")) as info:
        load_credentials(path)
    assert str(path) in str(info.value) and isinstance(info.value, SettingsError)


def test_client_config_for_each_protocol(tmp_path):
    path = tmp_path / "creds.toml"
    creds, _ = write_credentials(path, ["borderfuse", "ops"])
    kafka = KafkaSettings(credentials_file=path)
    assert client_config(kafka) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                                    "sasl_plain_username": "borderfuse", "sasl_plain_password": creds["borderfuse"]}
    assert client_config(kafka, "ops")["sasl_plain_password"] == creds["ops"]
    tls = client_config(attrs.evolve(kafka, security_protocol="SASL_SSL", ssl_cafile="/etc/ca.pem"), "ops")
    assert tls["security_protocol"] == "SASL_SSL" and tls["ssl_cafile"] == "/etc/ca.pem"
    # A plaintext broker needs nothing, not even the file.
    assert client_config(KafkaSettings(security_protocol="PLAINTEXT", credentials_file=tmp_path / "none")) == {}
    with pytest.raises(CredentialsError, match="no password for principal 'centre-S9'"):
        client_config(kafka, "centre-S9")

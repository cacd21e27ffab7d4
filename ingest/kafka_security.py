"""Who a Kafka client is: SASL/SCRAM principals and their credentials.

Every Kafka client in borderfuse passes `**client_config(settings.kafka, principal)`: for a plaintext
broker that adds nothing; otherwise the security protocol, the SASL mechanism and the principal's name
and password. Passwords never live in settings or in the work tree: they come from a credentials file
(TOML, mode 600, `[principals.<name>] password = "..."`) named by `kafka.credentials_file`. For
development `write_credentials` generates one (`borderfuse broker start` and scripts/setup.sh call it).
"""
from __future__ import annotations

import secrets
import stat
import tomllib
from pathlib import Path
from typing import Iterable

from borderfuse.ingest.private_files import open_to_others, write_private
from borderfuse.ingest.settings import DEFAULT_CREDENTIALS_FILE, KafkaSettings, SettingsError

__all__ = ["ADMIN", "SERVICE", "OPS", "PL_AGENCY", "DE_AGENCY", "CredentialsError", "DEFAULT_CREDENTIALS_FILE",
           "centre_principal", "client_config", "dev_principals", "load_credentials", "write_credentials"]

ADMIN = "admin"  # super user: topic and ACL creation only
SERVICE = "borderfuse"
OPS = "ops"
PL_AGENCY = "pl-agency"
DE_AGENCY = "de-agency"
DEFAULT_SECTORS = ("S1", "S2", "S3", "S4")


class CredentialsError(SettingsError):
    """The credentials file is missing, unreadable, too open or lacks a principal; the message says which."""


def centre_principal(sector: str) -> str:
    return f"centre-{sector}"


def dev_principals(sectors: Iterable[str] = DEFAULT_SECTORS) -> list[str]:
    """Every principal of a deployment with these sectors (admin first)."""
    return [ADMIN, SERVICE, PL_AGENCY, DE_AGENCY, OPS, *(centre_principal(s) for s in sectors)]


def load_credentials(path: str | Path) -> dict[str, str]:
    """{principal: password} from the TOML credentials file at `path` (which must not be group/other readable)."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CredentialsError(f"credentials file {path} (kafka.credentials_file) does not exist: "
                               f"`borderfuse broker credentials` makes a development one") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"credentials file {path} cannot be read as TOML: {exc}") from exc
    if open_to_others(mode):
        raise CredentialsError(f"credentials file {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                               f"chmod 600 {path}")
    principals = data.get("principals")
    if not isinstance(principals, dict):
        raise CredentialsError(f"credentials file {path} has no [principals.<name>] tables")
    out = {}
    for name, body in principals.items():
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str) or not password:
            raise CredentialsError(f"credentials file {path}: [principals.{name}] has no string password")
        out[name] = password
    return out


def write_credentials(path: str | Path, principals: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Make sure `path` holds a password for each of `principals`: existing ones are kept, missing ones
    generated (secrets.token_urlsafe). The file is (re)written with mode 600. Returns (all, added)."""
    path = Path(path).expanduser()
    existing = load_credentials(path) if path.exists() else {}
    added = [p for p in principals if p not in existing]
    if not added:
        return existing, []
    creds = {**existing, **{p: secrets.token_urlsafe(24) for p in added}}
    lines = ["# borderfuse Kafka credentials (SASL/SCRAM-SHA-512). Generated; never commit this file.\n"]
    for name, password in creds.items():
        lines.append(f'\n[principals."{name}"]\npassword = "{password}"\n')
    write_private(path, "".join(lines))
    return creds, added


def client_config(kafka: KafkaSettings, principal: str | None = None) -> dict:
    """kafka-python keyword arguments that make a client authenticate as `principal` (None: kafka.username).

    Empty for a PLAINTEXT broker. Raises CredentialsError when the password cannot be found.
    """
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    name = principal or kafka.username
    creds = load_credentials(kafka.credentials_file)
    if name not in creds:
        raise CredentialsError(f"credentials file {Path(kafka.credentials_file).expanduser()} has no password "
                               f"for principal {name!r} (known: {', '.join(sorted(creds))})")
    config = {"security_protocol": kafka.security_protocol, "sasl_mechanism": kafka.sasl_mechanism,
              "sasl_plain_username": name, "sasl_plain_password": creds[name]}
    if kafka.security_protocol == "SASL_SSL" and kafka.ssl_cafile:
        config["ssl_cafile"] = str(kafka.ssl_cafile)
    return config

"""A real single-node Kafka broker (KRaft, broker+controller in one JVM) on loopback.

Used by `borderfuse broker`, the demo and the integration tests. The jars come from Maven
Central through this machine's `mvn` (over devbroker/kafka/pom.xml) and are cached in
`<cache_dir>/kafka-<version>/libs`; a marker file is written only once the download is
complete, so an interrupted download is redone. Each broker owns a data dir holding its
config, KRaft log dirs, the ports it chose and its log files; `stop()` then `start()` on the
same data dir brings the same broker (same topics, same port) back.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import attrs

from borderfuse.ingest.kafka_probe import LOOPBACK, answers_metadata, reachable  # noqa: F401  (re-exported)
from borderfuse.ingest.kafka_security import (
    ADMIN, DEFAULT_CREDENTIALS_FILE, CredentialsError, dev_principals, load_credentials, write_credentials,
)
from borderfuse.devbroker.config import _LOG4J2, new_cluster_id, server_properties
from borderfuse.devbroker.processes import _die_with_parent, free_port, port_is_free, stop_pid

POM_FILE = Path(__file__).resolve().parent / "kafka" / "pom.xml"
COMPLETE_MARKER = ".complete"

Log = Callable[[str], None]


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says what to do."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- jars


def kafka_home(cache_dir: Path, version: str) -> Path:
    return Path(cache_dir) / f"kafka-{version}"


def fetch_kafka(version: str, cache_dir: Path, log: Log = _stderr) -> Path:
    """Return the dir of Kafka `version`'s jars, downloading them with `mvn` unless cached."""
    home = kafka_home(cache_dir, version)
    libs = home / "libs"
    if (home / COMPLETE_MARKER).exists():
        return libs
    home.parent.mkdir(parents=True, exist_ok=True)
    # Two processes (e.g. setup.sh and a test run) may fetch at once: one downloads, the other waits.
    with open(home.parent / f"kafka-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / COMPLETE_MARKER).exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(f"`mvn` not found on PATH: install Maven (apt-get install -y maven) so the "
                              f"Kafka {version} jars can be fetched into {home}")
        shutil.rmtree(home, ignore_errors=True)
        libs.mkdir(parents=True)
        log(f"broker: fetching Kafka {version} jars from Maven Central into {libs} ...")
        started = time.monotonic()
        cmd = [mvn, "-B", "-q", "-f", str(POM_FILE), f"-Dkafka.version={version}",
               "dependency:copy-dependencies", f"-DoutputDirectory={libs}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            lines = [ln for ln in (result.stdout + result.stderr).splitlines() if "ERROR" in ln] or ["(no output)"]
            raise BrokerError(f"downloading Kafka {version} jars with mvn failed (exit {result.returncode}): "
                              f"{lines[0].strip()[:300]} -- check access to Maven Central and that "
                              f"org.apache.kafka:kafka_2.13:{version} exists, then retry")
        if not (libs / f"kafka_2.13-{version}.jar").exists():
            raise BrokerError(f"mvn finished but {libs} has no kafka_2.13-{version}.jar; delete {home} and retry")
        (home / COMPLETE_MARKER).write_text(f"{len(list(libs.glob('*.jar')))} jars\n")
        log(f"broker: fetched Kafka {version} ({len(list(libs.glob('*.jar')))} jars) "
            f"in {time.monotonic() - started:.1f} s (cold start)")
    return libs


@attrs.define
class KafkaBroker:
    """A Kafka broker process owned by this Python process (or detached, for `broker start`).

    `port=0` picks a free port on first start and keeps it (stored in the data dir) for restarts.
    """

    version: str
    cache_dir: Path = attrs.field(converter=Path)
    data_dir: Path = attrs.field(converter=Path)
    port: int = 0
    heap_mb: int = 512
    die_with_parent: bool = True
    log: Log = _stderr
    # SASL/SCRAM + ACLs (the default), or a plain listener with no authoriser (comparisons only).
    authentication: bool = True
    credentials_file: Path = attrs.field(default=DEFAULT_CREDENTIALS_FILE, converter=Path)
    # Principals given a SCRAM credential (generated into credentials_file when missing).
    principals: tuple[str, ...] = attrs.field(default=tuple(dev_principals()), converter=tuple)
    controller_port: int = attrs.field(default=0, init=False)
    fetch_s: float | None = attrs.field(default=None, init=False)
    start_s: float | None = attrs.field(default=None, init=False)
    _proc: subprocess.Popen | None = attrs.field(default=None, init=False)

    @classmethod
    def from_settings(cls, broker_settings, data_dir: Path | None = None, port: int | None = None,
                      **kwargs) -> "KafkaBroker":
        kwargs.setdefault("authentication", broker_settings.authentication)
        return cls(version=broker_settings.kafka_version, cache_dir=broker_settings.cache_dir,
                   data_dir=data_dir or broker_settings.state_dir,
                   port=broker_settings.port if port is None else port,
                   heap_mb=broker_settings.heap_mb, **kwargs)

    @property
    def security_protocol(self) -> str:
        return "SASL_PLAINTEXT" if self.authentication else "PLAINTEXT"

    def client_config(self, principal: str = ADMIN) -> dict:
        """kafka-python keyword arguments to connect as `principal` ({} on a plain broker)."""
        if not self.authentication:
            return {}
        creds = load_credentials(self.credentials_file)
        if principal not in creds:
            raise CredentialsError(f"credentials file {self.credentials_file} has no password for {principal!r}")
        return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": principal, "sasl_plain_password": creds[principal]}

    def env(self, principal: str = ADMIN) -> dict[str, str]:
        """BORDERFUSE_KAFKA__* variables that point a borderfuse process at this broker as `principal`."""
        return {"BORDERFUSE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
                "BORDERFUSE_KAFKA__SECURITY_PROTOCOL": self.security_protocol,
                "BORDERFUSE_KAFKA__CREDENTIALS_FILE": str(self.credentials_file),
                "BORDERFUSE_KAFKA__USERNAME": principal}

    def settings_for(self, principal: str = ADMIN, settings=None):
        """`settings` (default: the built-in defaults) pointed at this broker as `principal`."""
        from borderfuse.ingest.settings import Settings

        settings = settings or Settings()
        return attrs.evolve(settings, kafka=attrs.evolve(
            settings.kafka, bootstrap_servers=self.bootstrap, security_protocol=self.security_protocol,
            credentials_file=self.credentials_file, username=principal))

    @property
    def bootstrap(self) -> str:
        if not self.port:
            raise BrokerError("broker has no port yet: call start() first")
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def stdout_file(self) -> Path:
        return self.data_dir / "jvm.out"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout_s: float = 120.0, detach: bool = False) -> "KafkaBroker":
        """Fetch (if needed), format (first time), start and wait until it answers metadata.

        `detach=True` puts the JVM in its own session without the parent-death signal, so it
        outlives this process (`borderfuse broker start`).
        """
        if self.is_running():
            return self
        java = shutil.which("java")
        if java is None:
            raise BrokerError("`java` not found on PATH: Kafka needs a Java 17+ runtime "
                              "(apt-get install -y openjdk-17-jre-headless)")
        started = time.monotonic()
        cold = not (kafka_home(self.cache_dir, self.version) / COMPLETE_MARKER).exists()
        libs = fetch_kafka(self.version, self.cache_dir, self.log)
        self.fetch_s = time.monotonic() - started
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        classpath = f"{libs}/*"
        props_file = self.data_dir / "server.properties"
        log_dirs = self.data_dir / "kraft-logs"
        creds = self._ensure_credentials() if self.authentication else None
        # Holds the admin password: readable by this user only.
        fd = os.open(props_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(server_properties(self.port, self.controller_port, log_dirs,
                                        creds[ADMIN] if creds is not None else None))
        os.chmod(props_file, 0o600)
        log4j_file = self.data_dir / "log4j2.properties"
        log4j_file.write_text(_LOG4J2.format(log_file=self.log_file))
        jvm = [java, f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 128)}m", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j_file}", f"-Dkafka.logs.dir={self.data_dir}",
               "-cp", classpath]
        if not (log_dirs / "meta.properties").exists():
            self._format(jvm, props_file, creds)
        with open(self.stdout_file, "ab") as out:
            # Always its own session: a Ctrl-C in the terminal must not kill the broker before its users
            # (the demo's service, making its final commit) have stopped; stop() ends it in order. Without
            # detach, the parent-death signal still takes it along if we die.
            self._proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(props_file)], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
                preexec_fn=None if detach else (_die_with_parent if self.die_with_parent else None))
        try:
            self._wait_ready(started, timeout_s)
        except BaseException:
            self.stop()  # no half-started JVM left behind (e.g. Ctrl-C while waiting)
            raise
        if creds is not None:
            self._sync_scram(creds)
        self.start_s = time.monotonic() - started - self.fetch_s
        fetched = f"; jar download {self.fetch_s:.1f} s" if cold else ""
        self.log(f"broker: Kafka {self.version} up at {self.bootstrap} (pid {self.pid}) in "
                 f"{self.start_s:.1f} s ({'cold' if cold else 'warm'} start{fetched})")
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, wait, SIGKILL fallback. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return

        def wait(t: float) -> bool:
            try:
                proc.wait(t)
                return True
            except subprocess.TimeoutExpired:
                return False

        stop_pid(proc.pid, timeout_s, wait)

    def detach(self) -> int:
        """Forget the (detached) process so this Python process can exit; returns its pid."""
        proc, self._proc = self._proc, None
        if proc is None:
            raise BrokerError("no broker process to detach")
        proc.returncode = 0  # we no longer own it: silence Popen's "still running" warning
        return proc.pid

    # ---------------------------------------------------------------- internals

    def _choose_ports(self) -> None:
        ports_file = self.data_dir / "ports.json"
        saved = json.loads(ports_file.read_text()) if ports_file.exists() else {}
        if not self.port:
            self.port = saved.get("port") or free_port()
        if not port_is_free(self.port):
            raise BrokerError(f"port {self.port} on {LOOPBACK} is taken (another broker? try "
                              f"`borderfuse broker stop` or pick another with --port)")
        self.controller_port = saved.get("controller_port") or 0
        if not self.controller_port or self.controller_port == self.port or not port_is_free(self.controller_port):
            self.controller_port = free_port()
        ports_file.write_text(json.dumps({"port": self.port, "controller_port": self.controller_port}))

    def _ensure_credentials(self) -> dict[str, str]:
        creds, added = write_credentials(self.credentials_file, self.principals)
        if added:
            self.log(f"broker: generated SASL/SCRAM credentials for {', '.join(added)} in {self.credentials_file} "
                     f"(mode 600)")
        return creds

    def _scram_fingerprint(self, creds: dict[str, str]) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(sorted(creds.items())).encode()).hexdigest()

    def _sync_scram(self, creds: dict[str, str]) -> None:
        """Credentials added or changed since the storage was formatted go to the broker (as admin)."""
        marker = self.data_dir / "scram.sha256"
        fingerprint = self._scram_fingerprint(creds)
        if marker.exists() and marker.read_text().strip() == fingerprint:
            return
        from kafka import KafkaAdminClient
        from kafka.admin import UserScramCredentialUpsertion
        from kafka.errors import KafkaError

        admin = None
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="borderfuse-broker",
                                     **self.client_config(ADMIN))
            errors = admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(name, "SCRAM-SHA-512", password) for name, password in creds.items()])
        except KafkaError as exc:
            raise BrokerError(f"could not store the SCRAM credentials of {self.credentials_file} on the broker: "
                              f"{exc!r} (was the admin password changed? delete {self.data_dir} and restart)") from exc
        finally:
            if admin is not None:
                admin.close()
        failed = {k: v for k, v in (errors or {}).items() if v}
        if failed:
            raise BrokerError(f"storing SCRAM credentials failed for {failed}")
        marker.write_text(fingerprint + "\n")

    def _format(self, jvm: list[str], props_file: Path, creds: dict[str, str] | None) -> None:
        cluster_id = new_cluster_id()
        # SCRAM users must exist before the broker starts (its own inter-broker login is one of them).
        scram = [arg for name, password in (creds or {}).items()
                 for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]
        result = subprocess.run([*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                 "-c", str(props_file), "--ignore-formatted", *scram],
                                capture_output=True, text=True, cwd=self.data_dir)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise BrokerError(f"formatting the KRaft storage in {self.data_dir} failed: {tail[0][:300]} "
                              f"-- delete {self.data_dir / 'kraft-logs'} and retry")
        if creds is not None:
            (self.data_dir / "scram.sha256").write_text(self._scram_fingerprint(creds) + "\n")

    def _wait_ready(self, started: float, timeout_s: float) -> None:
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(f"the Kafka JVM exited with code {code} while starting: "
                                  f"{self._failure_hint()} (logs: {self.stdout_file}, {self.log_file})")
            if answers_metadata(self.bootstrap, timeout_s=2.0, security=self.client_config(ADMIN)):
                return
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"the broker did not answer on {self.bootstrap} within {timeout_s:.0f} s "
                          f"(logs: {self.stdout_file}, {self.log_file})")

    def _failure_hint(self) -> str:
        lines: list[str] = []
        for path in (self.stdout_file, self.log_file):
            if path.exists():
                lines += [ln for ln in path.read_text(errors="replace").splitlines()
                          if "ERROR" in ln or "Exception" in ln or "Error" in ln]
        return lines[-1].strip()[:300] if lines else "no error in the logs"

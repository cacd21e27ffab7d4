"""KafkaBroker: jar cache, clear errors, start/stop/restart of a real broker, `borderfuse broker`."""
from __future__ import annotations

import argparse
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from borderfuse.devbroker.broker import COMPLETE_MARKER, BrokerError, KafkaBroker, answers_metadata, fetch_kafka, kafka_home
from borderfuse.devbroker.config import new_cluster_id, server_properties
from borderfuse.devbroker.processes import is_kafka_pid
from borderfuse.devbroker import command as broker_command
from borderfuse.ingest.settings import load_settings

VERSION = load_settings().broker.kafka_version


def _path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only links to the named tools (to simulate missing java / mvn)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        target = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(target)
    return str(bin_dir)


def _fake_tool(tmp_path: Path, name: str, script: str) -> str:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return str(bin_dir)


def test_warm_fetch_uses_the_cache_without_mvn(kafka_broker, monkeypatch, tmp_path):
    # The session broker has filled the cache; with no mvn on PATH the jars still come from it.
    cache_dir = load_settings().broker.cache_dir
    monkeypatch.setenv("PATH", _path_with(tmp_path, "java"))
    libs = fetch_kafka(VERSION, cache_dir)
    assert (libs / f"kafka_2.13-{VERSION}.jar").is_file()


def test_half_download_is_redone(monkeypatch, tmp_path):
    home = kafka_home(tmp_path, VERSION)
    (home / "libs").mkdir(parents=True)
    (home / "libs" / "partial.jar").write_bytes(b"")  # no marker: an interrupted download
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BrokerError, match="`mvn` not found on PATH"):
        fetch_kafka(VERSION, tmp_path, log=lambda m: None)


def test_failed_download_says_so_and_leaves_no_marker(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _fake_tool(tmp_path, "mvn", "echo '[ERROR] Could not resolve dependencies'; exit 1"))
    with pytest.raises(BrokerError, match=r"downloading Kafka .* failed \(exit 1\): \[ERROR\] Could not resolve"):
        fetch_kafka(VERSION, tmp_path / "cache", log=lambda m: None)
    assert not (kafka_home(tmp_path / "cache", VERSION) / COMPLETE_MARKER).exists()


def test_missing_java_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _path_with(tmp_path, "mvn"))
    broker = KafkaBroker(VERSION, tmp_path / "cache", tmp_path / "data", log=lambda m: None)
    with pytest.raises(BrokerError, match=r"`java` not found on PATH: Kafka needs a Java 17"):
        broker.start()


def test_taken_port_is_one_clear_error(kafka_broker, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        broker = KafkaBroker(VERSION, kafka_broker.cache_dir, tmp_path / "data", port=port, log=lambda m: None)
        with pytest.raises(BrokerError, match=rf"port {port} on 127.0.0.1 is taken"):
            broker.start()
        assert not broker.is_running()


@pytest.mark.parametrize("port, controller_port, password, client_listener", [
    (9092, 9093, None, "PLAINTEXT"), (40001, 40002, None, "PLAINTEXT"), (40001, 40002, "s3cret", "SASL_PLAINTEXT")])
def test_server_properties_are_loopback_single_node_and_test_friendly(tmp_path, port, controller_port, password,
                                                                       client_listener):
    text = server_properties(port, controller_port, tmp_path, password)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == f"{client_listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    assert props["advertised.listeners"] == f"{client_listener}://127.0.0.1:{port}"
    if password is None:
        assert "authorizer.class.name" not in props and "s3cret" not in text
    else:  # SCRAM for clients and the broker itself, PLAIN (admin only) on the controller listener, deny by default
        assert props["sasl.enabled.mechanisms"] == props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
        assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert props["super.users"] == "User:admin" and props["allow.everyone.if.no.acl.found"] == "false"
        assert props["listener.security.protocol.map"] == "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
        assert 'user_admin="s3cret"' in props["listener.name.controller.plain.sasl.jaas.config"]
        assert "PLAINTEXT:PLAINTEXT" not in text
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{controller_port}"
    assert props["log.dirs"] == str(tmp_path)
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == props["transaction.state.log.min.isr"] == "1"


@pytest.mark.integration
def test_session_broker_answers_metadata_only_to_a_principal(kafka_broker):
    assert kafka_broker.is_running()
    assert answers_metadata(kafka_broker.bootstrap, security=kafka_broker.client_config())
    assert not answers_metadata(kafka_broker.bootstrap)  # anonymous: refused
    assert kafka_broker.bootstrap.startswith("127.0.0.1:")


@pytest.mark.integration
def test_stop_then_start_keeps_port_and_data(kafka_broker_factory):
    from borderfuse.ingest.topics import TopicSpec, ensure_topics, list_topics

    broker = kafka_broker_factory()
    bootstrap, first_pid, admin = broker.bootstrap, broker.pid, broker.client_config()
    ensure_topics(bootstrap, [TopicSpec("restart.check")], security=admin)
    broker.stop()
    assert not broker.is_running() and not is_kafka_pid(first_pid)
    assert not answers_metadata(bootstrap, timeout_s=1.0, security=admin)
    broker.stop()  # a second stop is harmless
    messages: list[str] = []
    broker.log = messages.append
    broker.start()
    assert broker.bootstrap == bootstrap and broker.pid != first_pid
    assert "restart.check" in list_topics(bootstrap, security=admin)
    assert "warm start" in messages[-1] and broker.fetch_s < 1.0


def _broker_cli(args: list[str], state_dir: Path) -> int:
    """Run `borderfuse broker ...` in-process with its state (and credentials) in `state_dir`."""
    parser = argparse.ArgumentParser()
    broker_command.register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["broker", *args])
    ns.settings = load_settings(environ={"BORDERFUSE_BROKER__STATE_DIR": str(state_dir),
                                         "BORDERFUSE_KAFKA__CREDENTIALS_FILE": str(state_dir / "creds.toml")})
    return ns.func(ns)


def test_cli_credentials_generates_missing_passwords_and_keeps_the_rest(tmp_path, capsys):
    from borderfuse.ingest.kafka_security import dev_principals, load_credentials

    creds = tmp_path / "state" / "creds.toml"
    assert _broker_cli(["credentials"], tmp_path / "state") == 0
    assert capsys.readouterr().out.strip() == str(creds)
    first = load_credentials(creds)
    assert sorted(first) == sorted(dev_principals()) and stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert len(set(first.values())) == len(first) and all(len(p) >= 24 for p in first.values())
    assert _broker_cli(["credentials"], tmp_path / "state") == 0
    assert load_credentials(creds) == first


@pytest.mark.integration
def test_cli_start_status_stop_daemon(tmp_path, capsys):
    state_dir = tmp_path / "state"
    assert _broker_cli(["status"], state_dir) == 1
    assert "not running" in capsys.readouterr().out
    try:
        assert _broker_cli(["start", "--port", "0"], state_dir) == 0
        bootstrap = capsys.readouterr().out.strip().splitlines()[-1]
        pid = int((state_dir / "broker.pid").read_text())
        assert bootstrap == f"127.0.0.1:{(state_dir / 'broker.port').read_text().strip()}"
        assert is_kafka_pid(pid) and os.getsid(pid) == pid  # detached: its own session
        assert (state_dir / "creds.toml").exists()  # generated at start: it was missing
        assert _broker_cli(["status"], state_dir) == 0  # status asks as admin, with those credentials
        assert f"running (pid {pid}) at {bootstrap}" in capsys.readouterr().out
        assert _broker_cli(["start"], state_dir) == 0  # already running: says so, same address
        assert capsys.readouterr().out.strip() == bootstrap
    finally:
        assert _broker_cli(["stop"], state_dir) == 0
    assert not is_kafka_pid(pid)
    assert not (state_dir / "broker.pid").exists()
    assert _broker_cli(["status"], state_dir) == 1


def test_killed_parent_takes_its_broker_along(kafka_broker, tmp_path):
    # A child Python starts a broker the way the fixtures do, prints its pid, then is SIGKILLed.
    code = (
        "import sys, time\n"
        "from borderfuse.devbroker.broker import KafkaBroker\n"
        f"b = KafkaBroker({VERSION!r}, {str(kafka_broker.cache_dir)!r}, {str(tmp_path / 'data')!r}, "
        f"credentials_file={str(tmp_path / 'creds.toml')!r}, log=lambda m: None).start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        jvm_pid = int(child.stdout.readline())
        assert is_kafka_pid(jvm_pid)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    import time
    deadline = time.monotonic() + 10
    while is_kafka_pid(jvm_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_kafka_pid(jvm_pid)


def test_cluster_ids_never_look_like_an_option(monkeypatch):
    # StorageTool's parser reads "-t -abc..." as a missing argument; one random id in 64 starts with '-'.
    import uuid as uuid_module

    dash_first = uuid_module.UUID(bytes=b"\xf8" + bytes(15))  # base64url "-A..."
    ids = iter([dash_first, uuid_module.UUID(int=1)])
    monkeypatch.setattr(uuid_module, "uuid4", lambda: next(ids))
    cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-") and len(cluster_id) == 22

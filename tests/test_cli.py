"""`borderfuse --help` and every subcommand's --help exit 0 and describe the command; the
foundation's commands report unreachable brokers and bad input in one line with a non-zero exit."""
from __future__ import annotations

import subprocess
import sys

import pytest

from borderfuse.ingest.cli import COMMANDS, main

NESTED = [("broker", "start"), ("broker", "stop"), ("broker", "status"), ("broker", "credentials"),
          ("topics", "create"), ("topics", "acls"), ("topics", "list"),
          ("rules", "apply"), ("rules", "show")]


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS), *(list(n) for n in NESTED)],
                         ids=lambda argv: " ".join(argv) or "borderfuse")
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: borderfuse") and (not argv or argv[-1] in out)


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_console_script_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "borderfuse", "publish", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--speed" in result.stdout


@pytest.mark.parametrize("argv, message", [
    (["topics", "list", "--bootstrap", "127.0.0.1:1"], "cannot reach Kafka at 127.0.0.1:1"),
    (["record", "--topics", "x", "--out", "{tmp}/o.jsonl", "--bootstrap", "127.0.0.1:1"], "cannot reach Kafka"),
    (["publish", "{tmp}/missing.jsonl", "--bootstrap", "127.0.0.1:1"], "does not exist"),
    (["publish", "{tmp}/c.jsonl", "--bootstrap", "127.0.0.1:1"], "cannot reach Kafka"),
])
def test_errors_are_one_line_and_fail(tmp_path, capsys, argv, message):
    (tmp_path / "c.jsonl").write_text("")
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 1 and message in err and len(err.splitlines()) == 1


@pytest.mark.integration
def test_publish_reports_skipped_lines_and_record_writes_the_file(kafka_broker, tmp_path, capsys, monkeypatch):
    import json
    import uuid

    from borderfuse.capture.files import read_capture
    from borderfuse.ingest.topics import TopicSpec, ensure_topics

    topic = f"cli-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker.bootstrap, [TopicSpec(topic)], security=kafka_broker.client_config())
    for key, value in kafka_broker.env().items():  # publish's default principal is admin; record runs as admin too
        monkeypatch.setenv(key, value)
    good = {"topic": topic, "partition": 0, "offset": 0, "timestamp_ms": 1_700_000_000_000, "key": None,
            "value": "dg=="}
    (tmp_path / "in.jsonl").write_text(json.dumps(good) + "\nnot json\n" + json.dumps(good) + "\n")
    assert main(["publish", str(tmp_path / "in.jsonl"), "--bootstrap", kafka_broker.bootstrap]) == 1
    captured = capsys.readouterr()
    assert "in.jsonl:2: not JSON" in captured.err
    assert "published 2 records" in captured.out and "bad lines skipped: 1" in captured.out
    assert main(["publish", str(tmp_path / "in.jsonl"), "--strict", "--bootstrap", kafka_broker.bootstrap]) == 1
    assert "in.jsonl:2: not JSON" in capsys.readouterr().err
    out = tmp_path / "out.jsonl.gz"
    assert main(["record", "--topics", topic, "--out", str(out), "--from-beginning", "--until-idle", "0.5",
                 "--bootstrap", kafka_broker.bootstrap]) == 0
    assert "recorded 3 records" in capsys.readouterr().out  # 2 + the strict run's first line
    assert [r.value for r in read_capture(out)] == [b"v", b"v", b"v"]

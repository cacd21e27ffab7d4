"""`borderfuse console` and `borderfuse cot` refuse bad arguments with one line and exit 2."""
from __future__ import annotations

import pytest

from borderfuse.devbroker.broker import free_port
from borderfuse.ingest.cli import main


@pytest.mark.parametrize("argv, message", [
    (["console", "--rules", "r.toml"], "--rules and --speed need --capture"),
    (["console", "--speed", "5"], "--rules and --speed need --capture"),
    (["console", "--capture", "c.jsonl", "--bootstrap", "h:1"], "--bootstrap is for live mode"),
    (["console", "--capture", "c.jsonl", "--speed", "0"], "--speed must be > 0"),
    (["console", "--capture", "/nonexistent/capture.jsonl.gz"], "capture file /nonexistent/capture.jsonl.gz does not exist"),
    (["console", "--bootstrap", f"127.0.0.1:{free_port()}"], "cannot reach Kafka"),
    (["cot", "--url", "http://tak:8080"], "bad CoT URL"),
    (["cot", "--sector", "S9"], "unknown sector(s) S9"),
    (["cot", "--bootstrap", f"127.0.0.1:{free_port()}"], "cannot reach Kafka"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err

"""`borderfuse console` and `borderfuse cot` refuse bad arguments with one line and exit 2."""
from __future__ import annotations

import pytest

from borderfuse.devbroker.processes import free_port
from borderfuse.ingest.cli import main


@pytest.fixture
def console_users(tmp_path, monkeypatch):
    """A users file and a session key in tmp_path, named by the settings' environment variables."""
    from borderfuse.console.users import add_user

    add_user(tmp_path / "users.toml", "centre-S1", "password 1", ["S1"], ["S1", "S2", "S3", "S4"])
    monkeypatch.setenv("BORDERFUSE_CONSOLE__USERS_FILE", str(tmp_path / "users.toml"))
    monkeypatch.setenv("BORDERFUSE_CONSOLE__SESSION_SECRET_FILE", str(tmp_path / "session.key"))
    return tmp_path / "users.toml"


@pytest.mark.parametrize("argv, message", [
    (["console", "--rules", "r.toml"], "--rules and --speed need --capture"),
    (["console", "--speed", "5"], "--rules and --speed need --capture"),
    (["console", "--capture", "c.jsonl", "--bootstrap", "h:1"], "--bootstrap is for live mode"),
    (["console", "--capture", "c.jsonl", "--speed", "0"], "--speed must be > 0"),
    (["console", "--capture", "/nonexistent/capture.jsonl.gz"], "capture file /nonexistent/capture.jsonl.gz does not exist"),
    (["console", "--bootstrap", f"127.0.0.1:{free_port()}"], "cannot reach Kafka"),
    (["console", "--sectors", "S1,S9"], "unknown sector(s) S9 (console.sectors / --sectors)"),
    (["cot", "--url", "http://tak:8080"], "bad CoT URL"),
    (["cot", "--sector", "S9"], "unknown sector(s) S9"),
    (["cot", "--bootstrap", f"127.0.0.1:{free_port()}"], "cannot reach Kafka"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys, console_users):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("env, message", [
    ({"BORDERFUSE_CONSOLE__AUTH": "oidc", "BORDERFUSE_CONSOLE__OIDC_ISSUER": "https://login.example",
      "BORDERFUSE_CONSOLE__OIDC_CLIENT_ID": "console", "BORDERFUSE_CONSOLE__OIDC_CLIENT_SECRET_FILE": "/s"},
     'console.auth = "oidc" is not implemented in this build'),
    ({"BORDERFUSE_CONSOLE__AUTH": "oidc"}, "bad settings: console: oidc_issuer must be an https:// URL"),
    ({"BORDERFUSE_CONSOLE__AUTH": "saml"}, "bad settings: console: auth must be one of users-file, oidc"),
    ({"BORDERFUSE_CONSOLE__USERS_FILE": "/nonexistent/users.toml"}, "console users file /nonexistent/users.toml"),
])
def test_login_settings_are_checked_at_start_in_one_line(env, message, capsys, console_users, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["console", "--capture", __file__, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err

"""borderfuse.console.users: the users file (argon2 hashes, mode 600), the development users, the session
key; and `borderfuse console users add|list|dev`."""
from __future__ import annotations

import io
import os
import stat

import pytest

from borderfuse.console.users import (User, UsersFileAuth, UsersFileError, add_user, dev_logins_path,
                                      ensure_dev_users, hash_password, load_users, read_dev_logins, save_users,
                                      session_secret)
from borderfuse.ingest.cli import main

SECTORS = ["S1", "S2", "S3", "S4"]


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_user_is_stored_hashed_with_mode_600_and_checked(tmp_path):
    path = tmp_path / "cfg" / "users.toml"
    assert add_user(path, "centre-S1", "pass word 1", ["S1"], SECTORS) is False
    assert add_user(path, "supervisor", "pass word 2", ["S1", "S2"], SECTORS) is False
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    text = path.read_text()
    assert "pass word" not in text and text.count("$argon2id$") == 2
    auth = UsersFileAuth(path)
    assert auth.verify("centre-S1", "pass word 1").sectors == ("S1",)
    assert auth.verify("centre-S1", "pass word 2") is None and auth.verify("nobody", "pass word 1") is None
    assert auth.sectors_of("supervisor") == ("S1", "S2") and auth.sectors_of("nobody") is None
    assert add_user(path, "centre-S1", "new pass word", ["S1", "S3"], SECTORS) is True
    assert auth.verify("centre-S1", "new pass word").sectors == ("S1", "S3"), "a changed file is re-read"


@pytest.mark.parametrize("name, password, sectors, message", [
    ("centre-S1", "short", ["S1"], "too short"),
    ("centre-S1", "long enough", ["S9"], r"unknown sector\(s\) S9; known: S1, S2, S3, S4"),
    ("centre-S1", "long enough", [], "at least one sector"),
    ("bad name!", "long enough", ["S1"], "not a valid name"),
    ("x" * 65, "long enough", ["S1"], "not a valid name"),
])
def test_bad_users_are_refused(tmp_path, name, password, sectors, message):
    with pytest.raises(UsersFileError, match=message):
        add_user(tmp_path / "users.toml", name, password, sectors, SECTORS)
    assert not (tmp_path / "users.toml").exists()


@pytest.mark.parametrize("text, chmod, message", [
    ('[users.a]\npassword_hash = "x"\nsectors = ["S1"]\n', 0o644, "readable by others"),
    ("[users.a\n", 0o600, "cannot be read as TOML"),
    ('[users.a]\nsectors = ["S1"]\n', 0o600, "needs password_hash"),
    ('[users.a]\npassword_hash = "x"\nsectors = []\n', 0o600, "needs password_hash"),
    ('[users."a b"]\npassword_hash = "x"\nsectors = ["S1"]\n', 0o600, "not a valid name"),
])
def test_a_bad_users_file_is_named_with_what_is_wrong(tmp_path, text, chmod, message):
    path = tmp_path / "users.toml"
    path.write_text(text)
    path.chmod(chmod)
    with pytest.raises(UsersFileError, match=message) as info:
        load_users(path)
    assert str(path) in str(info.value)


def test_a_missing_users_file_says_how_to_make_one(tmp_path):
    with pytest.raises(UsersFileError, match="console users add"):
        UsersFileAuth(tmp_path / "none.toml")


def test_dev_users_are_made_once_per_centre_with_a_supervisor(tmp_path):
    path = tmp_path / "users.toml"
    made = ensure_dev_users(path, SECTORS)
    assert sorted(made) == ["centre-S1", "centre-S2", "centre-S3", "centre-S4", "supervisor"]
    assert mode_of(path) == 0o600 and mode_of(dev_logins_path(path)) == 0o600
    assert read_dev_logins(path) == made
    auth = UsersFileAuth(path)
    assert auth.verify("centre-S2", made["centre-S2"]).sectors == ("S2",)
    assert auth.verify("supervisor", made["supervisor"]).sectors == tuple(SECTORS)
    before = path.read_bytes()
    assert ensure_dev_users(path, SECTORS) is None and path.read_bytes() == before, "never overwritten"


def test_the_session_key_is_made_private_and_kept(tmp_path):
    path = tmp_path / "k" / "session.key"
    first = session_secret(path)
    assert len(first) == 64 and mode_of(path) == 0o600 and session_secret(path) == first
    path.chmod(0o640)
    with pytest.raises(UsersFileError, match="readable by others"):
        session_secret(path)


def test_the_users_commands(tmp_path, monkeypatch, capsys):
    path = tmp_path / "users.toml"
    monkeypatch.setenv("BORDERFUSE_CONSOLE__USERS_FILE", str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO("a good password\n"))
    assert main(["console", "users", "add", "centre-S1", "--sectors", "S1,S2"]) == 0
    assert "added user centre-S1" in capsys.readouterr().out
    assert UsersFileAuth(path).verify("centre-S1", "a good password").sectors == ("S1", "S2")
    monkeypatch.setattr("sys.stdin", io.StringIO("a good password\n"))
    assert main(["console", "users", "add", "centre-S1", "--sectors", "S9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown sector(s) S9" in err and len(err.splitlines()) == 1
    assert main(["console", "users", "list"]) == 0
    assert capsys.readouterr().out == "centre-S1\tS1,S2\n"
    assert main(["console", "users", "dev"]) == 0
    assert "exists: left as it is" in capsys.readouterr().out
    monkeypatch.setenv("BORDERFUSE_CONSOLE__USERS_FILE", str(tmp_path / "dev" / "users.toml"))
    assert main(["console", "users", "dev"]) == 0
    assert "console-dev-logins.toml" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "dev" / "console-dev-logins.toml")


def test_save_and_load_round_trip(tmp_path):
    users = [User("centre-S1", hash_password("abcdefgh"), ["S1"]), User("sup.er@x", "$argon2id$x", ["S1", "S4"])]
    save_users(tmp_path / "u.toml", users)
    assert list(load_users(tmp_path / "u.toml").values()) == users

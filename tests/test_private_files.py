"""The one meaning of "private" for files holding secrets (credentials, console users, session key)."""
from __future__ import annotations

import stat

import pytest

from borderfuse.ingest.private_files import open_to_others, write_private


@pytest.mark.parametrize("mode, shared", [
    (0o600, False), (0o400, False), (0o700, False),
    (0o640, True), (0o604, True), (0o620, True), (0o602, True), (0o644, True),
])
def test_open_to_others(mode, shared):
    assert open_to_others(stat.S_IFREG | mode) is shared


def test_write_private_is_600_in_a_700_folder_and_replaces_atomically(tmp_path):
    path = tmp_path / "new" / "secret.toml"
    write_private(path, "a = 1\n")
    write_private(path, "a = 2\n")
    assert path.read_text() == "a = 2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["secret.toml"]   # no temporary file left

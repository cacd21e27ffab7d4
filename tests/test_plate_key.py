"""ingest.plate_key: the plate key file (read, made at the default place, refused with one clear line)."""
from __future__ import annotations

import os
import stat

import pytest

from borderfuse.ingest import plate_key
from borderfuse.ingest.cli import main
from borderfuse.ingest.settings import PrivacySettings
from borderfuse.privacy.plates import PlateKeyError

SAMPLE = "/work/shared/scenarios/sample/capture.jsonl.gz"


def _write(path, text, mode=0o600):
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_dev_key_is_made_once_with_mode_600(tmp_path):
    path = tmp_path / "cfg" / "borderfuse" / "plate-key"
    assert plate_key.ensure_dev_plate_key(path) is True
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(plate_key.read_plate_key(path)) == 32
    assert plate_key.ensure_dev_plate_key(path) is False and path.read_text() == first   # never replaced


def test_only_the_default_file_is_made_when_missing(tmp_path, monkeypatch):
    default = tmp_path / "default-key"
    monkeypatch.setattr(plate_key, "DEFAULT_KEY_FILE", default)
    made = plate_key.plate_pseudonymiser(PrivacySettings(plate_key_file=default, plate_key_id="dev1"))
    assert default.is_file() and made.key_id == "dev1"
    elsewhere = tmp_path / "deployment-key"
    with pytest.raises(PlateKeyError, match="does not exist"):
        plate_key.plate_pseudonymiser(PrivacySettings(plate_key_file=elsewhere))
    assert not elsewhere.exists()


@pytest.mark.parametrize("text, mode, fragment", [
    ("ab" * 31, 0o600, "holds 31 bytes, needs at least 32"),
    ("not hex at all", 0o600, "does not hold a hex key"),
    ("", 0o600, "holds 0 bytes"),
    ("ab" * 32, 0o644, "mode 644: others may read it"),
    ("ab" * 32, 0o000, "unreadable"),
])
def test_an_unusable_key_file_is_one_clear_error(tmp_path, text, mode, fragment):
    path = _write(tmp_path / "key", text, mode)
    if mode == 0 and os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file")
    with pytest.raises(PlateKeyError, match=fragment):
        plate_key.read_plate_key(path)


def test_a_key_with_whitespace_and_newlines_is_read(tmp_path):
    path = _write(tmp_path / "key", "  " + "ab" * 16 + "\n" + "cd" * 16 + "\n")
    assert plate_key.read_plate_key(path) == bytes.fromhex("ab" * 16 + "cd" * 16)


@pytest.mark.parametrize("command", [["replay", SAMPLE, "--out", "{tmp}/out.jsonl"], ["decode", SAMPLE]])
@pytest.mark.parametrize("text", ["ab" * 8, None])
def test_commands_exit_2_with_one_line_on_a_bad_key(tmp_path, monkeypatch, capsys, command, text):
    path = tmp_path / "key"
    if text is not None:
        _write(path, text)
    monkeypatch.setenv("BORDERFUSE_PRIVACY__PLATE_KEY_FILE", str(path))
    assert main([c.format(tmp=tmp_path) for c in command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"plate key file {path}" in err[0] and err[0].startswith(f"borderfuse {command[0]}:")

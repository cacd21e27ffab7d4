"""Tracker tapes on disk (whatif.tape_store): `replay --cache` and the what-if runner record a tape once and
replay it under any decision rules with the same output; the key follows the tracker config, the pipeline
settings and the fusion code; a damaged tape is refused and recorded again; a stale one is never read."""
from __future__ import annotations

import gzip
import itertools
import json
import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest

from borderfuse.capture.files import format_record, read_capture
from borderfuse.fusion.rules import DEFAULT_RULES_FILE
from borderfuse.ingest.cli import main
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import load_settings
from borderfuse.whatif import tape_store
from borderfuse.whatif.cache import CacheKey, DecodedCache, ensure_cache
from borderfuse.whatif.runner import run_both, tape_modes
from borderfuse.whatif.tape_store import TapeError, TapeSession, read_tape, tape_directory

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
CHUNK = 2000   # the replay command's and the what-if's batch size


def _head_of_sample(tmp_path_factory, name: str, records: int) -> Path:
    if not SAMPLE.exists():
        pytest.skip("sample scenario not present")
    path = tmp_path_factory.mktemp(name) / "small.jsonl.gz"
    with gzip.open(path, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in itertools.islice(read_capture(SAMPLE), records))
    return path


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    """The sample's first 20000 records (a hotlist hit, a border crossing, merges, late observations)."""
    return _head_of_sample(tmp_path_factory, "capture", 20_000)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """The sample's first 5000 records: enough tracking for the storage tests."""
    return _head_of_sample(tmp_path_factory, "small", 5000)


@pytest.fixture(scope="module")
def recorded(small) -> tuple[Path, Path]:
    """(decoded cache folder, tape folder) of the small capture under the default rules, recorded once."""
    return _recorded(small, load_settings(None))


@pytest.fixture(scope="module")
def rules_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rules")
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    files = {"default": DEFAULT_RULES_FILE}
    for name, old, new in (("no crossings", "[border_crossing]\nenabled = true", "[border_crossing]\nenabled = false"),
                           ("wider gate", "gate_d2 = 13.8155", "gate_d2 = 16.0")):
        assert old in text
        files[name] = folder / f"{name.replace(' ', '_')}.toml"
        files[name].write_text(text.replace(old, new), encoding="utf-8")
    return files


def _replay(capture: Path, out: Path, capsys, *extra: str) -> tuple[bytes, bytes, str]:
    assert main(["replay", str(capture), "--quiet", "--out", str(out), "--tracks", str(out) + ".tracks",
                 *extra]) == 0
    return out.read_bytes(), Path(str(out) + ".tracks").read_bytes(), capsys.readouterr().err


def test_replay_records_the_tape_once_and_replays_it_under_other_rules_byte_for_byte(capture, rules_files, tmp_path,
                                                                                      capsys):
    work = tmp_path / "work"
    work.mkdir()
    local = work / capture.name
    local.write_bytes(capture.read_bytes())
    plain = {name: _replay(local, tmp_path / f"plain-{name}", capsys, "--rules", str(rules_files[name]))
             for name in ("default", "no crossings")}
    assert "tracker tape" not in plain["default"][2]
    assert plain["default"][0] != plain["no crossings"][0] and plain["default"][1]     # the rules matter
    # cold: decoded and tracked, both recorded; warm: neither done again, under either rule set
    cold = _replay(local, tmp_path / "cold", capsys, "--cache")
    assert "tracker tape: wrote" in cold[2]
    for name in ("default", "no crossings"):
        warm = _replay(local, tmp_path / f"warm-{name}", capsys, "--cache", "--rules", str(rules_files[name]))
        assert "tracking skipped" in warm[2]
        assert warm[:2] == plain[name][:2]
    assert cold[:2] == plain["default"][:2]
    assert len(list(work.glob("*.decoded-*/tape-*"))) == 1
    # another [tracker] section is another tape
    _replay(local, tmp_path / "gate", capsys, "--cache", "--rules", str(rules_files["wider gate"]))
    assert len(list(work.glob("*.decoded-*/tape-*"))) == 2


def _pipeline(settings, rules_file=None, **changes) -> Pipeline:
    settings = attrs.evolve(settings, fusion=attrs.evolve(settings.fusion, **changes)) if changes else settings
    return Pipeline.from_settings(settings, rules_file=rules_file)


@pytest.mark.parametrize("change, same_key", [
    (lambda s, r: _pipeline(s, r["no crossings"]), True),      # decision rules do not shape the tracker
    (lambda s, r: _pipeline(s, r["wider gate"]), False),       # the [tracker] section does
    (lambda s, r: _pipeline(s, allowed_lateness_s=20.0), False),
    (lambda s, r: _pipeline(s, duplicate_window_s=30.0), False),
])
def test_the_key_follows_what_shapes_the_tracker(rules_files, tmp_path, change, same_key):
    settings = load_settings(None)
    base = tape_directory(_pipeline(settings), tmp_path)
    assert (tape_directory(change(settings, rules_files), tmp_path) == base) is same_key
    assert tape_directory(_pipeline(settings), tmp_path / "another.decoded-x").name != base.name   # another cache


def _recorded(capture: Path, settings) -> tuple[Path, Path]:
    """(decoded cache folder, tape folder) of the default rules, recorded."""
    cache = ensure_cache(capture, settings, chunk=CHUNK, log=lambda m: None)
    pipeline = _pipeline(settings)
    session = TapeSession(pipeline, cache.directory)
    if session.mode == "record":
        for batch in DecodedCache(cache.directory, pipeline.plates).batches():
            pipeline.process_decoded(batch)
        pipeline.flush()
        session.finish(flushed=True)
    return cache.directory, session.directory


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda d: _flip_byte(d / "row_x.npy"), "row_x.npy is damaged"),
    (lambda d: _flip_byte(d / "calls.npy"), "calls.npy is damaged"),
    (lambda d: (d / "row_P.npy").write_bytes((d / "row_P.npy").read_bytes()[:-1000]), "cannot be read"),
    (lambda d: (d / "merge_pairs.npy").unlink(), "cannot be read"),
    (lambda d: (d / "meta.json").write_text("{", encoding="utf-8"), "cannot be read"),
])
def test_a_damaged_tape_is_refused_and_recorded_again(recorded, tmp_path, damage, message):
    settings = load_settings(None)
    decoded = tmp_path / recorded[0].name
    shutil.copytree(recorded[0], decoded)
    tape_dir = decoded / recorded[1].name
    pipeline = _pipeline(settings)
    parts = tape_store.key_parts(pipeline, decoded)
    read_tape(tape_dir, parts)                        # intact: read
    damage(tape_dir)
    with pytest.raises(TapeError, match=message):
        read_tape(tape_dir, parts)
    said = []
    session = TapeSession(pipeline, decoded, log=said.append)
    assert session.mode == "record"
    assert len(said) == 1 and message in said[0] and said[0].endswith("recording the tape again")


def test_a_stale_tape_is_never_read_and_is_removed_when_a_new_one_is_written(small, tmp_path, monkeypatch):
    settings = load_settings(None)
    local = tmp_path / small.name
    local.write_bytes(small.read_bytes())
    monkeypatch.setattr(tape_store, "source_fingerprint", lambda: "0" * 64)   # the tape of older fusion code
    decoded, stale = _recorded(local, settings)
    assert stale.is_dir()
    monkeypatch.undo()
    pipeline = _pipeline(settings)
    assert TapeSession(pipeline, decoded).mode == "record" and tape_directory(pipeline, decoded) != stale
    # even a tape copied under the current key's name is refused: its recorded key parts are another code's
    current = tape_directory(pipeline, decoded)
    stale.rename(current)
    with pytest.raises(TapeError, match="another key"):
        read_tape(current, tape_store.key_parts(pipeline, decoded))
    current.rename(stale)
    _, fresh = _recorded(local, settings)
    assert fresh == current and fresh.is_dir() and not stale.exists()


def test_the_what_if_sides_share_one_tape_and_a_changed_tracker_records_its_own(capture, rules_files, tmp_path):
    settings = load_settings(None)
    local = tmp_path / capture.name
    local.write_bytes(capture.read_bytes())
    cache = ensure_cache(local, settings, chunk=CHUNK, log=lambda m: None)
    rules = {"a": rules_files["default"], "b": rules_files["no crossings"], "c": rules_files["wider gate"]}
    run = lambda sides, tape: run_both(cache.directory, {k: rules[k] for k in sides}, settings,  # noqa: E731
                                       jobs=1, total_records=cache.records, quiet=True, tape=tape)
    tracked, first, second = run("ab", False), run("ab", True), run("ab", True)
    assert {k: r.tape for k, r in tracked.items()} == {"a": "off", "b": "off"}
    assert {k: r.tape for k, r in first.items()} == {"a": "record", "b": "read"}    # b reads what a recorded
    assert {k: r.tape for k, r in second.items()} == {"a": "read", "b": "read"}
    for side in "ab":
        assert first[side].incident_lines == second[side].incident_lines == tracked[side].incident_lines
        assert first[side].stats == second[side].stats == tracked[side].stats
    assert tracked["a"].incident_lines != tracked["b"].incident_lines   # the rules matter, the tape follows them
    assert tape_modes(rules) == {"a": "record", "b": "read", "c": "record"}   # another [tracker]: its own tape
    assert len(list(cache.directory.glob("tape-*"))) == 1


def test_a_tape_of_another_capture_fails_the_run_with_one_clear_line(small, tmp_path, capsys):
    """A tape that passes its checks but was recorded from other input (here: planted under this capture's key)
    stops the replay at the first call that differs, naming the tape and what to do."""
    settings = load_settings(None)
    other = tmp_path / "other" / small.name
    other.parent.mkdir()
    with gzip.open(other, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in itertools.islice(read_capture(SAMPLE), 1000, 4000))
    _, other_tape = _recorded(other, settings)
    local = tmp_path / small.name
    local.write_bytes(small.read_bytes())
    decoded = ensure_cache(local, settings, chunk=CHUNK, log=lambda m: None).directory
    pipeline = _pipeline(settings)
    planted = tape_directory(pipeline, decoded)
    other_tape.rename(planted)
    meta = json.loads((planted / "meta.json").read_text())
    meta["parts"] = tape_store.key_parts(pipeline, decoded)
    (planted / "meta.json").write_text(json.dumps(meta))
    assert main(["replay", str(local), "--quiet", "--cache", "--out", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("borderfuse replay: tracker tape ") and "delete the tape to record it again" in err
    assert CacheKey.of(local, settings, CHUNK).directory() == decoded and np.load(planted / "calls.npy").size

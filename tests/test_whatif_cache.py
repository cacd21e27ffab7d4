"""The decoded-observation cache: what it gives back equals decoding again, `replay --cache` output is
byte-identical to a plain replay, the key follows the capture's content, a damaged cache is rebuilt and a
read-only folder is left alone."""
from __future__ import annotations

import gzip
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from borderfuse.capture.files import format_record, read_capture
from borderfuse.fusion.engine import HotlistItem
from borderfuse.ingest.cli import main
from borderfuse.ingest.pipeline import Pipeline
from borderfuse.ingest.settings import load_settings
from borderfuse.sensors.base import RawRecord
from borderfuse.ingest.plate_key import plate_pseudonymiser
from borderfuse.whatif.cache import CacheKey, DecodedCache, decoded_batches

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
needs_sample = pytest.mark.skipif(not SAMPLE.exists(), reason="sample scenario not present")
CHUNK = 500
OBS_FIELDS = ("time_us", "side", "sensor_id", "sensor_kind", "cls", "confidence", "local_id", "status", "plate",
              "country", "direction", "topic", "partition", "offset")


def _bad_records(offset: int) -> list[RawRecord]:
    """Dead letters of three kinds, so the cache must keep them (and their order) too."""
    return [RawRecord("de.radar.tracks", 0, offset, 1_795_298_400_000, b"k", None),               # empty value
            RawRecord("pl.radar.plots", 0, offset + 1, 1_795_298_400_000, b"k", b"\x01nonsense"),  # bad framing
            RawRecord("no.such.topic", 0, 0, 1_795_298_400_000, None, b"{}")]                     # unknown topic


@pytest.fixture(scope="module")
def small_capture(tmp_path_factory) -> Path:
    """The sample's first 3000 records (hotlist included) with dead letters in the middle."""
    if not SAMPLE.exists():
        pytest.skip("sample scenario not present")
    path = tmp_path_factory.mktemp("capture") / "small.jsonl.gz"
    records = list(itertools.islice(read_capture(SAMPLE), 3000))
    records[1500:1500] = _bad_records(10**6)
    with gzip.open(path, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in records)
    return path


def _pipeline(settings) -> Pipeline:
    return Pipeline.from_settings(settings)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return a == b and type(a) is type(b)


@needs_sample
def test_cached_batches_equal_decoding_again(small_capture, tmp_path):
    settings = load_settings(None)
    fresh = list(decoded_batches(small_capture, _pipeline(settings), settings, chunk=CHUNK, cache_dir=tmp_path,
                                 log=lambda m: None))
    key = CacheKey.of(small_capture, settings, CHUNK)
    cached = list(DecodedCache(key.directory(tmp_path), plate_pseudonymiser(settings)).batches())
    assert len(fresh) == len(cached) == 7
    assert sum(len(b.dead_letters) for b in cached) >= 3
    assert any(isinstance(item, HotlistItem) for b in cached for _, _, item in b.entries)
    for f, c in zip(fresh, cached):
        assert (f.records, f.topic_counts, f.duplicate_counts) == (c.records, c.topic_counts, c.duplicate_counts)
        assert [(ms, key) for ms, key, _ in f.entries] == [(ms, key) for ms, key, _ in c.entries]
        for (_, _, a), (_, _, b) in zip(f.entries, c.entries):
            assert type(a) is type(b)
            if isinstance(a, HotlistItem):
                assert a == b
                continue
            for name in OBS_FIELDS + ("xy", "cov", "velocity"):
                assert _same(getattr(a, name), getattr(b, name)), name
            assert not b.xy.flags.writeable
        assert [(r, e.kind, e.reason, str(e)) for r, e in f.dead_letters] == \
            [(r, e.kind, e.reason, str(e)) for r, e in c.dead_letters]


@needs_sample
@pytest.mark.slow
def test_replay_with_the_cache_is_byte_identical_cold_and_warm(small_capture, tmp_path):
    def replay(name: str, *extra: str) -> list[bytes]:
        files = [tmp_path / f"{name}.{k}.jsonl" for k in ("out", "dlq", "tracks")]
        assert main(["replay", str(small_capture), "--quiet", "--out", str(files[0]), "--dlq", str(files[1]),
                     "--tracks", str(files[2]), *extra]) == 0
        return [f.read_bytes() for f in files]

    plain = replay("plain")
    assert plain[1] and plain[2]   # dead letters and track updates (the first minute raises no incident)
    caches = lambda: sorted(small_capture.parent.glob(small_capture.name + ".decoded-*"))  # noqa: E731
    for f in caches():
        shutil.rmtree(f)
    assert replay("cold", "--cache") == plain
    assert len(caches()) == 1
    assert replay("warm", "--cache") == plain


@needs_sample
def test_the_key_follows_the_capture_content_and_a_new_key_replaces_the_old_cache(small_capture, tmp_path):
    settings = load_settings(None)
    copy = tmp_path / "copy.jsonl.gz"
    copy.write_bytes(small_capture.read_bytes())
    first = CacheKey.of(copy, settings, CHUNK)
    for _ in decoded_batches(copy, _pipeline(settings), settings, chunk=CHUNK, log=lambda m: None):
        pass
    assert first.directory().is_dir() and first.directory().parent == tmp_path
    records = list(read_capture(copy))[:-1]
    with gzip.open(copy, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in records)
    second = CacheKey.of(copy, settings, CHUNK)
    assert second.digest != first.digest
    assert CacheKey.of(copy, settings, CHUNK + 1).digest != second.digest
    for _ in decoded_batches(copy, _pipeline(settings), settings, chunk=CHUNK, log=lambda m: None):
        pass
    assert sorted(p.name for p in tmp_path.glob("copy.jsonl.gz.decoded-*")) == [second.directory().name]
    assert json.loads((second.directory() / "meta.json").read_text())["records"] == len(records)


@needs_sample
@pytest.mark.parametrize("damage", ["delete_column", "truncate_batches"])
def test_a_damaged_cache_is_decoded_again(small_capture, tmp_path, damage):
    settings = load_settings(None)
    run = lambda log: [b.records for b in decoded_batches(small_capture, _pipeline(settings), settings,  # noqa: E731
                                                          chunk=CHUNK, cache_dir=tmp_path, log=log)]
    expected = run(lambda m: None)
    directory = CacheKey.of(small_capture, settings, CHUNK).directory(tmp_path)
    if damage == "delete_column":
        (directory / "time_us.npy").unlink()
    else:
        (directory / "batches.json").write_text("[]")
    messages = []
    assert run(messages.append) == expected
    assert any("decoding the capture again" in m for m in messages), messages
    again: list[str] = []
    run(again.append)
    assert any("decoding skipped" in m for m in again), again      # rebuilt, then used


@needs_sample
def test_a_read_only_capture_folder_is_left_alone(small_capture, tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    capture = folder / "c.jsonl.gz"
    capture.write_bytes(small_capture.read_bytes())
    folder.chmod(0o555)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    try:
        directory = CacheKey.of(capture, load_settings(None), CHUNK).directory()
    finally:
        folder.chmod(0o755)
    assert directory.parent == tmp_path / "home" / ".cache" / "borderfuse" / "decoded"


@needs_sample
def test_the_cache_holds_pseudonyms_and_another_plate_key_is_another_cache(tmp_path):
    import attrs

    from borderfuse.geo.geography import Geography
    from borderfuse.ingest.settings import PrivacySettings
    from borderfuse.privacy.plates import is_pseudonym
    from borderfuse.sensors.decode import RecordDecoder
    from borderfuse.whatif.cache_read import CacheError

    settings = load_settings(None)
    small_capture = tmp_path / "anpr.jsonl.gz"      # ANPR reads and hotlist records of the sample
    records = itertools.islice((r for r in read_capture(SAMPLE) if r.topic.endswith((".anpr.reads", "hotlist"))), 400)
    with gzip.open(small_capture, "wt", encoding="ascii") as f:
        f.writelines(format_record(r) + "\n" for r in records)
    for _ in decoded_batches(small_capture, _pipeline(settings), settings, chunk=CHUNK, cache_dir=tmp_path,
                             log=lambda m: None):
        pass
    key = CacheKey.of(small_capture, settings, CHUNK)
    strings = set(np.load(key.directory(tmp_path) / "strings.npy", allow_pickle=False).tolist())
    clear_decoder = RecordDecoder(Geography.load(settings.icd.geo_dir), settings.icd.schemas_dir)
    clear = {o.plate for o in clear_decoder.decode_batch(
        [r for r in read_capture(small_capture) if r.topic.endswith(".anpr.reads")])[0]}
    assert clear and not clear & strings
    assert {plate_pseudonymiser(settings).pseudonym(p) for p in clear} <= {s for s in strings if is_pseudonym(s)}
    other_file = tmp_path / "other-key"
    other_file.write_text("ab" * 32)
    other_file.chmod(0o600)
    rotated = attrs.evolve(settings, privacy=PrivacySettings(plate_key_file=other_file, plate_key_id="k2"))
    assert CacheKey.of(small_capture, rotated, CHUNK).digest != key.digest
    with pytest.raises(CacheError, match="another plate key"):
        DecodedCache(key.directory(tmp_path), plate_pseudonymiser(rotated))

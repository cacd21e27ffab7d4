"""Fuzz: random and mutated records through every decoder; nothing but DecodeError may escape.

A seeded mutation loop over valid records of every feed and schema version (plus the sample
capture's records when present): bit flips, byte inserts/deletes, truncation, splices, random
bytes, Avro double fields set to NaN/inf/huge, JSON values swapped for hostile tokens, values
sent to the wrong topic, random broker timestamps. Half go through `decode_batch`, half through
`decode`; hotlist records through `decode_hotlist`.
"""
import json
import os
import random
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from borderfuse.geo.geography import Geography
from borderfuse.sensors.base import DecodeError, Observation, RawRecord
from borderfuse.sensors.decode import RecordDecoder
from borderfuse.sensors.hotlist import HotlistUpdate, decode_hotlist
from sensor_records import GEO_DIR, SCHEMAS_DIR, T0_MS, valid_records

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "scenarios" / "sample" / "capture.jsonl.gz"
TOTAL = 120_000
SEED = int(os.environ.get("FUZZ_SEED", "20261121"))  # another seed: FUZZ_SEED=n pytest ...
HOSTILE = [b"NaN", b"-Infinity", b"1e999", b"-1", b"0", b"361", b"null", b"true", b'""', b'"   "', b"[]", b"{}",
           b'"' + b"x" * 300 + b'"', b"9" * 400, b'"2026-02-30T25:61:00+01:00"', b'"\\ud800"', b"-0.0", b"1e-320"]
AVRO_DOUBLES = [struct.pack("<d", x) for x in (float("nan"), float("inf"), -1.0, 0.0, 1e308, -1e-300, 400.0)]
JSON_VALUE = re.compile(rb'(?<=: )("[^"]*"|-?[0-9.eE+-]+|true|false|null)')


def _seed_records():
    records = list(valid_records().values())
    records.append(RawRecord("shared.hotlist", 0, 0, T0_MS, b"PL:LU14958",
                             json.dumps({"plate": "LU 14958", "country": "PL", "reason": "r", "list": "SIS",
                                         "added": "2026-11-20T23:00:00.000+01:00"}).encode()))
    if SAMPLE.exists():
        from borderfuse.capture.files import CaptureReader
        rng = random.Random(SEED)
        sample = list(CaptureReader(SAMPLE))
        records += rng.sample(sample, 3000) + [r for r in sample if r.topic in ("shared.hotlist", "pl.anpr.reads",
                                                                                "de.anpr.reads")]
    return records


def _mutate(rng: random.Random, record: RawRecord, pool: list[RawRecord], topics: list[str]) -> RawRecord:
    value = bytearray(record.value or b"")
    topic, key, ts = record.topic, record.key, record.timestamp_ms
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(11)
        if op == 0 and value:                                    # bit flip
            i = rng.randrange(len(value))
            value[i] ^= 1 << rng.randrange(8)
        elif op == 1:                                            # insert random bytes
            i = rng.randrange(len(value) + 1)
            value[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and value:                                  # delete a run
            i = rng.randrange(len(value))
            del value[i:i + rng.randint(1, 8)]
        elif op == 3:                                            # truncate
            value = value[:rng.randrange(len(value) + 1)]
        elif op == 4:                                            # splice with another record
            other = rng.choice(pool).value or b""
            cut, cut2 = rng.randrange(len(value) + 1), rng.randrange(len(other) + 1)
            value = value[:cut] + bytearray(other[cut2:])
        elif op == 5:                                            # random bytes
            value = bytearray(rng.randbytes(rng.randint(0, 64)))
        elif op == 6 and len(value) > 13:                        # an 8-byte run (Avro double) → NaN/inf/...
            i = rng.randrange(5, len(value) - 7)
            value[i:i + 8] = rng.choice(AVRO_DOUBLES)
        elif op == 7:                                            # a JSON value → a hostile token
            matches = list(JSON_VALUE.finditer(bytes(value)))
            if matches:
                m = rng.choice(matches)
                value[m.start():m.end()] = rng.choice(HOSTILE)
        elif op == 8:                                            # wrong topic
            topic = rng.choice(topics)
        elif op == 9:                                            # odd broker time
            ts = rng.choice((0, -1, T0_MS + rng.randint(-10 ** 9, 10 ** 9), 2 ** 62))
        elif op == 10:                                           # key / value null
            if rng.random() < 0.5:
                key = None
            else:
                value = None
                break
    return RawRecord(topic, record.partition, record.offset, ts, key, None if value is None else bytes(value))


def _check_observation(obs: Observation) -> None:
    assert np.all(np.isfinite(obs.xy)) and np.all(np.isfinite(obs.cov))
    assert obs.confidence is None or 0.0 <= obs.confidence <= 1.0


@pytest.mark.slow
def test_fuzz_only_decode_errors_escape():
    rng = random.Random(SEED)
    decoder = RecordDecoder(Geography.load(GEO_DIR), SCHEMAS_DIR)
    pool = _seed_records()
    topics = sorted({r.topic for r in pool}) + ["unknown.topic"]
    started = time.perf_counter()
    counts = {"records": 0, "observations": 0, "dead": 0, "hotlist": 0}
    kinds = set()
    batch = []
    def flush():
        observations, dead = decoder.decode_batch(batch)
        for obs in observations:
            _check_observation(obs)
        assert len(observations) + len(dead) == len(batch)
        counts["observations"] += len(observations)
        counts["dead"] += len(dead)
        kinds.update(e.kind for _, e in dead)
        batch.clear()

    while counts["records"] < TOTAL:
        record = rng.choice(pool)
        mutant = _mutate(rng, record, pool, topics) if rng.random() < 0.97 else record
        counts["records"] += 1
        if mutant.topic == "shared.hotlist":
            try:
                assert isinstance(decode_hotlist(mutant), HotlistUpdate)
                counts["hotlist"] += 1
            except DecodeError as exc:
                counts["dead"] += 1
                kinds.add(exc.kind)
        elif rng.random() < 0.5:
            try:
                for obs in decoder.decode(mutant):
                    _check_observation(obs)
                    counts["observations"] += 1
            except DecodeError as exc:
                assert exc.topic == mutant.topic and exc.reason
                counts["dead"] += 1
                kinds.add(exc.kind)
        else:
            batch.append(mutant)
            if len(batch) == 500:
                flush()
    flush()
    elapsed = time.perf_counter() - started
    print(f"fuzz: {counts} in {elapsed:.1f} s; error kinds {sorted(kinds)}")
    assert counts["records"] >= 100_000
    # the mutations reach deep: most error kinds occur, and some mutants still decode
    assert {"malformed", "bad_framing", "impossible_value", "out_of_range", "unknown_schema",
            "bad_timestamp", "empty_value", "unknown_topic"} <= kinds
    assert counts["observations"] > 1000

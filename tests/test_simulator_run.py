"""Simulated captures: deterministic per seed, in the ICD capture format and arrival order, with the
requested malformed records (and only those rejected by the decoder), and a ground truth that
follows the ICD rules on the targets' true paths."""
from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from borderfuse.geo.geography import Geography
from borderfuse.capture.files import read_capture
from borderfuse.ingest.cli import main
from borderfuse.ingest.settings import DEFAULT_GEO_DIR, DEFAULT_SCHEMAS_DIR
from borderfuse.simulator import ScenarioConfig, SimulatorError, parse_mix, write_capture
from borderfuse.simulator.engine import TOPICS, Simulation
from borderfuse.simulator.scenario import MALFORMED_KINDS
from borderfuse.simulator.world import LOITER_DWELL_S

SMALL = ScenarioConfig(seed=11, minutes=3.0, targets=12, malformed_per_min=5.0)


@pytest.fixture(scope="module")
def small_capture(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = write_capture(out / "c.jsonl", SMALL, out / "truth.json")
    return out / "c.jsonl", out / "truth.json", summary


@pytest.fixture(scope="module")
def geo() -> Geography:
    return Geography.load(DEFAULT_GEO_DIR)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, small_capture):
    path, _, _ = small_capture
    write_capture(tmp_path / "again.jsonl", SMALL)
    write_capture(tmp_path / "other.jsonl", ScenarioConfig(seed=12, minutes=3.0, targets=12, malformed_per_min=5.0))
    assert (tmp_path / "again.jsonl").read_bytes() == path.read_bytes()
    assert (tmp_path / "other.jsonl").read_bytes() != path.read_bytes()


def test_capture_is_in_arrival_order_with_per_topic_offsets(small_capture):
    path, _, summary = small_capture
    records = list(read_capture(path))
    assert len(records) == summary.records
    stamps = [r.timestamp_ms for r in records]
    assert stamps == sorted(stamps)
    by_topic = {}
    for r in records:
        by_topic.setdefault(r.topic, []).append(r.offset)
    assert set(by_topic) <= set(TOPICS) and {"pl.radar.plots", "de.radar.tracks", "shared.hotlist"} <= set(by_topic)
    for offsets in by_topic.values():
        assert offsets == list(range(len(offsets)))
    assert summary.per_topic == {t: len(by_topic.get(t, [])) for t in TOPICS}


def test_delivery_delays_duplicates_and_lateness_match_the_icd(tmp_path):
    summary = write_capture(tmp_path / "d.jsonl", ScenarioConfig(seed=5, minutes=5.0, targets=20,
                                                                 malformed_per_min=0.0))
    delays = {"pl": [], "de": []}
    seen = Counter()
    for r in read_capture(tmp_path / "d.jsonl"):
        seen[(r.topic, r.value)] += 1
        if r.topic == "shared.hotlist" or seen[(r.topic, r.value)] > 1:
            continue
        if r.topic.startswith("pl."):
            continue  # Avro: event time checked through the DE side below and in the decoder test
        doc = json.loads(r.value)
        event = datetime.fromisoformat(doc["ts"]).timestamp()
        delays["de"].append(r.timestamp_ms / 1000 - event)
    de = np.array(delays["de"])
    assert de.min() >= 0.3 - 1e-3 and de.max() <= 10.0 + 1e-3
    assert np.mean(de <= 2.5) == pytest.approx(0.99, abs=0.005)
    dup_rate = sum(n - 1 for n in seen.values()) / summary.records
    assert dup_rate == pytest.approx(0.005, abs=0.002)


@pytest.mark.parametrize("kinds", [("nan", "swapped_axes"), ("truncated_avro",), MALFORMED_KINDS])
def test_malformed_injection_produces_the_requested_kinds(tmp_path, kinds):
    config = ScenarioConfig(seed=3, minutes=2.0, targets=6, malformed_per_min=len(kinds) * 2.0,
                            malformed_kinds=kinds)
    summary = write_capture(tmp_path / "m.jsonl", config)
    got = Counter(m["kind"] for m in summary.malformed)
    assert got == Counter({k: 4 for k in kinds})
    assert all(m["topic"] in TOPICS for m in summary.malformed)


def test_decoder_rejects_exactly_the_injected_malformed_records(small_capture, geo):
    decode = pytest.importorskip("borderfuse.sensors.decode")
    path, truth_path, _ = small_capture
    truth = json.loads(truth_path.read_text())
    decoder = decode.RecordDecoder(geo, DEFAULT_SCHEMAS_DIR)
    records = [r for r in read_capture(path) if r.topic != "shared.hotlist"]
    observations, dead = decoder.decode_batch(records)
    injected = {(m["topic"], m["offset"]) for m in truth["malformed"]}
    assert len(injected) == 15 and {m["kind"] for m in truth["malformed"]} == set(MALFORMED_KINDS)
    assert {(r.topic, r.offset) for r, _ in dead} == injected
    assert len(observations) == len(records) - len(injected)


def test_hotlist_records_are_keyed_by_country_and_normalised_plate(small_capture):
    path, _, _ = small_capture
    entries = [r for r in read_capture(path) if r.topic == "shared.hotlist"]
    assert len(entries) >= SMALL.hotlist_decoys
    for r in entries:
        doc = json.loads(r.value)
        assert set(doc) == {"plate", "country", "reason", "list", "added"}
        assert r.key.decode() == doc["country"] + ":" + "".join(c for c in doc["plate"] if c.isalnum()).upper()


def test_truth_follows_the_icd_rules_on_the_true_paths(geo):
    config = ScenarioConfig(seed=21, minutes=20.0, targets=30, hotlist_fraction=0.5)
    sim = Simulation(config, 1_795_298_400_000_000)
    while not sim.done:
        sim.step()
    from borderfuse.simulator.truth import build_truth
    truth = build_truth(sim.geo, sim.world.targets, sim.anpr_reads, sim.hotlist, sim.t0_us, sim.duration, 21)
    by_id = {t.id: t for t in sim.world.targets}
    types = Counter(i["type"] for i in truth["incidents"])
    assert set(types) == {"border_crossing", "drone_crossing", "hotlist_vehicle", "loitering"}
    for inc in truth["incidents"]:
        tg = by_id[inc["target"]]
        t = (datetime.fromisoformat(inc["time"].replace("Z", "+00:00")).timestamp() * 1e6 - sim.t0_us) / 1e6
        assert 0 <= t < sim.duration
        x, y = geo.to_shared(np.array([inc["lon"]]), np.array([inc["lat"]]))
        assert geo.sector_of(x, y)[0] == inc["sector"]
        if inc["type"] in ("border_crossing", "drone_crossing"):
            assert geo.distance_to_border(x, y)[0] < 0.01  # on the line
            px, py = tg.position(t)
            assert np.hypot(px - x[0], py - y[0]) < 0.01  # where the true path is at that time
            assert tg.cls == "drone" if inc["type"] == "drone_crossing" else tg.cls == "person"
            if inc["type"] == "border_crossing":
                assert not geo.in_crossing_point(x, y)
        elif inc["type"] == "loitering":
            assert t == pytest.approx(tg.t_start + LOITER_DWELL_S, abs=1e-5)
            samples = np.linspace(tg.t_start, t, 301)
            sx, sy = tg.position(samples)
            assert geo.distance_to_border(sx, sy).max() <= 300.0
            assert np.hypot(sx - sx.mean(), sy - sy.mean()).max() <= 150.0
        else:
            reads = [r for r in sim.anpr_reads if r["target"] == tg.id]
            assert tg.hotlisted and t == pytest.approx(min(r["time"] for r in reads if r["nat"]), abs=1e-5)
    negative_kinds = {n["kind"] for n in truth["negatives"]}
    assert {"vehicle crossing at a crossing point", "animal crossing"} <= negative_kinds
    assert all(n["at_crossing_point"] for n in truth["negatives"] if "at a crossing point" in n["kind"])


def test_truth_file_scores_perfectly_against_itself(tmp_path, shared_dir):
    import importlib.util
    spec = importlib.util.spec_from_file_location("score_incidents", shared_dir / "tools" / "score_incidents.py")
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    write_capture(tmp_path / "c.jsonl", ScenarioConfig(seed=4, minutes=10.0, targets=20), tmp_path / "truth.json")
    truth = json.loads((tmp_path / "truth.json").read_text())
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"incident_id": str(i), **inc}) + "\n" for i, inc in enumerate(truth["incidents"])))
    loaded, bad, _withdrawn = scorer.load_predictions(preds)
    result = scorer.score(truth, loaded)
    assert bad == 0 and truth["incidents"] and result["f1"] == 1.0


def test_cli_writes_capture_and_truth(tmp_path):
    out, truth = tmp_path / "cli.jsonl.gz", tmp_path / "truth.json"
    assert main(["simulate", "--out", str(out), "--truth", str(truth), "--minutes", "1", "--targets", "5",
                 "--seed", "2", "--mix", "crossing=1,vehicle=1"]) == 0
    records = list(read_capture(out))
    assert records and base64.b64encode(records[0].value or b"")
    assert json.loads(truth.read_text())["counts"]["pl.radar.plots"] > 0


@pytest.mark.parametrize("text,error", [("crossing", "not KIND=WEIGHT"), ("ufo=1", "unknown target kind"),
                                        ("crossing=x", "not a number"), ("crossing=0", "not all zero")])
def test_bad_mix_is_reported(text, error):
    with pytest.raises(SimulatorError, match=error):
        parse_mix(text)


def test_capture_needs_a_duration(tmp_path):
    with pytest.raises(SimulatorError, match="finite duration"):
        write_capture(tmp_path / "x.jsonl", ScenarioConfig(minutes=None))

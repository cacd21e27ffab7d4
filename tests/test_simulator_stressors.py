"""Hard nights (`borderfuse simulate --hard`): the stressors of the agencies' hard night, their
incidents, negatives, stressor tags and outages in the truth, silent sensors in the feeds, and
determinism; the ordinary nights are untouched."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from borderfuse.capture.files import read_capture
from borderfuse.ingest.cli import main
from borderfuse.simulator import ScenarioConfig, write_capture
from borderfuse.simulator.dwell import dwell_hits
from borderfuse.simulator.engine import TOPICS, Batch, Simulation
from borderfuse.simulator.truth import build_truth

T0_US = 1_795_298_400_000_000
STRESSORS = ("turn_back", "walker_near_border", "group_crossing", "offroad_vehicle", "drone_hover_cross",
             "drone_along_border", "animal_dwell", "cross_and_back", "sensor_outage", "simultaneous_pair",
             "crowd", "crowd_near_line")


@pytest.fixture(scope="module")
def night():
    """A 20-minute hard night (the whole stressor programme fits in it), its records and truth."""
    sim = Simulation(ScenarioConfig(seed=31, minutes=20.0, hard=True, malformed_per_min=0.0), T0_US)
    batches = []
    while not sim.done:
        batches.append(sim.step())
    truth = build_truth(sim.geo, sim.world.targets, sim.anpr_reads, sim.hotlist, sim.t0_us, sim.duration, 31,
                        outages=sim.world.program.outages, hard=True)
    return sim, Batch.concat(batches), truth


def _t(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - T0_US / 1e6


def test_every_stressor_has_targets_tagged_with_it(night):
    _, _, truth = night
    tags = Counter(t.get("stressor") for t in truth["targets"])
    assert set(STRESSORS) <= set(tags)
    assert tags["walker_near_border"] == 6 and tags["turn_back"] == 3 and 3 <= tags["group_crossing"] <= 4
    assert tags["crowd"] + tags["crowd_near_line"] >= 30


# stressor -> (incident type, how many incidents it raises in the programme)
EXPECTED_INCIDENTS = [
    ("turn_back", "loitering", 3),
    ("group_crossing", "border_crossing", 1),
    ("offroad_vehicle", "border_crossing", 1),
    ("drone_hover_cross", "drone_crossing", 1),
    ("cross_and_back", "border_crossing", 2),
    ("simultaneous_pair", "border_crossing", 2),
    ("sensor_outage", "border_crossing", 2),
    ("walker_near_border", None, 0),
    ("drone_along_border", None, 0),
    ("animal_dwell", None, 0),
    ("crowd_near_line", None, 0),
    ("crowd", None, 0),
]


@pytest.mark.parametrize("stressor,kind,count", EXPECTED_INCIDENTS, ids=[e[0] for e in EXPECTED_INCIDENTS])
def test_each_stressor_raises_what_the_icd_says(night, stressor, kind, count):
    _, _, truth = night
    mine = [i for i in truth["incidents"] if i.get("stressor") == stressor]
    assert len(mine) == count
    assert all(i["type"] == kind for i in mine)


# negative kind -> the stressor whose targets it belongs to
NEGATIVES = [("turn_back", "turn_back"), ("walker_near_border", "walker_near_border"),
             ("group_member", "group_crossing"), ("drone_hover", "drone_hover_cross"),
             ("drone_along_border", "drone_along_border"), ("animal_dwell", "animal_dwell"),
             ("crowd_near_line", "crowd_near_line")]


@pytest.mark.parametrize("kind,stressor", NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_negatives_of_each_kind_follow_their_targets(night, kind, stressor):
    sim, _, truth = night
    by_id = {t.id: t for t in sim.world.targets}
    negs = [n for n in truth["negatives"] if n["kind"] == kind]
    assert len(negs) >= 3
    for n in negs:
        assert set(n) == {"kind", "target", "stressor", "lon", "lat", "sector", "time"} and n["stressor"] == stressor
        x, y = sim.geo.to_shared(np.array([n["lon"]]), np.array([n["lat"]]))
        px, py = by_id[n["target"]].position(_t(n["time"]))
        assert np.hypot(px - x[0], py - y[0]) < 0.01
        assert sim.geo.sector_of(x, y)[0] == n["sector"]


def test_crowds_keep_to_their_bands_and_never_cross(night):
    sim, _, truth = night
    crowd = [t for t in sim.world.targets if t.stressor in ("crowd", "crowd_near_line")]
    for t in crowd:
        d = sim.geo.distance_to_border(t.xw, t.yw)
        assert not t.crossings
        assert (150.0 <= d.min() and d.max() <= 600.0) if t.stressor == "crowd_near_line" else d.min() >= 600.0
    near = [n for n in truth["negatives"] if n["kind"] == "crowd_near_line"]
    x, y = sim.geo.to_shared(np.array([n["lon"] for n in near]), np.array([n["lat"] for n in near]))
    d = sim.geo.distance_to_border(x, y)
    assert d.min() >= 150.0 and d.max() <= 600.0


def test_a_group_is_one_incident_naming_its_members(night):
    _, _, truth = night
    (incident,) = [i for i in truth["incidents"] if i.get("stressor") == "group_crossing"]
    members = {t["id"] for t in truth["targets"] if t.get("stressor") == "group_crossing"}
    assert set(incident["group"]) == members and incident["target"] == incident["group"][0]
    assert {n["target"] for n in truth["negatives"] if n["kind"] == "group_member"} == members


def test_cross_and_back_crosses_twice_at_least_ten_minutes_apart(night):
    _, _, truth = night
    times = sorted(_t(i["time"]) for i in truth["incidents"] if i.get("stressor") == "cross_and_back")
    assert len(times) == 2 and times[1] - times[0] >= 600.0


def test_turn_backs_come_close_to_the_line_and_loiter_while_in_the_zone(night):
    sim, _, truth = night
    by_id = {t.id: t for t in sim.world.targets}
    for inc in [i for i in truth["incidents"] if i.get("stressor") == "turn_back"]:
        tg = by_id[inc["target"]]
        d = sim.geo.distance_to_border(tg.xw, tg.yw)
        assert 25.0 <= d.min() <= 100.0 and not tg.crossings
        t = _t(inc["time"])
        sx, sy = tg.position(np.linspace(t - 300.0, t, 151))
        assert sim.geo.distance_to_border(sx, sy).max() <= 300.0
        cx, cy = 0.5 * (sx.min() + sx.max()), 0.5 * (sy.min() + sy.max())
        assert np.hypot(sx - cx, sy - cy).max() <= 150.0


def test_silent_sensors_send_nothing_during_their_outage_and_the_truth_lists_it(night):
    sim, batch, truth = night
    outages = truth["outages"]
    assert len(outages) == 2
    assert {sim.geo.sensors[o["sensor"]].kind for o in outages} == {"radar", "camera"}
    assert {sim.geo.sensors[o["sensor"]].side for o in outages} == {"PL", "DE"}
    keys = np.array([k.decode() for k in batch.key], dtype=object)
    for o in outages:
        a, b = _t(o["time_from"]), _t(o["time_to"])
        assert 300.0 <= b - a <= 480.0
        mine = batch.event[keys == o["sensor"]]
        assert not ((mine >= a) & (mine < b)).any()
        assert (mine < a).any() and (mine >= b).any()
    crossings = [_t(i["time"]) for i in truth["incidents"] if i.get("stressor") == "sensor_outage"]
    a, b = _t(outages[0]["time_from"]), _t(outages[0]["time_to"])
    assert len(crossings) == 2 and all(a <= t < b for t in crossings)


def test_only_turn_backs_and_loiterers_loiter_and_the_truth_judges_every_person_by_the_icd(night):
    sim, _, truth = night
    loitering = Counter(i["target"] for i in truth["incidents"] if i["type"] == "loitering")
    by_id = {t.id: t for t in sim.world.targets}
    assert {by_id[t].stressor or by_id[t].kind for t in loitering} == {"turn_back", "loiter"}
    for tg in sim.world.targets:
        if tg.cls == "person" and tg.kind != "loiter":
            hits = [h for h in dwell_hits(sim.geo, tg.tw, tg.xw, tg.yw, t_from=tg.t_start) if h[0] < sim.duration]
            assert len(hits) == loitering[tg.id], tg.id


def test_cli_hard_night_is_deterministic_and_scores_perfectly_against_itself(tmp_path, shared_dir):
    import importlib.util
    spec = importlib.util.spec_from_file_location("score_incidents", shared_dir / "tools" / "score_incidents.py")
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    runs = []
    for name in ("a", "b"):
        assert main(["simulate", "--hard", "--seed", "5", "--minutes", "6", "--out", str(tmp_path / f"{name}.jsonl"),
                     "--truth", str(tmp_path / f"{name}.json")]) == 0
        runs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert runs[0] == runs[1]
    write_capture(tmp_path / "ordinary.jsonl", ScenarioConfig(seed=5, minutes=6.0))
    assert (tmp_path / "ordinary.jsonl").read_bytes() != runs[0]
    assert {r.topic for r in read_capture(tmp_path / "a.jsonl")} <= set(TOPICS)
    truth = json.loads((tmp_path / "a.json").read_text())
    assert truth["outages"] and truth["incidents"]
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"incident_id": str(i), **inc}) + "\n" for i, inc in enumerate(truth["incidents"])))
    loaded, bad, _ = scorer.load_predictions(preds)
    assert bad == 0 and scorer.score(truth, loaded)["f1"] == 1.0


def test_ordinary_truth_has_no_hard_night_fields(tmp_path):
    summary = write_capture(tmp_path / "o.jsonl", ScenarioConfig(seed=6, minutes=3.0, targets=10), tmp_path / "t.json")
    truth = summary.truth
    assert "outages" not in truth
    assert not any("stressor" in t for t in truth["targets"])
    assert all(t["id"].startswith("T") for t in truth["targets"])


def test_a_live_hard_run_repeats_the_programme_every_45_minutes():
    sim = Simulation(ScenarioConfig(seed=8, minutes=None, start=None, hard=True), T0_US)
    sim.world.plan_until(2000.0)  # 15 minutes before the second episode: it is planned already
    program = sim.world.program
    assert program.next_episode == 5400.0 and len(program.outages) == 4
    turn_backs = [t for t in sim.world.targets if t.stressor == "turn_back"]
    assert len(turn_backs) == 6 and sum(t.t_start >= 2000.0 for t in turn_backs) >= 2

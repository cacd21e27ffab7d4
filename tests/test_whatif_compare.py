"""Pairing two rule sets' incidents into gained / lost / changed, and the score against a truth file
(checked against the ICD scorer itself where ../shared is present)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from borderfuse.fusion.types import iso_utc
from borderfuse.whatif.compare import compare, incidents_from_lines, score

T0_US = 1_795_298_400_000_000
SCORER = Path(__file__).resolve().parent.parent.parent / "shared" / "tools" / "score_incidents.py"
M_PER_DEG_LAT = 111_195.0


def line(iid="border_crossing-trk-000001-1", type="border_crossing", sector="S2", dt_s=0.0, north_m=0.0,
         cls="person", sources=("DE-R1", "PL-R1"), severity="high", seq=1, **extra) -> dict:
    doc = {"incident_id": iid, "type": type, "sector": sector, "time": iso_utc(T0_US + int(dt_s * 1e6)),
           "lat": 52.3 + north_m / M_PER_DEG_LAT, "lon": 14.55, "track_id": iid.split("-", 1)[-1][:10],
           "sources": list(sources), "severity": severity, "seq": seq, "class": cls}
    doc.update(extra)
    return doc


@pytest.mark.parametrize("a, b, lost, gained, changed", [
    ([line()], [line()], 0, 0, []),
    ([line()], [], 1, 0, []),
    ([], [line()], 0, 1, []),
    ([line()], [line(dt_s=4.0)], 0, 0, [("time",)]),
    ([line()], [line(north_m=60.0)], 0, 0, [("place",)]),
    ([line()], [line(dt_s=-3.0, north_m=40.0)], 0, 0, [("time", "place")]),
    ([line()], [line(sector="S3")], 0, 0, [("sector",)]),
    ([line()], [line(cls="vehicle")], 0, 0, [("class",)]),
    ([line()], [line(sources=("DE-R1",))], 0, 0, [("sources",)]),
    ([line()], [line(iid="border_crossing-trk-000777-1")], 0, 0, []),        # another id, the same event
    ([line()], [line(dt_s=600.0)], 1, 1, []),                                 # too far in time: another event
    ([line()], [line(north_m=1000.0)], 1, 1, []),                             # too far away
    ([line()], [line(type="loitering", iid="loitering-trk-000001-1")], 1, 1, []),   # another type
    ([line(), line(iid="x-2", dt_s=30.0)], [line(dt_s=29.0)], 1, 0, [("time",)]),   # nearest of two is paired
])
def test_pairing(a, b, lost, gained, changed):
    d = compare(incidents_from_lines(a), incidents_from_lines(b))
    assert (len(d.lost), len(d.gained)) == (lost, gained)
    assert [c.what for c in d.changed] == changed
    assert d.unchanged == len(a) - lost - len(changed)


def test_updates_and_withdrawals_make_one_incident_or_none():
    lines = [line(), line(seq=2, cls="vehicle", sources=("PL-C1",)),
             line(iid="gone-1"), line(iid="gone-1", seq=2, status="withdrawn")]
    views = incidents_from_lines(lines)
    assert [v.incident_id for v in views] == ["border_crossing-trk-000001-1"]
    assert (views[0].cls, views[0].sources) == ("vehicle", ("PL-C1",))   # the latest line's
    assert views[0].time == line()["time"]                                # the first line's


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["border_crossing", "loitering"]), st.floats(0, 3600),
                          st.floats(0, 5000)), max_size=12))
def test_a_side_against_itself_or_nothing(events):
    lines = [line(iid=f"i{k}", type=t, dt_s=dt, north_m=n) for k, (t, dt, n) in enumerate(events)]
    views = incidents_from_lines(lines)
    same = compare(views, views)
    assert (same.lost, same.gained, same.changed, same.unchanged) == ([], [], [], len(views))
    assert compare(views, []).lost == views and compare([], views).gained == views


def _truth(*events) -> dict:
    return {"incidents": [{"type": t, "sector": "S2", "time": iso_utc(T0_US + int(dt * 1e6)),
                           "lat": 52.3 + n / M_PER_DEG_LAT, "lon": 14.55, "target": f"t{k}"}
                          for k, (t, dt, n) in enumerate(events)], "negatives": []}


@pytest.mark.parametrize("lines, verdicts, f1", [
    ([line(dt_s=5.0)], {"border_crossing-trk-000001-1": "hit"}, 1.0),
    ([line(dt_s=-30.0)], {"border_crossing-trk-000001-1": "false alarm"}, 0.0),   # before the window
    ([line(dt_s=5.0), line(iid="b-2", dt_s=6.0)], {"border_crossing-trk-000001-1": "hit", "b-2": "duplicate"},
     round(2 * 0.5 / 1.5, 4)),
])
def test_score_verdicts(lines, verdicts, f1):
    s = score(_truth(("border_crossing", 0.0, 0.0)), incidents_from_lines(lines))
    assert s.verdict == verdicts
    assert s.f1 == f1


@pytest.mark.skipif(not SCORER.exists(), reason="ICD scorer not present")
def test_score_agrees_with_the_icd_scorer(tmp_path):
    spec = importlib.util.spec_from_file_location("score_incidents", SCORER)
    scorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scorer)
    truth = _truth(("border_crossing", 0.0, 0.0), ("border_crossing", 500.0, 0.0), ("loitering", 900.0, 2000.0))
    lines = [line(dt_s=10.0), line(iid="b-2", dt_s=12.0, north_m=50.0), line(iid="b-3", dt_s=2000.0),
             line(iid="l-1", type="loitering", dt_s=905.0, north_m=2100.0)]
    path = tmp_path / "inc.jsonl"
    path.write_text("".join(__import__("json").dumps(x) + "\n" for x in lines))
    preds, _, _ = scorer.load_predictions(str(path))
    theirs = scorer.score(truth, preds)
    ours = score(truth, incidents_from_lines(lines))
    assert (ours.f1, ours.precision, ours.recall) == (theirs["f1"], theirs["precision"], theirs["recall"])
    assert {t: v for t, v in ours.per_type.items() if any(v.values())} == \
        {t: v for t, v in theirs["per_type"].items() if any(v.values())}

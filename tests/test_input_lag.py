"""InputLag: which input partitions still hold records the service has not taken, and the lag ops see.
The consumer here is a stand-in with the three calls InputLag makes (position, highwater, end_offsets);
the real broker's side of it is covered by test_service_input_order.py and test_service_faults.py."""
from __future__ import annotations

import attrs
import pytest
from kafka import TopicPartition

from borderfuse.ingest.input_lag import InputLag

P = "t-"
A, B = TopicPartition(P + "de.radar.tracks", 0), TopicPartition(P + "pl.radar.plots", 0)


@attrs.define
class StandInConsumer:
    position_of: dict
    highwater_of: dict
    end_of: dict

    def position(self, tp, timeout_ms=None):
        return self.position_of[tp]

    def highwater(self, tp):
        return self.highwater_of.get(tp)

    def end_offsets(self, tps, timeout_ms=None):
        return {tp: self.end_of[tp] for tp in tps}


@attrs.define
class Lags:
    seen: dict = attrs.field(factory=dict)

    def set_lag(self, topic, partition, lag):
        self.seen[(topic, partition)] = lag


@pytest.mark.parametrize("positions, highwaters, ends, expected", [
    ({A: 5, B: 9}, {A: 9, B: 9}, {}, [("de.radar.tracks", 0)]),           # the fetch's highwater says so
    ({A: 5, B: 9}, {A: None, B: None}, {A: 7}, [("de.radar.tracks", 0)]),  # no highwater yet: the asked end
    ({A: 9, B: 9}, {A: 5, B: None}, {A: 9, B: 9}, []),                     # both caught up
    ({A: 9, B: 2}, {A: 9, B: 2}, {B: 4}, [("pl.radar.plots", 0)]),         # the larger of the two counts
])
def test_lagging_partitions(positions, highwaters, ends, expected):
    consumer = StandInConsumer(positions, highwaters, {})
    assert InputLag(P).lagging(consumer, [A, B], ends) == expected


def test_lag_is_reported_per_partition_and_stays_true_while_the_broker_cannot_be_asked():
    lags = Lags()
    lag = InputLag(P, lags)
    consumer = StandInConsumer({A: 3, B: 10}, {}, {A: 10, B: 10})
    assert lag.update(consumer, [A, B]) == {A: 10, B: 10}
    assert lags.seen == {("de.radar.tracks", 0): 7, ("pl.radar.plots", 0): 0}
    for offset in range(3, 8):   # processed up to offset 7, then the broker goes away
        lag.processed("de.radar.tracks", 0, offset)
    lag.report_stale()
    assert lags.seen[("de.radar.tracks", 0)] == 2


def test_positions_restored_from_a_snapshot_drop_the_prefix():
    lags = Lags()
    lag = InputLag(P, lags)
    lag.ends = {("de.radar.tracks", 0): 50}
    lag.restored({(P + "de.radar.tracks", 0): 20})
    lag.report_stale()
    assert lags.seen == {("de.radar.tracks", 0): 30}


def test_no_metrics_no_reports():
    lag = InputLag(P)
    lag.update(StandInConsumer({A: 1}, {}, {A: 4}), [A])
    assert lag.ends == {("de.radar.tracks", 0): 4}

"""The tracker's tape: what the tracker did on one input, recorded once and replayed under other decision rules.

The tracker's evolution depends on the observations, the tracker's own config and the order in which the
engine calls it (scans per slice, maintenance ticks, late observations), never on the decision rules
(crossing, loitering, hotlist, drone, border): the engine only reads tracks for them. The one thing the
engine writes back, an ANPR read's plate on a track, the tracker never reads (a merge only carries it over).
So a what-if of rule sets with one `[tracker]` section can run the tracker once:

- `RecordingTracker` is the real tracker that also writes, per mutating call, what it decided: each scan's
  association (track and detection indices, weak hits, new tracks, near misses) with the filter states it
  produced, each merge's (kept, absorbed) indices, each prune's count, each late class evidence;
- `TapeTracker` is a tracker whose scans and merges apply the recorded decisions and states instead of
  gating, assigning and filtering: the bookkeeping (credit, hints, confirmation, class evidence, prune,
  the merged tracks' evidence) runs as in the real tracker, so every read the engine makes (tracks, their
  class and sources, hints, positions, `provisional`) sees exactly the real tracker's state.

Every call is checked against the tape (its kind, time, number of detections, first detection's offset);
anything else raises `TapeMismatch`: a tape never silently gives other output. Pure: arrays in, arrays out
(reading and writing tape files is `borderfuse.whatif.tape_store`'s).
"""
from __future__ import annotations

import attrs
import numpy as np

from borderfuse.fusion.engine import MAINTAIN_US
from borderfuse.fusion.tracker import Tracker, TrackerConfig, TrackUpdate

SCAN, MERGE, PRUNE, EVIDENCE = 1, 2, 3, 4
KIND_NAMES = {SCAN: "scan", MERGE: "merge", PRUNE: "prune", EVIDENCE: "class evidence"}
# calls columns: kind, time µs, count, start, n1, n2, extra, check
#   scan:     count = detections, start = first row, n1 = assigned rows, n2 = new-track rows,
#             extra = near misses, check = first detection's offset
#   merge:    start = first pair, n1 = pairs
#   prune:    count = tracks deleted
#   evidence: count = track index, check = the detection's offset
CALL_COLUMNS = 8
# a run past its last scan ends with the tracks coasting out; bounded in case a config never prunes
MAX_TAIL_TICKS = 100_000


class TapeError(Exception):
    """A tape that cannot be used (damaged, incomplete, another format); the message says which and why."""


class TapeMismatch(TapeError):
    """The run asked the tracker for something other than what the tape recorded."""


@attrs.frozen(slots=True, eq=False)
class TrackerTape:
    """The recorded calls and their results, as columns (memory-mapped when read from files)."""

    calls: np.ndarray        # (n, CALL_COLUMNS) int64
    row_track: np.ndarray    # (rows,) int32: track index of an assigned detection; -1 = a new track
    row_obs: np.ndarray      # (rows,) int32: the detection's index in its scan
    row_weak: np.ndarray     # (rows,) bool
    row_x: np.ndarray        # (rows, 4) float64: the track's filter state after the scan
    row_P: np.ndarray        # (rows, 4, 4) float64
    merge_pairs: np.ndarray  # (pairs, 2) int32: (kept, absorbed) track indices

    COLUMNS = ("calls", "row_track", "row_obs", "row_weak", "row_x", "row_P", "merge_pairs")

    def validate(self, where: str) -> None:
        """Shapes and cross-references agree (a truncated or mixed-up tape raises TapeError)."""
        rows = len(self.row_track)
        if self.calls.ndim != 2 or self.calls.shape[1] != CALL_COLUMNS:
            raise TapeError(f"{where}: calls table has shape {self.calls.shape}")
        for name in ("row_obs", "row_weak", "row_x", "row_P"):
            if len(getattr(self, name)) != rows:
                raise TapeError(f"{where}: {name} has {len(getattr(self, name))} rows, row_track {rows}")
        if self.row_x.shape[1:] != (4,) or self.row_P.shape[1:] != (4, 4) or self.merge_pairs.shape[1:] != (2,):
            raise TapeError(f"{where}: a state or merge column has the wrong shape")
        if not len(self.calls):
            return
        kind = self.calls[:, 0]
        scans, merges = self.calls[kind == SCAN], self.calls[kind == MERGE]
        if not np.isin(kind, list(KIND_NAMES)).all():
            raise TapeError(f"{where}: unknown call kinds")
        if int((scans[:, 4] + scans[:, 5]).sum()) != rows or int(merges[:, 4].sum()) != len(self.merge_pairs):
            raise TapeError(f"{where}: the calls do not account for every row and merge pair")
        if len(scans) and (scans[:, 3] + scans[:, 4] + scans[:, 5]).max() > rows:
            raise TapeError(f"{where}: a scan's rows run past the end")


class RecordingTracker(Tracker):
    """The real tracker, recording what each mutating call decided (`tape()` after the run)."""

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        super().__init__(config)
        self._calls = _Column((CALL_COLUMNS,), np.int64)
        self._row_track, self._row_obs = _Column((), np.int32), _Column((), np.int32)
        self._row_weak, self._row_x, self._row_P = _Column((), np.bool_), _Column((4,), np.float64), _Column((4, 4),
                                                                                                             np.float64)
        self._pairs = _Column((2,), np.int32)
        self._scan_assoc = None
        self._scan_new = None
        self._last_tick: int | None = None

    def _associate(self, obs, z, R, t_obs):
        self._scan_assoc = result = super()._associate(obs, z, R, t_obs)
        return result

    def _start(self, obs, new_k, x0, P0, t0):
        self._scan_new = new_k
        return super()._start(obs, new_k, x0, P0, t0)

    def process_scan(self, obs) -> list[TrackUpdate]:
        if not obs:
            return super().process_scan(obs)
        n_before, near_before = len(self.tracks), self.near_misses
        self._scan_assoc = self._scan_new = None
        updates = super().process_scan(obs)
        assigned_t, assigned_k, weak, _ = self._scan_assoc
        new_k = self._scan_new if self._scan_new is not None else np.zeros(0, dtype=np.intp)
        idx = np.concatenate([assigned_t, np.arange(n_before, len(self.tracks))])
        self._calls.append((SCAN, obs[0].time_us, len(obs), len(self._row_track), assigned_t.size, new_k.size,
                            self.near_misses - near_before, obs[0].offset))
        self._row_track.extend(np.concatenate([assigned_t, np.full(new_k.size, -1)]))
        self._row_obs.extend(np.concatenate([assigned_k, new_k]))
        self._row_weak.extend(np.concatenate([weak, np.zeros(new_k.size, dtype=bool)]))
        self._row_x.extend(self.x[idx])
        self._row_P.extend(self.P[idx])
        return updates

    def merge(self, now_us: int):
        before = {t.id: i for i, t in enumerate(self.tracks)}
        pairs = super().merge(now_us)
        self._calls.append((MERGE, now_us, 0, len(self._pairs), len(pairs), 0, 0, 0))
        if pairs:
            self._pairs.extend(np.array([(before[kept.id], before[gone.id]) for kept, gone in pairs]))
        self._last_tick = now_us
        return pairs

    def prune(self, now_us: int):
        gone = super().prune(now_us)
        self._calls.append((PRUNE, now_us, len(gone), 0, 0, 0, 0, 0))
        return gone

    def add_class_evidence(self, track_id: str, o) -> None:
        i = self._index.get(track_id, -1)
        super().add_class_evidence(track_id, o)
        self._calls.append((EVIDENCE, o.time_us, i, 0, 0, 0, 0, o.offset))

    def run_out(self) -> None:
        """After the run's last call: maintenance ticks on until every track is gone, so that a replay whose
        end-of-input runs event time on further than this run did (a longer class hold) finds them on tape."""
        if self._last_tick is None:
            return
        t = self._last_tick + MAINTAIN_US
        for _ in range(MAX_TAIL_TICKS):
            if not self.tracks:
                return
            self.merge(t)
            self.prune(t)
            t += MAINTAIN_US
        raise TapeError(f"tracks still alive {MAX_TAIL_TICKS} s after the end of the input: not recorded")

    def tape(self) -> TrackerTape:
        return TrackerTape(self._calls.array(), self._row_track.array(), self._row_obs.array(), self._row_weak.array(),
                           self._row_x.array(), self._row_P.array(), self._pairs.array())


class _Column:
    """An append-only column of fixed-shape rows (doubling buffer: a day's tape is millions of rows)."""

    def __init__(self, shape: tuple, dtype):
        self._buf = np.zeros((1024, *shape), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, row) -> None:
        self.extend(np.asarray(row, dtype=self._buf.dtype)[None])

    def extend(self, rows: np.ndarray) -> None:
        n = len(rows)
        if self._n + n > len(self._buf):
            grown = np.zeros((max(2 * len(self._buf), self._n + n), *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[:self._n] = self._buf[:self._n]
            self._buf = grown
        self._buf[self._n:self._n + n] = rows
        self._n += n

    def array(self) -> np.ndarray:
        return self._buf[:self._n].copy()


class TapeTracker(Tracker):
    """A tracker that replays a tape: same state, same reads, without gating, assignment or filtering."""

    def __init__(self, config: TrackerConfig, tape: TrackerTape, where: str = "tracker tape"):
        super().__init__(config)
        self.tape = tape
        self.where = where
        self._cursor = 0
        self._n_calls = len(tape.calls)

    def _next(self, kind: int, time_us: int, count: int | None = None, check: int | None = None):
        """The next recorded call, which must be this one; None past the tape's end for maintenance of an
        empty tracker (a run whose end-of-input ran event time on further than the recording did)."""
        i = self._cursor
        if i >= self._n_calls:
            if kind in (MERGE, PRUNE) and not self.tracks:
                return None
            raise TapeMismatch(f"{self.where}: the run goes on past the tape's end ({KIND_NAMES[kind]} at "
                               f"{time_us} µs, call {i + 1}); delete the tape to record it again")
        call = self.tape.calls[i].tolist()
        if call[0] != kind or call[1] != time_us or (count is not None and call[2] != count) or (
                check is not None and call[7] != check):
            raise TapeMismatch(f"{self.where}: call {i + 1} is {KIND_NAMES[kind]} at {time_us} µs"
                               f"{'' if count is None else f' of {count}'}, the tape has "
                               f"{KIND_NAMES.get(call[0], call[0])} at {call[1]} µs of {call[2]}: another input, "
                               f"another pipeline or another tracker; delete the tape to record it again")
        self._cursor = i + 1
        return call

    def process_scan(self, obs) -> list[TrackUpdate]:
        if not obs:
            return []
        _, _, _, start, n1, n2, near, _ = self._next(SCAN, obs[0].time_us, len(obs), obs[0].offset)
        tape = self.tape
        self._scan_no += 1
        self.near_misses += near
        updates = []
        if n1:
            end = start + n1
            assigned_t = tape.row_track[start:end].astype(np.intp)
            assigned_k = tape.row_obs[start:end].astype(np.intp)
            t_obs = np.array([obs[j].time_us for j in assigned_k.tolist()], dtype=np.int64)
            t_new = np.maximum(self.t_us[assigned_t], t_obs)
            updates.extend(self._apply(obs, assigned_t, assigned_k, np.asarray(tape.row_weak[start:end]),
                                       np.asarray(tape.row_x[start:end]), np.asarray(tape.row_P[start:end]), t_new))
        if n2:
            start, end = start + n1, start + n1 + n2
            new_k = tape.row_obs[start:end].astype(np.intp)
            t0 = np.array([obs[j].time_us for j in new_k.tolist()], dtype=np.int64)
            updates.extend(self._start(obs, new_k, np.array(tape.row_x[start:end]), np.array(tape.row_P[start:end]),
                                       t0))
        return updates

    def merge(self, now_us: int):
        call = self._next(MERGE, now_us)
        if call is None or not call[4]:
            return []
        start, n = call[3], call[4]
        absorbed = np.zeros(len(self.tracks), dtype=bool)
        pairs = []
        for keep, drop in self.tape.merge_pairs[start:start + n].tolist():
            self._absorb(keep, drop)
            absorbed[drop] = True
            pairs.append((self.tracks[keep], self.tracks[drop]))
        self._keep(~absorbed)
        return pairs

    def prune(self, now_us: int):
        call = self._next(PRUNE, now_us)
        gone = super().prune(now_us)
        if call is not None and call[2] != len(gone):
            raise TapeMismatch(f"{self.where}: prune at {now_us} µs deleted {len(gone)} tracks, the tape "
                               f"{call[2]}; delete the tape to record it again")
        return gone

    def add_class_evidence(self, track_id: str, o) -> None:
        self._next(EVIDENCE, o.time_us, self._index.get(track_id, -1), o.offset)
        super().add_class_evidence(track_id, o)

    def check_finished(self) -> None:
        """At the end of a run that consumed its whole input: every scan on tape was asked for."""
        rest = self.tape.calls[self._cursor:, 0]
        if np.isin(rest, (SCAN, EVIDENCE)).any():
            raise TapeMismatch(f"{self.where}: the run ended with {int(np.isin(rest, (SCAN, EVIDENCE)).sum())} "
                               f"recorded scans not asked for: another input; delete the tape to record it again")

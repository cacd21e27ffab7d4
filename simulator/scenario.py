"""What a simulated night looks like: targets, sensor behaviour, delivery effects.

Defaults imitate the recorded sample night (/work/shared/scenarios/sample): per-sensor report
rates and noise from the registry, Pd about 0.9, the ICD's delivery delays, late records,
duplicates and about 15 malformed records per half hour.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import attrs

from borderfuse.ingest.settings import DEFAULT_GEO_DIR, DEFAULT_SCHEMAS_DIR

# Target kinds. The class each one has, and what the ICD rules should make of it, lives in world.py.
TARGET_KINDS = (
    "crossing",         # person crossing the border away from the crossing points  -> border_crossing
    "crossing_at_bcp",  # person walking over a road bridge (crossing-point polygon)  -> negative
    "loiter",           # person lingering near the border                            -> loitering
    "walker",           # person walking along the border without crossing            -> negative
    "vehicle",          # car/truck over a road bridge, read by both sides' ANPR      -> negative (+ hotlist)
    "local_vehicle",    # traffic on a road parallel to the border, no ANPR           -> nothing
    "drone",            # drone crossing anywhere                                     -> drone_crossing
    "animal",           # wildlife crossing                                           -> negative
)
# The sample night's mix (23 targets), plus two walkers.
DEFAULT_MIX = {"crossing": 6, "crossing_at_bcp": 1, "loiter": 1, "walker": 2, "vehicle": 10,
               "local_vehicle": 2, "drone": 1, "animal": 2}

MALFORMED_KINDS = (
    "truncated_avro", "bad_framing", "unknown_schema_id", "unknown_schema_version", "not_utf8",
    "invalid_json", "missing_field", "nan", "negative_range", "latitude_91", "swapped_axes",
    "unknown_sensor", "bad_timestamp", "oversized_field", "empty_value",
)
DEFAULT_START = datetime(2026, 11, 21, 22, 0, tzinfo=timezone.utc)


class SimulatorError(ValueError):
    """A scenario that cannot be simulated; the message names the setting and what is wrong."""


def _non_negative(instance, attribute, value):
    if value < 0:
        raise SimulatorError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(instance, attribute, value):
    if value <= 0:
        raise SimulatorError(f"{attribute.name} must be > 0, got {value!r}")


def _fraction(instance, attribute, value):
    if not 0.0 <= value <= 1.0:
        raise SimulatorError(f"{attribute.name} must be within 0..1, got {value!r}")


def _delay_range(instance, attribute, value):
    lo, hi = value
    if not 0.0 <= lo <= hi:
        raise SimulatorError(f"{attribute.name} must be (lo, hi) with 0 <= lo <= hi, got {value!r}")


def _mix(value: Mapping[str, float]) -> dict[str, float]:
    mix = dict(value)
    unknown = set(mix) - set(TARGET_KINDS)
    if unknown:
        raise SimulatorError(f"mix: unknown target kind(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(TARGET_KINDS)}")
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise SimulatorError(f"mix: weights must be >= 0 and not all zero, got {mix!r}")
    return mix


def _kinds(value) -> tuple[str, ...]:
    kinds = tuple(value)
    unknown = set(kinds) - set(MALFORMED_KINDS)
    if unknown:
        raise SimulatorError(f"malformed_kinds: unknown kind(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(MALFORMED_KINDS)}")
    return kinds


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise SimulatorError(f"start must carry a UTC offset, got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


@attrs.frozen(slots=True)
class ScenarioConfig:
    """One scenario. `minutes=None` runs forever (live only). `targets` is the number of targets
    present at once: each slot's target is replaced by a new one of the same kind when it leaves."""

    seed: int = 7
    minutes: float | None = attrs.field(default=30.0, validator=attrs.validators.optional(_positive))
    start: datetime | None = attrs.field(default=DEFAULT_START, converter=_utc)  # None: now (live)
    targets: int = attrs.field(default=25, validator=_positive)
    mix: dict[str, float] = attrs.field(factory=lambda: dict(DEFAULT_MIX), converter=_mix)
    hotlist_fraction: float = attrs.field(default=0.2, validator=_fraction)  # of bridge vehicles
    hotlist_decoys: int = attrs.field(default=8, validator=_non_negative)  # entries for plates never seen
    malformed_per_min: float = attrs.field(default=0.5, validator=_non_negative)
    malformed_kinds: tuple[str, ...] = attrs.field(default=MALFORMED_KINDS, converter=_kinds)
    duplicate_rate: float = attrs.field(default=0.005, validator=_fraction)
    late_rate: float = attrs.field(default=0.01, validator=_fraction)
    max_late_s: float = attrs.field(default=10.0, validator=_positive)
    de_delay_s: tuple[float, float] = attrs.field(default=(0.3, 2.5), validator=_delay_range)
    pl_delay_s: tuple[float, float] = attrs.field(default=(0.1, 0.8), validator=_delay_range)
    radar_pd: float = attrs.field(default=0.9, validator=_fraction)          # PL plots per scan
    de_radar_pd: float = attrs.field(default=0.965, validator=_fraction)     # DE track updates
    camera_pd: float = attrs.field(default=0.85, validator=_fraction)
    uav_pd: float = attrs.field(default=0.8, validator=_fraction)
    anpr_pd: float = attrs.field(default=0.95, validator=_fraction)
    clutter_per_scan: float = attrs.field(default=3.0, validator=_non_negative)
    de_false_tracks_per_min: float = attrs.field(default=0.4, validator=_non_negative)  # per radar
    de_track_fades_per_hour: float = attrs.field(default=0.5, validator=_non_negative)  # per held track
    de_track_pool: int = attrs.field(default=1000, validator=_positive)  # track numbers T0000.. reused
    pl_anpr_v2_fraction: float = attrs.field(default=0.5, validator=_fraction)
    uav_first_sortie_within_s: float = attrs.field(default=300.0, validator=_non_negative)
    start_stagger_s: float = attrs.field(default=60.0, validator=_non_negative)
    # A hard night (stressors.py): the ordinary traffic thinned out, plus every 45 minutes the
    # stressors of the agencies' hard night (turn-backs, walkers, a group, an off-road vehicle, drones
    # hovering and flying along the line, grazing animals, a cross-and-back, two sensors silent,
    # crowds) and their negatives, stressor tags and outages in the truth.
    hard: bool = False
    geo_dir: Path = attrs.field(default=DEFAULT_GEO_DIR, converter=Path)
    schemas_dir: Path = attrs.field(default=DEFAULT_SCHEMAS_DIR, converter=Path)

    @property
    def duration_s(self) -> float | None:
        return None if self.minutes is None else self.minutes * 60.0


def parse_mix(text: str) -> dict[str, float]:
    """'crossing=6,vehicle=10' -> {'crossing': 6.0, 'vehicle': 10.0} (other kinds 0)."""
    mix = {k: 0.0 for k in TARGET_KINDS}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, weight = item.partition("=")
        if not sep:
            raise SimulatorError(f"mix item {item!r} is not KIND=WEIGHT")
        try:
            mix[name.strip()] = float(weight)
        except ValueError as exc:
            raise SimulatorError(f"mix item {item!r}: weight {weight!r} is not a number") from exc
    return _mix(mix)

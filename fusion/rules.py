"""The incident rule set: typed parameters loaded from a TOML file operators edit.

`load_rules(path)` validates every key on load; an error names the file, section and key.
`fusion/rules.toml` is the default: the four incident types the agencies agreed on (ICD) with
their agreed parameters, plus the tracker's tuning.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

import attrs

from borderfuse.fusion.tracker import TrackerConfig
from borderfuse.sensors.base import CLASSES

DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "rules.toml"
SEVERITIES = ("low", "medium", "high", "critical")


class RulesError(ValueError):
    """The rules file is missing, not TOML, or has an unknown/invalid key (named in the message)."""


def _non_negative(instance, attribute, value):
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(instance, attribute, value):
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _classes(instance, attribute, value):
    bad = [c for c in value if c not in CLASSES]
    if bad:
        raise ValueError(f"{attribute.name}: unknown class(es) {bad}; known: {list(CLASSES)}")


_severity = attrs.validators.in_(SEVERITIES)


@attrs.frozen(slots=True)
class CrossingParams:
    """How a crossing of the border line is recognised (shared by border_crossing and drone_crossing)."""

    side_margin_m: float = attrs.field(default=5.0, validator=_non_negative)        # least distance from the line to count a side
    # The track counts on a side only when it is there with this probability, judged from its own position
    # uncertainty: distance >= z * sigma across the line (z = 1.28 for 0.9). Well-located tracks are called in seconds.
    side_probability: float = attrs.field(default=0.9, validator=attrs.validators.and_(
        attrs.validators.gt(0.5), attrs.validators.lt(1.0)))
    max_position_sigma_m: float = attrs.field(default=50.0, validator=_positive)    # ignore positions less certain than this
    class_min_hold_s: float = attrs.field(default=0.0, validator=_non_negative)     # wait at least this for class evidence
    class_max_hold_s: float = attrs.field(default=4.0, validator=_non_negative)     # then decide with what is known
    follow_class_s: float = attrs.field(default=120.0, validator=_non_negative)     # update/withdraw as the class settles
    recross_s: float = attrs.field(default=120.0, validator=_non_negative)          # the same track back and forth: one event
    duplicate_s: float = attrs.field(default=30.0, validator=_non_negative)         # another track crossing at the same
    duplicate_radius_m: float = attrs.field(default=150.0, validator=_non_negative)  # time and place: the same target


@attrs.frozen(slots=True)
class BorderCrossingRule:
    enabled: bool = True
    classes: tuple[str, ...] = attrs.field(default=("person", "vehicle", "unknown"), converter=tuple, validator=_classes)
    severity: str = attrs.field(default="high", validator=_severity)


@attrs.frozen(slots=True)
class DroneCrossingRule:
    enabled: bool = True
    classes: tuple[str, ...] = attrs.field(default=("drone",), converter=tuple, validator=_classes)
    severity: str = attrs.field(default="high", validator=_severity)


@attrs.frozen(slots=True)
class HotlistRule:
    enabled: bool = True
    severity: str = attrs.field(default="high", validator=_severity)
    passage_window_s: float = attrs.field(default=600.0, validator=_positive)  # reads of one passage lie within this
    attach_radius_m: float = attrs.field(default=150.0, validator=_positive)   # track at the lane camera


@attrs.frozen(slots=True)
class LoiteringRule:
    enabled: bool = True
    classes: tuple[str, ...] = attrs.field(default=("person", "unknown"), converter=tuple, validator=_classes)
    severity: str = attrs.field(default="medium", validator=_severity)
    border_distance_m: float = attrs.field(default=300.0, validator=_positive)
    duration_s: float = attrs.field(default=300.0, validator=_positive)
    radius_m: float = attrs.field(default=150.0, validator=_positive)
    max_net_displacement_m: float = attrs.field(default=150.0, validator=_positive)  # lingering, not walking through
    sample_s: float = attrs.field(default=2.0, validator=_positive)
    max_gap_s: float = attrs.field(default=30.0, validator=_positive)   # a longer gap in the track breaks the dwell


@attrs.frozen(slots=True)
class RuleSet:
    crossing: CrossingParams = CrossingParams()
    border_crossing: BorderCrossingRule = BorderCrossingRule()
    drone_crossing: DroneCrossingRule = DroneCrossingRule()
    hotlist_vehicle: HotlistRule = HotlistRule()
    loitering: LoiteringRule = LoiteringRule()
    tracker: TrackerConfig = TrackerConfig()


# Derived from RuleSet itself, so a new section cannot be forgotten here.
_SECTION_TYPES = {f.name: type(f.default) for f in attrs.fields(RuleSet)}


def _coerce(where: str, value: Any, default: Any) -> Any:
    """Check a TOML value against the type of the field's default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RulesError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RulesError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RulesError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise RulesError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    return value


def rules_from_mapping(data: Mapping[str, Any], source: str = "<rules>") -> RuleSet:
    sections = {}
    for name, body in data.items():
        if name not in _SECTION_TYPES:
            raise RulesError(f"{source}: unknown section [{name}]; known: {', '.join(_SECTION_TYPES)}")
        if not isinstance(body, dict):
            raise RulesError(f"{source}: [{name}] must be a table")
        cls = _SECTION_TYPES[name]
        fields = {f.name: f for f in attrs.fields(cls)}
        kwargs = {}
        for key, value in body.items():
            if key not in fields:
                raise RulesError(f"{source}: [{name}] unknown key {key!r}; known: {', '.join(fields)}")
            kwargs[key] = _coerce(f"{source}: [{name}] {key}", value, fields[key].default)
        try:
            sections[name] = cls(**kwargs)
        except ValueError as exc:
            raise RulesError(f"{source}: [{name}] {exc}") from exc
    return RuleSet(**sections)


def load_rules(path: Path | str | None = None) -> RuleSet:
    path = Path(path) if path is not None else DEFAULT_RULES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulesError(f"rules file {path} does not exist") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RulesError(f"rules file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:  # a directory, no permission ...
        raise RulesError(f"rules file {path} cannot be read: {exc.strerror or exc}") from exc
    return rules_from_mapping(data, str(path))

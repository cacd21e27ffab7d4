"""The one entry point: `RecordDecoder(geography, schemas_dir).decode(record) -> list[Observation]`.

Dispatches on the record's topic to the PL Avro or DE JSON decoder, validates, and projects into
the shared frame. `decode_batch` does the same for many records with one projection call per
geometry kind, and returns the dead letters beside the observations instead of raising.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from borderfuse.geo.frames import GeoError
from borderfuse.geo.geography import Geography, SensorInfo
from borderfuse.sensors import de_json, pl_avro
from borderfuse.sensors import validate as v
from borderfuse.sensors.base import (
    DecodeError, EmptyValueError, Observation, RawRecord, UnknownSensorError, UnknownTopicError,
)
from borderfuse.sensors.project import Pending, project
from borderfuse.sensors.topics import HOTLIST_TOPIC



class RecordDecoder:
    """Decodes records of the eight ICD sensor feeds (not the hotlist: see sensors.hotlist).

    `plates` (a `borderfuse.privacy.plates.PlatePseudonymiser`): ANPR plates come out as its keyed
    pseudonyms, so nothing after decoding holds a clear plate. None keeps the normalised plate: for
    tests of the decoders alone; the pipeline always passes one.
    """

    def __init__(self, geography: Geography, schemas_dir: Path | str, plates=None):
        self.geography = geography
        self.plates = plates
        self._avro = pl_avro.PlAvroCodec(schemas_dir)
        self._de_documents = de_json.known_documents(schemas_dir)
        self._parsers = {}
        for topic, name in pl_avro.PL_TOPIC_RECORDS.items():
            if any(s.name == name for s in self._avro.schemas.values()):
                self._parsers[topic] = self._pl_parser(name, pl_avro.PL_PARSERS[topic])
        for topic, _ in self._de_documents.values():
            self._parsers[topic] = self._parse_de
        self._check_registry()

    @property
    def topics(self) -> tuple[str, ...]:
        """The input topics this decoder handles."""
        return tuple(self._parsers)

    def _check_registry(self) -> None:
        """Fail at start-up, not per record, when a sensor lacks the accuracy its feed needs."""
        for sensor in self.geography.sensors.values():
            if sensor.topic in ("pl.radar.plots", "pl.camera.detections"):
                if sensor.sigma_angle_deg is None or (sensor.sigma_range_m is None and sensor.sigma_range_frac is None):
                    raise GeoError(f"sensor {sensor.id}: a polar sensor needs sigma_azimuth_deg/sigma_bearing_deg "
                                   "and sigma_range_m/sigma_range_frac in the registry")
            elif sensor.kind != "anpr" and sensor.topic in self._parsers and sensor.sigma_m is None:
                raise GeoError(f"sensor {sensor.id}: needs sigma_m in the registry")

    def _pl_parser(self, record_name: str, parser):
        def parse(record: RawRecord) -> Pending:
            return parser(self._avro.read(record, record_name), record, self._lookup)
        return parse

    def _parse_de(self, record: RawRecord) -> Pending:
        return de_json.parse(record, self._de_documents, self._lookup)

    def _lookup(self, sensor_id: str, field: str, topic: str) -> SensorInfo:
        sensor = self.geography.sensors.get(sensor_id)
        if sensor is None:
            raise UnknownSensorError(f"field {field}={v.show(sensor_id)} is not in the sensor registry", field=field)
        if sensor.topic != topic:
            raise UnknownSensorError(f"field {field}={sensor_id!r} is registered for topic {sensor.topic}, "
                                     f"not {topic}", field=field)
        return sensor

    def parse(self, record: RawRecord) -> Pending:
        """Validate one record without projecting it (raises DecodeError, located)."""
        try:
            parser = self._parsers.get(record.topic)
            if parser is None:
                raise UnknownTopicError(f"no decoder for topic {record.topic!r}"
                                        + (" (hotlist records go to sensors.hotlist.decode_hotlist)"
                                           if record.topic == HOTLIST_TOPIC else ""))
            if not record.value:
                raise EmptyValueError("record value is " + ("null" if record.value is None else "empty (0 bytes)"))
            pending = parser(record)
            if self.plates is not None and pending.fields.get("plate"):
                pending.fields["plate"] = self.plates.pseudonym(pending.fields["plate"])
            return pending
        except DecodeError as exc:
            raise exc.locate(record)

    def decode(self, record: RawRecord) -> list[Observation]:
        """The record's observations (one per record for every ICD feed); raises DecodeError."""
        result = project(self.geography, [self.parse(record)])[0]
        if isinstance(result, DecodeError):
            raise result
        return [result]

    def decode_batch(self, records: Iterable[RawRecord]
                     ) -> tuple[list[Observation], list[tuple[RawRecord, DecodeError]]]:
        """Observations of all good records (input order) and (record, error) for the dead letters."""
        pending: list[Pending] = []
        dead: list[tuple[RawRecord, DecodeError]] = []
        for record in records:
            try:
                pending.append(self.parse(record))
            except DecodeError as exc:
                dead.append((record, exc))
        observations = []
        if pending:
            for item, result in zip(pending, project(self.geography, pending)):
                if isinstance(result, DecodeError):
                    dead.append((item.record, result))
                else:
                    observations.append(result)
        return observations, dead

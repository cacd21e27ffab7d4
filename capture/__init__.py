"""Capture files (recorded Kafka traffic): the file format, and `borderfuse publish` / `borderfuse record`."""

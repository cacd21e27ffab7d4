"""The Kafka service around the fusion core: consume, publish, commit, metrics, CLI."""

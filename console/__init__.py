"""`borderfuse console`: the patrol centres' web console (live over Kafka, or a replayed capture)."""

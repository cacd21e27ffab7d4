"""Privacy: what may leave the service about a person. `privacy.plates`: number plates as keyed
HMAC pseudonyms. Pure (no I/O, no clock): the key bytes are given by the caller
(`borderfuse.ingest.plate_key` reads the key file)."""

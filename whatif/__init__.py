"""Rule what-if: `borderfuse diff CAPTURE A.toml B.toml` and the decoded-observation cache it shares with
`borderfuse replay --cache`.

- `cache` (and `cache_read`): decoded observations (and dead letters, duplicates, hotlist records) of a capture in columnar
  `.npy` files beside it, keyed by the capture's content hash and the decoder's fingerprint;
- `runner`: one rule set over the decoded batches, both rule sets in parallel processes, progress;
- `compare`: incidents gained, lost and changed, and the score of each side against a truth file;
- `report`: the terminal table, the JSON document and the self-contained HTML report with its map;
- `command`: the `borderfuse diff` command line.
"""

"""`borderfuse cot`: incidents (and optionally tracks) as Cursor-on-Target events to TAK, through pytak."""

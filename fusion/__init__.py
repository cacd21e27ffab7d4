"""Tracking, correlation and incident rules: pure functions over numpy arrays, no I/O."""

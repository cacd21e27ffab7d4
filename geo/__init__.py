"""Frames, projection, sectors, border."""

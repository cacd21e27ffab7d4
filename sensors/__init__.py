"""Decode each ICD feed into validated observations in the shared frame."""

"""Segment models (see issue: segments with governance)."""

"""Consent models (see issue: consent per event source)."""

"""Models of the dsar app."""

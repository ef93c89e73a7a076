"""Device driver plugins shipped with damwatch-daq (one folder each)."""

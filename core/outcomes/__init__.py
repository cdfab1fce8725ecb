"""Outcomes: what applied changes did, measured against what would have happened anyway."""

"""Sweeps over grids of configs (a later issue)."""

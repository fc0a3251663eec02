"""Sweeps over grids of configs × seeds and their paper-style tables (`lipgan sweep`, see `sweep.py`)."""

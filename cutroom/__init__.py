"""Cutroom: turn a marketing brief into finished, scored, stored campaign media."""

__version__ = "0.1.0"

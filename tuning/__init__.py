"""Driver side of the fraud tuning runner: spec, search, scheduling, tracking, CLI."""

__version__ = "0.1.0"

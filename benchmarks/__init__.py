"""Benchmarks: side-by-side comparisons measured in one run (never timed assertions in tests)."""

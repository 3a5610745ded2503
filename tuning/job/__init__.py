"""A job's life: preflight checks, data shipping, the Tuner, run / resume, the result
types and state, refit and verdict, replay into MLflow (``sync``), live progress.

Importing a module of this package imports Ray and MLflow; the package itself is
empty so that ``tuning.job.state`` or ``tuning.job.results`` can be read alone.
"""

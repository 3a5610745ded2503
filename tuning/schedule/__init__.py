"""Scheduling: the scheduler registry, completion criteria and scheduler state.

``registry`` is cheap to import (each builder imports Ray inside); ``stoppers``
and ``state`` are Tune callbacks and import Ray.
"""

"""The search: parameter types of a space, the searcher registry and the algorithms.

Modules here read a :class:`~tuning.spec.Spec` they are handed (type hints only)
and never import ``tuning.spec``: the spec validates its names against the
registry (:mod:`tuning.search.registry`), so the registry sits below it.
``registry`` and ``params`` are cheap to import; ``space``, ``gp``, ``warm_start``
and ``build`` import Ray.
"""

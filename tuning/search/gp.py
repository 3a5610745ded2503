"""Gaussian-process Bayesian optimisation as a Ray Tune searcher (``search.algorithm: gp``).

Why bayesian-optimization 3.x and not Optuna's ``GPSampler`` (measured for issue #15):
bayesian-optimization is maintained, pure Python, and adds under 1 MB to this
project's install (numpy, scipy and scikit-learn are core dependencies already; a
fresh venv installs its whole closure in 25 s, 302 MB, nearly all of it those three).
``GPSampler`` needs PyTorch, which the package index serves as the CUDA build: torch
plus 15 ``nvidia-*`` CUDA packages and triton, several GB, for a GP over a dozen
parameters on machines without a GPU.

Ray's ``BayesOptSearch`` only searches continuous ranges, flattens log ranges to
linear ones, and still calls the 1.x ``UtilityFunction`` that 2.x removed (checked
against Ray 2.60). This searcher drives bayesian-optimization 3.x (checked against
3.4) directly on the unit cube of :mod:`tuning.search.codec`: every parameter is a coordinate in [0, 1] (log
parameters on a log scale), integers are decoded by flooring into equal cells and
categories by index cells. The GP sees the continuous coordinates; trials get
valid typed values.

While trials run in parallel the GP has no new data between suggestions and would
propose the same point again; a suggestion that decodes to a configuration still
running is replaced by a random one, which keeps the parallel slots exploring.
"""

from __future__ import annotations

import logging
import pickle
import math
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from tuning.search.codec import from_unit, is_tuned, to_unit

logger = logging.getLogger(__name__)


class GPSearch(Searcher):
    """Expected-improvement GP search over a spec's ``search_space``.

    Args:
        space: the spec's ``search_space`` (parameter specs and constants).
        n_initial_points: random configurations before the GP takes over.
        seed: seeds the random phase and the acquisition optimiser.
        points_to_evaluate: configurations to try first, in order.
        xi: exploration margin of expected improvement.
    """

    def __init__(self, space: dict[str, Any], n_initial_points: int = 5, seed: int | None = 0,
                 points_to_evaluate: list[dict[str, Any]] | None = None, xi: float = 0.01,
                 metric: str | None = None, mode: str | None = None) -> None:
        from bayes_opt import BayesianOptimization, acquisition

        super().__init__(metric=metric, mode=mode)
        self._tuned = {n: p for n, p in space.items() if is_tuned(p)}
        self._constants = {n: p for n, p in space.items() if not is_tuned(p)}
        self._n_initial = n_initial_points
        self._rng = np.random.default_rng(seed)
        self._optimizer = BayesianOptimization(
            f=None, pbounds={n: (0.0, 1.0) for n in self._tuned}, verbose=0,
            acquisition_function=acquisition.ExpectedImprovement(xi=xi, random_state=seed),
            random_state=seed, allow_duplicate_points=True,
        )
        self._queue = [dict(p) for p in points_to_evaluate or []]
        self._live: dict[str, tuple[dict[str, float], dict[str, Any]]] = {}
        self._observed = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        # The space comes from the spec (it knows ints, logs and choices); Tune's
        # domains are not needed, only the metric and the mode.
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._queue:
            config = {**self._queue.pop(0)}
            unit = {n: to_unit(p, config[n]) for n, p in self._tuned.items()}
        else:
            unit = self._next_unit()
            config = self._decode(unit)
            running = [c for _, c in self._live.values()]
            if config in running:
                unit = self._random_unit()
                config = self._decode(unit)
        self._live[trial_id] = (unit, config)
        return {**self._constants, **config}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        unit, _ = self._live.pop(trial_id, (None, None))
        if unit is None or error or not result or self._metric not in result:
            return
        value = float(result[self._metric])
        if math.isnan(value) or math.isinf(value):
            return
        self._register(unit, value)

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Feed a configuration evaluated elsewhere (a warm start) to the GP."""
        if error or value is None or math.isnan(value):
            return
        self._register({n: to_unit(p, parameters[n]) for n, p in self._tuned.items()},
                       float(value))

    # -------------------------------------------------------------- internals
    def _register(self, unit: dict[str, float], value: float) -> None:
        sign = 1.0 if self._mode == "max" else -1.0  # the GP always maximises
        self._optimizer.register(params=unit, target=sign * value)
        self._observed += 1

    def _next_unit(self) -> dict[str, float]:
        if self._observed < max(self._n_initial, 2):
            return self._random_unit()
        try:
            return {n: float(v) for n, v in self._optimizer.suggest().items()}
        except Exception as err:  # noqa: BLE001 - a degenerate GP fit must not end the job
            logger.warning("GP suggestion failed (%s); sampling at random", err)
            return self._random_unit()

    def _random_unit(self) -> dict[str, float]:
        return {n: float(self._rng.random()) for n in self._tuned}

    def _decode(self, unit: dict[str, float]) -> dict[str, Any]:
        return {n: from_unit(p, unit[n]) for n, p in self._tuned.items()}

    def get_state(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))

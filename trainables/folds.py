"""How rows are partitioned: the train/validation/test split and the K folds.

Both work on row positions only (labels, and optionally times and entity codes),
so they are cheap, deterministic by seed and testable without features. With
entity codes (``groups``) no entity ever has rows on both sides of a cut: a
customer seen in training would make validation look better than new customers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainables.preprocess import DataError

Fold = tuple[np.ndarray, np.ndarray]


def split_indices(
    y: np.ndarray,
    *,
    split: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    times: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return train, validation and test row positions.

    ``"stratified"`` draws rows (or whole groups) per class at random, by seed;
    groups are stratified by whether they hold any positive. ``"time"`` puts the
    earliest rows (or groups, ordered by their first time) in train, then
    validation, then test. Stratified parts keep the file's row order.
    """
    n = len(y)
    if split == "time":
        if times is None:
            raise DataError("split 'time' needs time_column")
        if groups is None:
            order = np.argsort(times, kind="stable")
            n_test, n_val = round(n * test_fraction), round(n * val_fraction)
            n_train = n - n_test - n_val
            return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
        codes, first = _group_first_times(groups, times)
        shares = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        blocks = _cut_groups(np.argsort(first, kind="stable"), np.bincount(codes), shares)
        return tuple(np.flatnonzero(np.isin(codes, b)) for b in blocks)  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    if groups is None:
        for cls in (0, 1):
            idx = rng.permutation(np.flatnonzero(y == cls))
            n_test, n_val = round(idx.size * test_fraction), round(idx.size * val_fraction)
            parts[2].append(idx[:n_test])
            parts[1].append(idx[n_test : n_test + n_val])
            parts[0].append(idx[n_test + n_val :])
        # Sorted, so each split keeps the file's row order (often time order).
        train, val, test = (np.sort(np.concatenate(p)) for p in parts)
        return train, val, test
    codes = _dense(groups)
    sizes = np.bincount(codes)
    has_positive = np.bincount(codes, weights=y) > 0
    shares = (test_fraction, val_fraction, 1 - val_fraction - test_fraction)
    for stratum in (False, True):
        chosen = rng.permutation(np.flatnonzero(has_positive == stratum))
        for part, block in zip((parts[2], parts[1], parts[0]), _cut_groups(chosen, sizes, shares)):
            part.append(block)
    return tuple(np.flatnonzero(np.isin(codes, np.concatenate(p))) for p in parts)  # type: ignore[return-value]


def make_folds(
    y: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    times: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> list[Fold]:
    """K (train, validation) position pairs over the development rows (``Dataset.dev()``).

    Without ``times``: stratified K-fold; with ``groups`` no group is in two folds and
    groups are dealt so each fold gets a similar number of positives and rows. With
    ``times``: forward chaining over ``k + 1`` blocks in time order; fold ``i`` trains on
    blocks ``0..i`` and validates on block ``i + 1``, so every validation row is later
    than every training row (block edges never cut equal times). With both, blocks are
    whole groups ordered by their first time.

    Args:
        y: 0/1 labels of the development rows.
        k: Number of folds, at least 2.
        seed: Seed for the random assignment (unused with ``times``).
        times: Ordering key per row.
        groups: Entity code per row.

    Raises:
        DataError: When ``k`` is too small or a fold would have no positives on either side.
    """
    y = np.asarray(y)
    n, positives = len(y), int(y.sum())
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise DataError(f"folds must be an integer >= 2, got {k!r}")
    for name, values in (("times", times), ("groups", groups)):
        if values is not None and len(values) != n:
            raise DataError(f"{name} has {len(values)} values for {n} rows")
    if times is not None:
        blocks = _time_blocks(np.asarray(times), k + 1, groups)
        folds = [(np.sort(np.concatenate(blocks[: i + 1])), np.sort(blocks[i + 1])) for i in range(k)]
    else:
        fold_of = _stratified_fold_ids(y, k, seed) if groups is None else _group_fold_ids(y, k, seed, groups)
        folds = [(np.flatnonzero(fold_of != i), np.flatnonzero(fold_of == i)) for i in range(k)]
    for i, (train, val) in enumerate(folds):
        for side, rows in (("training", train), ("validation", val)):
            if len(rows) == 0 or int(y[rows].sum()) == 0:
                raise DataError(
                    f"{k} folds over {n} rows with {positives} positives: fold {i} has no positives "
                    f"in its {side} part; use fewer folds"
                )
    return folds


def _dense(groups: np.ndarray) -> np.ndarray:
    """Entity values to codes 0..G-1."""
    return np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)


def _group_first_times(groups: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense group codes and each group's earliest time."""
    codes = _dense(groups)
    first = np.full(codes.max() + 1 if len(codes) else 0, np.inf)
    np.minimum.at(first, codes, np.asarray(times, dtype=np.float64))
    return codes, first


def _cut_groups(order: np.ndarray, sizes: np.ndarray, shares: Sequence[float]) -> list[np.ndarray]:
    """Cut groups, taken in ``order``, into consecutive parts holding ``shares`` of their rows.

    A group goes to the part its middle row falls in, so a large group does not
    push the whole remainder into the next part.
    """
    rows = sizes[order]
    middle = np.cumsum(rows) - rows / 2.0
    edges = np.cumsum(shares)[:-1] * rows.sum()
    part = np.searchsorted(edges, middle, side="right")
    return [order[part == i] for i in range(len(shares))]


def _time_blocks(times: np.ndarray, n_blocks: int, groups: np.ndarray | None) -> list[np.ndarray]:
    """Row positions of ``n_blocks`` consecutive blocks in time order."""
    if groups is not None:
        codes, first = _group_first_times(groups, times)
        parts = _cut_groups(np.argsort(first, kind="stable"), np.bincount(codes), [1.0 / n_blocks] * n_blocks)
        return [np.flatnonzero(np.isin(codes, p)) for p in parts]
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    edges = []
    for j in range(1, n_blocks):
        edge = int(np.searchsorted(ordered, ordered[min(round(len(order) * j / n_blocks), len(order) - 1)], "left"))
        edges.append(edge)  # moved back to the first row of that time: equal times share a block
    return np.split(order, edges)


def _stratified_fold_ids(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per row, each class dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    offset = 0
    for cls in (1, 0):  # positives first: the scarce class is spread before the sizes are evened
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold_of[idx] = (offset + np.arange(idx.size)) % k
        offset = (offset + idx.size) % k
    return fold_of


def _group_fold_ids(y: np.ndarray, k: int, seed: int, groups: np.ndarray) -> np.ndarray:
    """Fold number per row: whole groups, positives balanced first, then rows."""
    rng = np.random.default_rng(seed)
    codes = _dense(groups)
    sizes = np.bincount(codes)
    pos = np.bincount(codes, weights=y).astype(np.int64)
    shuffled = rng.permutation(len(sizes))
    # Largest first (greedy bin packing); the shuffle breaks ties by seed.
    order = shuffled[np.lexsort((-sizes[shuffled], -pos[shuffled]))]
    fold_pos, fold_rows = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    fold_of_group = np.empty(len(sizes), dtype=np.int64)
    for g in order:
        # Groups with positives go where positives are fewest; the rest where rows are.
        f = int(np.lexsort((fold_rows, fold_pos))[0]) if pos[g] else int(np.argmin(fold_rows))
        fold_of_group[g] = f
        fold_pos[f] += pos[g]
        fold_rows[f] += sizes[g]
    return fold_of_group[codes]

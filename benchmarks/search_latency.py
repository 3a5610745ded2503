"""Suggestion latency of each searcher after 10 / 100 / 1,000 finished trials, without Ray.

    python -m benchmarks.search_latency                       # every model-based searcher
    python -m benchmarks.search_latency --searchers tpe cmaes --sizes 10 100 --repeats 3

Each searcher is built the way a job builds it (``tuning.search.build.build_searcher``
on the spec :mod:`benchmarks.search_efficiency` runs, then Tune's
``set_search_properties`` with the job's metric, mode and ``param_space``) and fed
synthetic finished trials the way Tune feeds them: ``suggest(id)`` then
``on_trial_complete(id, {metric: value})``, where the value is a smooth function of the
config plus noise (so model-based searchers have something to fit). At each size,
``--repeats`` further suggestions are timed (each also completed, so the size grows by
one per repeat); the median is reported.

Each searcher runs in its own subprocess with a wall-clock cap (``--cap-s``): a
searcher whose suggestions grow too slow to feed (``gp``) is fed the rest of the way
with ``add_evaluated_point`` (the warm-start path, which skips the suggestion) once one
suggestion costs more than ``--feed-limit-s``, and a size it cannot reach within the
cap is reported as not measured, with the extrapolation marked as such by the caller.
``random``, ``grid`` (no model: sampling costs microseconds) and ``two_stage`` (its
second stage is ``tpe``) are not measured separately.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from typing import Any, Sequence

MODEL_BASED = ("tpe", "gp", "optuna_tpe", "cmaes", "qmc", "nsga2")
SIZES = (10, 100, 1000)


def synthetic_value(config: dict[str, Any], rng: Any) -> float:
    """A made-up AUC-PR: best near eta 0.05, depth 6, child weight 3, plus noise."""
    score = 0.8 - 0.05 * (math.log(config["eta"] / 0.05)) ** 2
    score -= 0.004 * (config["max_depth"] - 6) ** 2
    score -= 0.02 * (math.log(config["min_child_weight"] / 3.0)) ** 2
    score -= 0.1 * (1 - config["subsample"]) ** 2 + 0.05 * (1 - config["colsample_bytree"]) ** 2
    return float(score + rng.normal(0, 0.01))


def measure(algorithm: str, sizes: Sequence[int], repeats: int, feed_limit_s: float,
            samples: int) -> None:
    """Runs in the subprocess: one JSON line per finished size on stdout.

    It leaves the process's logging and warnings as they were (the child entry point
    silences them; a test calls this in its own process).
    """
    import argparse as _argparse
    import tempfile
    from pathlib import Path

    import numpy as np

    from benchmarks.search_efficiency import job_spec
    from tuning.search.build import build_searcher
    from tuning.search.space import param_space
    from tuning.spec import parse_spec

    ns = _argparse.Namespace(rows=20_000, fraud_rate=0.02, rounds=100, report_every=10,
                             samples=samples, concurrent=2)
    with tempfile.TemporaryDirectory() as tmp:
        spec = parse_spec(job_spec(algorithm, 0, ns, Path(tmp), "synthetic"))
    searcher = build_searcher(spec)
    metric, mode = spec.objective.tune_key, spec.objective.resolved_mode
    searcher.set_search_properties(metric, mode, param_space(spec))
    rng = np.random.default_rng(0)
    done, direct, last_s = 0, 0, 0.0

    def one() -> float:
        nonlocal done
        trial_id = f"t{done}"
        t0 = time.perf_counter()
        config = searcher.suggest(trial_id)
        spent = time.perf_counter() - t0
        searcher.on_trial_complete(trial_id, {metric: synthetic_value(config, rng)})
        done += 1
        return spent

    for size in sizes:
        while done < size:
            if last_s > feed_limit_s and hasattr(searcher, "add_evaluated_point"):
                config = {n: d.sample() for n, d in param_space(spec).items()}
                searcher.add_evaluated_point(config, synthetic_value(config, rng))
                done += 1
                direct += 1
            else:
                last_s = one()
        times = [one() for _ in range(repeats)]
        last_s = statistics.median(times)
        print(json.dumps({"searcher": algorithm, "finished": size, "ms": 1000 * last_s,
                          "repeats": repeats, "fed_without_suggest": direct}), flush=True)


def run_all(searchers: Sequence[str], sizes: Sequence[int], repeats: int, cap_s: float,
            feed_limit_s: float, samples: int) -> list[dict[str, Any]]:
    """Each searcher in a subprocess under ``cap_s``; the sizes it finished."""
    out = []
    for algorithm in searchers:
        cmd = [sys.executable, "-m", "benchmarks.search_latency", "--child", algorithm,
               "--sizes", *map(str, sizes), "--repeats", str(repeats),
               "--feed-limit-s", str(feed_limit_s), "--samples", str(samples)]
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap_s)
            stdout, capped = proc.stdout, False
        except subprocess.TimeoutExpired as err:
            stdout = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            capped = True
        rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        reached = {r["finished"] for r in rows}
        for size in sizes:
            if size not in reached:
                rows.append({"searcher": algorithm, "finished": size, "ms": None,
                             "capped": capped})
        shown = ", ".join(f"{r['finished']}: " + ("-" if r["ms"] is None else f"{r['ms']:.1f} ms")
                          for r in rows)
        print(f"{algorithm}: {shown} ({time.monotonic() - started:.0f}s)", file=sys.stderr,
              flush=True)
        out += rows
    return out


def extrapolate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill a size not measured from the last two measured ones (a power law in the
    number of trials), marked ``extrapolated``."""
    out = []
    for algorithm in dict.fromkeys(r["searcher"] for r in rows):
        mine = sorted((r for r in rows if r["searcher"] == algorithm), key=lambda r: r["finished"])
        known = [r for r in mine if r["ms"]]
        for r in mine:
            if r["ms"] is None and len(known) >= 2:
                (n1, m1), (n2, m2) = [(k["finished"], k["ms"]) for k in known[-2:]]
                slope = math.log(m2 / m1) / math.log(n2 / n1)
                r = {**r, "ms": m2 * (r["finished"] / n2) ** slope, "extrapolated": True}
            out.append(r)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searchers", nargs="+", default=list(MODEL_BASED))
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20, help="the job budget the spec names")
    parser.add_argument("--cap-s", type=float, default=240, help="wall cap per searcher")
    parser.add_argument("--feed-limit-s", type=float, default=0.5,
                        help="above this per suggestion, feed with add_evaluated_point")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.child:
        import logging
        import warnings

        # The child's stdout is the JSON lines; searchers' warnings would only be noise.
        logging.disable(logging.WARNING)
        warnings.simplefilter("ignore")
        measure(args.child, args.sizes, args.repeats, args.feed_limit_s, args.samples)
        return 0
    rows = extrapolate(run_all(args.searchers, args.sizes, args.repeats, args.cap_s,
                               args.feed_limit_s, args.samples))
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

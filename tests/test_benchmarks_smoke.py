"""The benchmark harness: its arithmetic, and one real method run end to end.

No timing is asserted: benchmarks report figures, tests only check they are computed.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.common import METHODS, time_to_target
from benchmarks.compare import derive, main, markdown, ratios, summarise


def _record(method: str, seed: int, timeline: list[list[float]], wall: float = 10.0) -> dict:
    return {"method": method, "seed": seed, "wall_s": wall, "timeline": timeline,
            "train_s": {"a": 6.0, "b": 4.0}, "n_trials": 2, "n_results": len(timeline),
            "best_val": max(v for _, v in timeline), "best_config": {}, "best_round": 10,
            "test_aucpr": 0.5, "mlflow_ms_per_result": None,
            "settings": {"cores": 2}}


def test_time_to_target_reads_the_best_so_far_timeline():
    timeline = [[5.0, 0.7], [1.0, 0.2], [3.0, 0.5]]  # out of order on purpose
    assert time_to_target(timeline, 0.5) == 3.0
    assert time_to_target(timeline, 0.71) is None


def test_derive_computes_efficiency_and_per_trial_overhead():
    row = derive(_record("project", 0, [[2.0, 0.4], [4.0, 0.6]]), target=0.55)
    assert row["efficiency"] == pytest.approx(10.0 / 20.0)
    assert row["overhead_s"] == pytest.approx((20.0 - 10.0) / 2)
    assert row["time_to_target_s"] == 4.0


def test_summary_and_ratios_over_seeds():
    rows = [derive(_record("project", s, [[t, 0.6]]), 0.59) for s, t in ((0, 2.0), (1, 4.0))]
    rows += [derive(_record("naive_raytune", s, [[8.0, 0.6]]), 0.59) for s in (0, 1)]
    summary = summarise(rows, ["naive_raytune", "project"])
    assert summary["project"]["time_to_target_s"] == {"median": 3.0, "min": 2.0, "max": 4.0,
                                                      "missing": 0}
    assert ratios(rows)["time to target, project / naive_raytune"] == pytest.approx(0.375)
    table = markdown(summary, ratios(rows), "t")
    assert "| project | 2 |" in table and "3.0 (2.0–4.0)" in table


def test_every_method_module_has_a_run_function():
    import importlib

    assert set(METHODS) == {"naive_raytune", "optuna", "project"}
    for module in METHODS.values():
        assert callable(importlib.import_module(module).run)


@pytest.mark.slow
def test_compare_runs_a_method_in_a_subprocess_and_writes_results(tmp_path):
    # Optuna is the one method that runs in seconds; the others start Ray (minutes on 2 cores).
    pytest.importorskip("optuna")
    assert main(["--quick", "--methods", "optuna", "--trials", "3", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "compare.json").read_text())
    (run,) = saved["runs"]
    assert run["method"] == "optuna" and run["n_trials"] == 3
    assert 0 < run["best_val"] <= 1 and 0 < run["test_aucpr"] <= 1
    assert run["time_to_target_s"] is not None  # the only method reaches its own best
    assert saved["raw"][0]["timeline"]
    assert "| optuna | 1 |" in (tmp_path / "compare.md").read_text()


@pytest.mark.slow
def test_quality_quick_compares_the_three_methods_on_the_same_rows(tmp_path, ray_session, capsys):
    # One split of the claims file with a tiny budget: the harness, not the figures, is tested.
    pytest.importorskip("optuna")
    from benchmarks.quality import METHODS
    from benchmarks.quality import main as quality_main
    from benchmarks.quality_data import CLAIMS
    from conftest import missing_real_part

    if not CLAIMS.exists():  # shared/ sits beside the repository (CI lays a copy there)
        missing_real_part("the shared claims file", f"{CLAIMS} does not exist")

    assert quality_main(["--quick", "--splits", "1", "--trials", "3", "--rounds", "30",
                         "--out", str(tmp_path)]) == 0
    table = (tmp_path / "quality.md").read_text()
    assert all(f"| {method} |" in table for method in METHODS)
    runs = json.loads((tmp_path / "quality.json").read_text())["runs"]
    assert {r["method"] for r in runs} == set(METHODS)
    assert all(0 < r["test_aucpr"] <= 1 and r["data"] == "claims" for r in runs)
    (project,) = [r for r in runs if r["method"] == "this project"]
    assert project["minus_baseline"] is not None and project["cv_folds"] == 5
    assert "| claims |" in capsys.readouterr().out


def test_search_efficiency_ratios_are_to_random_asha_and_never_reached_is_infinite():
    import math

    from benchmarks.search_efficiency import BASELINE, markdown, quantile, table

    assert BASELINE == "random+asha"
    curves = {"synthetic": {
        "random+asha": {0: [[2.0, 0.5], [8.0, 0.7]], 1: [[4.0, 0.6]]},
        "tpe+asha": {0: [[4.0, 0.71]], 1: [[1.0, 0.5]]},  # seed 1: never reaches 0.6
    }}
    walls = {"synthetic": {"random+asha": {0: 10.0, 1: 12.0}, "tpe+asha": {0: 9.0, 1: 11.0}}}
    rows = {r["method"]: r for r in table(curves, walls)}
    assert rows["random+asha"]["ratio_median"] == 1.0
    tpe = rows["tpe+asha"]
    assert tpe["ratio_per_seed"] == {0: 0.5, 1: math.inf} and tpe["reached"] == "1/2"
    assert tpe["ratio_median"] == math.inf and tpe["ratio_min"] == 0.5
    assert quantile([0.5, 1.0, math.inf], 0.5) == 1.0 and quantile([1.0, math.inf], 0.25) == math.inf
    assert tpe["vs_baseline"] == "1/0/1"
    assert "| synthetic | tpe+asha | 2 | ∞ (" in markdown(list(rows.values()), "t")


def test_search_latency_measures_a_searcher_in_process_and_extrapolates(capsys):
    import json

    from benchmarks.search_latency import extrapolate, measure

    measure("cmaes", [3], repeats=1, feed_limit_s=10.0, samples=8)
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["searcher"] == "cmaes" and row["finished"] == 3 and row["ms"] > 0
    rows = [{"searcher": "gp", "finished": n, "ms": ms} for n, ms in ((10, 1.0), (100, 10.0))]
    (*_, far) = extrapolate(rows + [{"searcher": "gp", "finished": 1000, "ms": None}])
    assert far["extrapolated"] and abs(far["ms"] - 100.0) < 1e-6


def test_cv_rule_pairs_the_two_arms_of_each_split():
    from benchmarks.cv_rule import markdown, pairs, rows_for

    assert rows_for(1000, 0.05) == 25_000
    runs = [{"target_positives": 500, "rows": 12_500, "seed": s, "cv": cv, "test_aucpr": a,
             "wall_s": w, "search_s": w / 2}
            for s, cv, a, w in ((0, 1, 0.70, 10.0), (0, 5, 0.72, 20.0), (1, 5, 0.69, 30.0))]
    (cell,) = pairs(runs)[500]  # split 1 has one arm only: not paired
    assert cell["aucpr_cv5"] - cell["aucpr_cv1"] == pytest.approx(0.02)
    assert "| cards (500) | 12,500 | ~500 | +0.0200 | +0.0200 | 0.7000 | 2.0× | 2.0× |" in markdown(runs, "t")


def test_scale_writes_cached_shards_a_valid_spec_per_mode_and_keeps_other_cells(tmp_path):
    # The data writer, the specs and the table, not a job (a `tuning run` takes half a minute).
    import os

    import yaml

    from benchmarks.scale import MemorySampler, build_spec, markdown, merge, write_shards
    from trainables.tables import read_table
    from tuning.spec import load_spec

    folder = write_shards(tmp_path / "data", rows=3_000, shard_rows=1_000, fraud_rate=0.01)
    assert len(list(folder.glob("*.parquet"))) == 3 and read_table(str(folder)).shape[0] == 3_000
    stamp = (folder / "part-00000.parquet").stat().st_mtime_ns
    write_shards(folder, rows=3_000, shard_rows=1_000, fraud_rate=0.01)  # cached: not rewritten
    assert (folder / "part-00000.parquet").stat().st_mtime_ns == stamp
    for mode, workers in (("single", None), ("dp2", 2)):
        spec_file = tmp_path / f"{mode}.yaml"
        spec_file.write_text(yaml.safe_dump(build_spec(folder, mode, 4, 50, tmp_path)))
        spec = load_spec(spec_file)
        assert spec.resources.workers == workers and spec.evaluation.cv == 1
        assert spec.data.path == str(folder) and spec.budget.num_samples == 4
    sampler = MemorySampler(os.getpid(), period_s=0.05)
    peaks = sampler.stop()
    assert peaks["driver_peak_rss_gib"] > 0 and peaks["memory_samples"] >= 1
    cell = {"rows": 1_000_000, "trials": 4, "rounds": 50, "load_before": [1.0],
            "load_after": [2.0], "status": "ok", "whole_command_s": 60.0}
    old = [{**cell, "mode": "single"}, {**cell, "mode": "dp2", "status": "failed (exit 1)"}]
    merged = merge(old, [{**cell, "mode": "dp2"}])
    assert [(c["mode"], c["status"]) for c in merged] == [("single", "ok"), ("dp2", "ok")]
    assert "| 1,000,000 | dp2 (4×50) | ok | 60 |" in markdown(merged, {"cores": 2, "memory_gib": 24})

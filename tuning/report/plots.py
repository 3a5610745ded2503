"""Figures of a job report: each builder returns (matplotlib figure, plotly figure).

The matplotlib figure becomes a PNG (for the README, MLflow's artifact view, a
chat message); the plotly figure goes into the interactive HTML page. Both show
the same data. Matplotlib figures are built without pyplot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from tuning.tracking.store import Trial

_STATUS_MARK = {"FINISHED": "o", "KILLED": "x", "FAILED": "s", "RUNNING": "^"}


def _subplots(*grid: int, figsize: tuple[float, float]) -> tuple[Any, Any]:
    # The object-oriented API needs no pyplot and no backend switch, so building a
    # report never disturbs the caller's matplotlib state (e.g. in a notebook).
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid)


def best_so_far(values: Sequence[float], mode: str) -> list[float]:
    out: list[float] = []
    for v in values:
        out.append(v if not out else (max if mode == "max" else min)(out[-1], v))
    return out


def history(trials: list[Trial], metric: str, mode: str) -> tuple[Any, Any]:
    """Objective per trial vs start time and vs trial number, with the best so far."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    scored = [t for t in trials if t.best_value is not None]
    t0 = min((t.start_time for t in trials), default=0)
    secs = [(t.start_time - t0) / 1000 for t in scored]
    nums = [t.number for t in scored]
    vals = [t.best_value for t in scored]
    best = best_so_far(vals, mode)
    labels = [f"{t.trial_id} ({t.status})" for t in scored]
    fig, axes = _subplots(1, 2, figsize=(11, 4))
    pfig = make_subplots(rows=1, cols=2, subplot_titles=("vs trial start time", "vs trial number"))
    for col, (ax, xs, xlabel) in enumerate(
            [(axes[0], secs, "trial start (s after the first)"), (axes[1], nums, "trial number")],
            start=1):
        for status, mark in _STATUS_MARK.items():
            idx = [i for i, t in enumerate(scored) if t.status == status]
            if idx:
                ax.scatter([xs[i] for i in idx], [vals[i] for i in idx], marker=mark,
                           label=status.lower(), alpha=0.8)
        ax.step(xs, best, where="post", color="black", label="best so far")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        pfig.add_trace(go.Scatter(x=xs, y=vals, mode="markers", name="trial", text=labels,
                                  showlegend=col == 1, marker={"color": "#1f77b4"}), 1, col)
        pfig.add_trace(go.Scatter(x=xs, y=best, mode="lines", line_shape="hv", name="best so far",
                                  showlegend=col == 1, line={"color": "black"}), 1, col)
        pfig.update_xaxes(title_text=xlabel, row=1, col=col)
        pfig.update_yaxes(title_text=metric, row=1, col=col)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Optimisation history ({metric}, {mode})")
    fig.tight_layout()
    pfig.update_layout(title=f"Optimisation history ({metric}, {mode})", height=420)
    return fig, pfig


def encoded(trials: list[Trial], names: list[str]) -> tuple[np.ndarray, dict[str, list]]:
    """Params as a float matrix; text params become category codes (their labels kept)."""
    columns, categories = [], {}
    for name in names:
        raw = [t.params.get(name) for t in trials]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            columns.append([float(v) for v in raw])
        else:
            labels = sorted({str(v) for v in raw})
            categories[name] = labels
            columns.append([float(labels.index(str(v))) for v in raw])
    return np.array(columns, dtype=float).T.reshape(len(trials), len(names)), categories


def parallel(trials: list[Trial], metric: str) -> tuple[Any, Any]:
    """Parallel coordinates of the hyperparameters, coloured by the objective."""
    import matplotlib
    import matplotlib.cm
    import matplotlib.colors
    import plotly.graph_objects as go

    scored = [t for t in trials if t.best_value is not None]
    names = sorted({k for t in scored for k in t.params})
    X, cats = encoded(scored, names)
    y = np.array([t.best_value for t in scored])
    dims = []
    for j, name in enumerate(names):
        dim = {"label": name, "values": X[:, j]}
        if name in cats:
            dim.update(tickvals=list(range(len(cats[name]))), ticktext=cats[name])
        dims.append(dim)
    dims.append({"label": metric, "values": y})
    pfig = go.Figure(go.Parcoords(line={"color": y, "colorscale": "Viridis", "showscale": True},
                                  dimensions=dims))
    pfig.update_layout(title=f"Hyperparameters coloured by {metric}", height=450)
    fig, ax = _subplots(figsize=(11, 4.5))
    full = np.column_stack([X, y]) if len(scored) else np.zeros((0, len(names) + 1))
    lo, hi = full.min(axis=0, initial=np.inf), full.max(axis=0, initial=-np.inf)
    scaled = (full - lo) / np.where(hi > lo, hi - lo, 1.0)
    cmap = matplotlib.colormaps["viridis"]
    span = (y.max() - y.min()) if len(y) and y.max() > y.min() else 1.0
    for row, value in zip(scaled, y):
        ax.plot(range(len(names) + 1), row, color=cmap((value - y.min()) / span), alpha=0.8)
    ax.set_xticks(range(len(names) + 1))
    ax.set_xticklabels([*names, metric], rotation=20)
    for j in range(len(names) + 1):
        ax.axvline(j, color="grey", lw=0.5)
        if len(scored):
            ax.text(j, -0.06, f"{lo[j]:.3g}", ha="center", va="top", fontsize=7)
            ax.text(j, 1.04, f"{hi[j]:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    if len(y):
        norm = matplotlib.colors.Normalize(y.min(), y.max())
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric)
    ax.set_title(f"Hyperparameters coloured by {metric} (axes scaled min..max)")
    fig.tight_layout()
    return fig, pfig


def importance(rows: list[tuple[str, float]], metric: str) -> tuple[Any, Any]:
    """Horizontal bars, most important on top."""
    import plotly.graph_objects as go

    ordered = sorted(rows, key=lambda r: r[1])
    fig, ax = _subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    ax.barh([r[0] for r in ordered], [r[1] for r in ordered], color="#4c72b0")
    ax.set_xlabel(f"importance for {metric} (random-forest surrogate)")
    ax.set_title("Hyperparameter importance")
    fig.tight_layout()
    pfig = go.Figure(go.Bar(x=[r[1] for r in ordered], y=[r[0] for r in ordered],
                            orientation="h"))
    pfig.update_layout(title="Hyperparameter importance (random-forest surrogate)",
                       xaxis_title=f"importance for {metric}",
                       height=150 + 40 * len(rows))
    return fig, pfig


def learning_curves(trials: list[Trial], metric: str) -> tuple[Any, Any]:
    """Objective vs boosting round for every trial; an X where a trial was stopped early."""
    import plotly.graph_objects as go

    fig, ax = _subplots(figsize=(9, 4.5))
    pfig = go.Figure()
    stopped_x, stopped_y = [], []
    for t in trials:
        points = t.history.get(metric, [])
        if not points:
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, alpha=0.7, lw=1, marker=".")
        pfig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=t.trial_id,
                                  opacity=0.75))
        if t.stopped_early:
            stopped_x.append(xs[-1])
            stopped_y.append(ys[-1])
    if stopped_x:
        ax.scatter(stopped_x, stopped_y, marker="x", color="red", s=40, zorder=3,
                   label="stopped early")
        ax.legend()
        pfig.add_trace(go.Scatter(x=stopped_x, y=stopped_y, mode="markers", name="stopped early",
                                  marker={"symbol": "x", "color": "red", "size": 10}))
    ax.set_xlabel("boosting round")
    ax.set_ylabel(metric)
    ax.set_title(f"Learning curves ({len(trials)} trials)")
    fig.tight_layout()
    pfig.update_layout(title="Learning curves", xaxis_title="boosting round", yaxis_title=metric,
                       height=450)
    return fig, pfig


def pr_roc(curve: Any, threshold: float | None, title: str) -> tuple[Any, Any]:
    """PR and ROC curves of one scored split, with the operating point marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    recall = np.concatenate(([0.0], curve.recall))
    precision = np.concatenate(([1.0], curve.precision))
    fpr = np.concatenate(([0.0], curve.fpr))
    point = None
    if threshold is not None:
        conf = curve.confusion_at(threshold)
        point = (conf.recall, conf.precision, conf.fpr)
    fig, (ax1, ax2) = _subplots(1, 2, figsize=(10, 4.2))
    ax1.step(recall, precision, where="post")
    ax1.set(xlabel="recall", ylabel="precision", title=f"PR (AP {curve.average_precision():.3f})",
            xlim=(0, 1), ylim=(0, 1.02))
    ax2.plot(fpr, recall)
    ax2.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
    ax2.set(xlabel="false-positive rate", ylabel="recall",
            title=f"ROC (AUC {curve.roc_auc():.3f})", xlim=(0, 1), ylim=(0, 1.02))
    pfig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"PR (AP {curve.average_precision():.3f})", f"ROC (AUC {curve.roc_auc():.3f})"))
    pfig.add_trace(go.Scatter(x=recall, y=precision, line_shape="hv", name="PR"), 1, 1)
    pfig.add_trace(go.Scatter(x=fpr, y=recall, name="ROC"), 1, 2)
    if point is not None:
        label = f"threshold {threshold:.4g}"
        ax1.scatter([point[0]], [point[1]], color="red", zorder=3, label=label)
        ax2.scatter([point[2]], [point[0]], color="red", zorder=3, label=label)
        ax1.legend(fontsize=8)
        pfig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name=label,
                                  marker={"color": "red", "size": 10}), 1, 1)
        pfig.add_trace(go.Scatter(x=[point[2]], y=[point[0]], mode="markers", showlegend=False,
                                  marker={"color": "red", "size": 10}), 1, 2)
    fig.suptitle(title)
    fig.tight_layout()
    pfig.update_xaxes(title_text="recall", row=1, col=1)
    pfig.update_yaxes(title_text="precision", row=1, col=1)
    pfig.update_xaxes(title_text="false-positive rate", row=1, col=2)
    pfig.update_yaxes(title_text="recall", row=1, col=2)
    pfig.update_layout(title=title, height=430)
    return fig, pfig


def pareto(points: list[dict], front: list[dict]) -> tuple[Any, Any]:
    """Validation recall vs FPR of every trial at its own threshold; the front joined."""
    import plotly.graph_objects as go

    fig, ax = _subplots(figsize=(7, 4.5))
    ax.scatter([p["fpr"] for p in points], [p["recall"] for p in points], alpha=0.6,
               label="trials")
    ax.step([p["fpr"] for p in front], [p["recall"] for p in front], where="post", color="red",
            marker="o", label="Pareto front")
    ax.set(xlabel="validation false-positive rate", ylabel="validation recall",
           title="Recall vs FPR at each trial's threshold")
    ax.legend()
    fig.tight_layout()
    text = [f"{p['trial_id']} thr={p['threshold']:.4g}" for p in points]
    pfig = go.Figure([
        go.Scatter(x=[p["fpr"] for p in points], y=[p["recall"] for p in points], mode="markers",
                   name="trials", text=text),
        go.Scatter(x=[p["fpr"] for p in front], y=[p["recall"] for p in front],
                   mode="lines+markers", line_shape="hv", name="Pareto front",
                   text=[f"{p['trial_id']} thr={p['threshold']:.4g}" for p in front],
                   line={"color": "red"}),
    ])
    pfig.update_layout(title="Recall vs FPR at each trial's threshold (validation)",
                       xaxis_title="false-positive rate", yaxis_title="recall", height=430)
    return fig, pfig


def objectives_pareto(rows: list[dict], x: str, y: str) -> tuple[Any, Any]:
    """Two objectives of a multi-objective job at each trial's best round; members joined.

    ``rows`` hold ``trial_id``, ``x``, ``y``, ``member`` (on the Pareto set) and ``infeasible``.
    """
    import plotly.graph_objects as go

    groups = {"Pareto set": [r for r in rows if r["member"]],
              "infeasible": [r for r in rows if r["infeasible"]],
              "other trials": [r for r in rows if not r["member"] and not r["infeasible"]]}
    style = {"Pareto set": ("red", "o"), "infeasible": ("grey", "x"), "other trials": ("#1f77b4", ".")}
    fig, ax = _subplots(figsize=(7, 4.5))
    for name, group in groups.items():
        if group:
            color, marker = style[name]
            ax.scatter([r[x] for r in group], [r[y] for r in group], color=color, marker=marker,
                       label=name)
    members = sorted(groups["Pareto set"], key=lambda r: r[x])
    ax.plot([r[x] for r in members], [r[y] for r in members], color="red", alpha=0.5)
    ax.set(xlabel=x, ylabel=y, title="Objectives at each trial's best round")
    ax.legend()
    fig.tight_layout()
    pfig = go.Figure([
        go.Scatter(x=[r[x] for r in group], y=[r[y] for r in group], name=name,
                   mode="lines+markers" if name == "Pareto set" else "markers",
                   text=[r["trial_id"] for r in group], marker={"color": style[name][0]})
        for name, group in (("Pareto set", members), *list(groups.items())[1:]) if group
    ])
    pfig.update_layout(title="Objectives at each trial's best round", xaxis_title=x,
                       yaxis_title=y, height=430)
    return fig, pfig

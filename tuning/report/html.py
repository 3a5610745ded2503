"""The report's single HTML page: summary, tables and interactive plotly figures.

plotly.js is inlined once (first figure), so the page opens offline and from an
MLflow artifact view without fetching anything.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

from tuning.report.sections import Section
from tuning.tracking.store import Job, model_uri

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.9em; } .skipped { color: #a33; }
h2 { border-bottom: 1px solid #ddd; margin-top: 2em; }
"""


def escape(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row.values()) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _when(ms: int | None) -> str:
    return "" if not ms else dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def summary_rows(job: Job) -> list[dict]:
    best = job.best
    rows: list[tuple[str, Any]] = [
        ("job", job.name), ("experiment", job.experiment_name), ("parent run", job.run_id),
        ("status", job.status), ("started", _when(job.start_time)),
        ("ended", _when(job.end_time)),
        ("trials", f"{len(job.trials)} ({job.count('FINISHED')} finished, "
                   f"{job.count('KILLED')} stopped early, {job.count('FAILED')} failed)"),
        ("objective", f"{job.metric} ({job.mode})"),
        ("searcher / scheduler", f"{job.tags.get('tuning.searcher', '?')} / "
                                 f"{job.tags.get('tuning.scheduler', '?')}"),
    ]
    if best is not None:
        rows += [("best trial", f"{best.trial_id} (run {best.run_id})"),
                 (f"best {job.metric}", best.best_value), ("best round", best.best_round),
                 ("threshold", job.params.get("best.threshold")),
                 ("model", model_uri(job))]
    rows += [(k, v) for k, v in sorted(job.metrics.items()) if k.startswith("test_")]
    return [{"": k, "value": v} for k, v in rows]


def render(job: Job, sections: list[Section], skipped: dict[str, str],
           trials: list[dict]) -> str:
    """The whole page as one string."""
    import plotly.io as pio  # heavy: plotly

    parts = [f"<h1>Tuning report: {escape(job.name)}</h1>", table(summary_rows(job))]
    if skipped:
        parts.append("<p class='skipped'>Skipped sections: " + "; ".join(
            f"{escape(k)} ({escape(v)})" for k, v in skipped.items()) + "</p>")
    inline = True
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{escape(section.note)}</p>")
        parts.append(pio.to_html(section.figures[1], full_html=False, include_plotlyjs=inline,
                                 config={"displaylogo": False}))
        inline = False
        parts.append(table(section.table))
    parts += ["<h2>All trials</h2>", table(trials)]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Tuning report: "
            f"{escape(job.name)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")

"""A job report from the tracking store: PNGs, one self-contained HTML page, logged
on the parent run under ``report/``.

Every section is built from what MLflow holds (plus the logged spec and model for
the test-set curves), so ``tuning report`` works on any finished job. A section
that cannot be built (e.g. a data file that moved) is listed as skipped with the
reason; the rest of the report is still written.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from tuning.report.data import trials_table
from tuning.report.html import render
from tuning.report.sections import SECTIONS, Section
from tuning.tracking.store import Job, load_job

logger = logging.getLogger(__name__)

ARTIFACT_DIR = "report"
HTML_NAME = "report.html"


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    files: list[Path]
    skipped: dict[str, str]
    logged: bool


def build_report(tracking_uri: str, name_or_run_id: str, out_dir: str | Path | None = None,
                 log: bool = True, job: Job | None = None) -> ReportResult:
    """Write the report of a job and (by default) log it on the parent run.

    Args:
        tracking_uri: The MLflow store.
        name_or_run_id: Parent run id, job name or experiment name (newest job).
        out_dir: Local folder; default ``reports/<job>-<run id[:8]>``.
        log: Also log the folder as artifacts ``report/`` on the parent run.
        job: An already loaded job (skips the store query).
    """
    job = job or load_job(tracking_uri, name_or_run_id)
    out = Path(out_dir or Path("reports") / f"{job.name}-{job.run_id[:8]}")
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    sections: list[Section] = []
    skipped: dict[str, str] = {}
    for key, builder in SECTIONS.items():
        try:
            section = builder(job)
        except Exception as err:  # noqa: BLE001 - one broken section must not sink the report
            skipped[key] = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            logger.warning("report section %s skipped: %s", key, skipped[key])
            continue
        if section is None:  # not this kind of job's (e.g. the Pareto set of objectives)
            continue
        path = out / f"{key}.png"
        section.figures[0].savefig(path, dpi=110)
        files.append(path)
        if section.table:
            files.append(_write_csv(out / f"{key}.csv", section.table))
        sections.append(section)
    files.append(_write_csv(out / "trials.csv", trials_table(job)))
    page = out / HTML_NAME
    page.write_text(render(job, sections, skipped, trials_table(job)))
    files.append(page)
    if log:
        from mlflow.tracking import MlflowClient  # heavy: mlflow (the CLI imports this module)

        MlflowClient(tracking_uri).log_artifacts(job.run_id, str(out), ARTIFACT_DIR)
    return ReportResult(out_dir=out, html=page, files=files, skipped=skipped, logged=log)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def report_on_finish(tracking_uri: str, parent_run_id: str,
                     out_dir: str | Path | None = None) -> ReportResult | None:
    """Build and log the report at the end of a job; never raises (logs a warning).

    Returns:
        The report, or None when it failed.
    """
    started = time.monotonic()
    try:
        result = build_report(tracking_uri, parent_run_id, out_dir=out_dir)
    except Exception as err:  # noqa: BLE001 - a report must never fail the job it describes
        logger.warning("job report failed (the job itself is fine; retry with `tuning report "
                       "%s`): %s", parent_run_id, str(err).splitlines()[0] if str(err) else err)
        return None
    logger.info("report written to %s and logged on run %s (%.1fs)", result.html, parent_run_id,
                time.monotonic() - started)
    return result

"""The MLflow UI shows a job as a parent run with nested trial runs and metric charts.

Drives headless Chromium (Playwright for Python, Debian's ``chromium`` package:
``scripts/install_browser.sh``) against a real ``mlflow server`` on 127.0.0.1.
Skips, with the reason, when no browser is installed. ``UPDATE_SCREENSHOTS=1``
also writes docs/img/mlflow_ui.png and docs/img/mlflow_trial_metrics.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TINY = {
    "name": "browser-tiny",
    "data": {"source": "synthetic", "rows": 5000, "fraud_rate": 0.04, "seed": 4},
    "objective": {"metric": "aucpr"},
    "search_space": {"eta": {"type": "loguniform", "low": 0.05, "high": 0.3},
                     "max_depth": {"type": "randint", "low": 2, "high": 5}},
    "search": {"algorithm": "random", "seed": 0},
    "scheduler": {"type": "fifo"},
    "training": {"num_boost_round": 20, "report_every": 5},
    "evaluation": {"cv": 1},  # CV is not this test's subject
    "budget": {"num_samples": 3, "max_concurrent": 2},
}
# The expand button of a parent run's name cell in MLflow 3's runs table.
EXPAND = "button[data-component-id$='runnamecellrenderer.tsx_46']"


def browser_path() -> str | None:
    """A Chromium executable: $TUNING_BROWSER, else the first on PATH."""
    if os.environ.get("TUNING_BROWSER"):
        return os.environ["TUNING_BROWSER"]
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chromium():
    from conftest import missing_real_part

    try:
        import playwright.sync_api as playwright
    except ImportError:
        missing_real_part("playwright", "not installed (pip install -e .[dev])")
    path = browser_path()
    if path is None:
        missing_real_part("Chromium", "none on PATH: run scripts/install_browser.sh")
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=path, headless=True,
                                        args=["--no-sandbox", "--disable-dev-shm-usage"])
        except Exception as err:  # noqa: BLE001 - any launch failure means no usable browser
            missing_real_part("Chromium", f"cannot start {path}: {str(err).splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    from tuning.spec import parse_spec
    from tuning.job.lifecycle import run_job

    tmp = tmp_path_factory.mktemp("browser")
    spec = parse_spec({**TINY, "tracking": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db"},
                       "storage": {"path": str(tmp / "runs")}})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # a SQLite store keeps artifacts under ./mlruns
        return run_job(spec, progress=False)


@pytest.fixture(scope="module")
def server(finished, tmp_path_factory):
    """A real ``mlflow server`` over the job's store, stopped (its process group) after."""
    port = free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", finished.tracking_uri, "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _save(page, tmp_path: Path, name: str) -> Path:
    # MLflow 3.x opens an assistant side panel; close it so the screenshot shows the runs.
    close = page.locator("button[data-component-id='mlflow.assistant.chat_panel.close']")
    if close.count():
        close.first.click()
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / name)
    return shot


def test_ui_lists_parent_and_trial_runs_with_metric_charts(chromium, server, finished, tmp_path):
    page = chromium.new_page(viewport={"width": 1500, "height": 850})
    page.set_default_timeout(60_000)
    page.goto(f"{server}/#/experiments/{finished.experiment_id}/runs")
    parent = page.locator(f"a[href$='/runs/{finished.parent_run_id}']")
    parent.wait_for()
    assert parent.inner_text().strip() == "browser-tiny"
    # Trials are nested under the parent: collapsed until its row is expanded.
    page.locator("[role=row]", has=parent).locator(EXPAND).click()
    children = [f"browser-tiny-{t.trial_id}" for t in finished.trials]
    for name in children:
        page.get_by_text(name, exact=True).first.wait_for()
    _save(page, tmp_path, "mlflow_ui.png")

    # A trial's page charts its metric history (val_* per boosting round).
    page.get_by_text(children[0], exact=True).first.click()
    page.wait_for_url("**/runs/*")
    run_id = page.url.split("/runs/")[1].split("/")[0]
    assert run_id in _child_ids(finished)
    page.goto(f"{server}/#/experiments/{finished.experiment_id}/runs/{run_id}/model-metrics")
    card = page.locator("[data-testid=experiment-view-compare-runs-card]",
                        has=page.locator("h4[title=val_aucpr]"))
    line = card.locator(".js-plotly-plot path.js-line").first
    line.wait_for(state="attached")
    assert (line.get_attribute("d") or "").startswith("M")  # a drawn line, not an empty chart
    _save(page, tmp_path, "mlflow_trial_metrics.png")
    page.close()


def _child_ids(finished) -> set[str]:
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(finished.tracking_uri).search_runs(
        [finished.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{finished.parent_run_id}'")
    return {r.info.run_id for r in runs}


def test_report_from_the_same_store_the_server_shows(finished, server, tmp_path):
    """The report reads the job back through the HTTP server, as a remote user would."""
    from tuning.report.build import build_report

    report = build_report(server, finished.parent_run_id, out_dir=tmp_path, log=False)
    assert report.skipped == {}
    assert (report.out_dir / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"

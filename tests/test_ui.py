"""The MLflow UI as a user sees it, in headless Chromium: a finished `make run` opened by the
links that `make run` and `make ui` print.

Marked ``cluster`` (``make test-cluster``, the second step of ``.ci/run``): it starts a server
and a browser. Chromium and its driver come from Debian (``apt-get install chromium
chromium-driver``, which ``.ci/run`` does); Selenium drives them by path, nothing is downloaded.
Screenshots go to ``outputs/ui/``; ``make ui-picture`` runs this test and copies the runs
table's into ``docs/mlflow-runs-table.png``, the README's picture.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, answers, free_port, run_cli, stop, wait_for

pytestmark = pytest.mark.cluster

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = ROOT / "outputs" / "ui"
PICTURE = ROOT / "docs" / "mlflow-runs-table.png"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no chromium or chromedriver: apt-get install chromium chromium-driver "
                    "(.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def make_ui(cwd: Path, port: int) -> subprocess.Popen:
    """What `make ui PORT=port` starts, on the store of a run made in ``cwd``."""
    store = cwd / "outputs" / "mlflow.db"
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "ui", "--backend-store-uri",
         f"sqlite:///{store}", "--default-artifact-root", str(cwd / "outputs" / "mlartifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def page(driver, url: str, expect: str, timeout: float = 60):
    """Open ``url`` and wait until the page's text holds ``expect``; return that text."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = driver.find_element(By.TAG_NAME, "body").text
        if expect in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{url}: no {expect!r} after {timeout:.0f} s; the page says: {text[:500]}")


def close_assistant(driver) -> None:
    """MLflow 3.17 opens its Assistant beside every page, a third of the width: close it."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        button.click()
    time.sleep(0.5)


def test_the_ui_shows_a_finished_run_as_the_printed_links_open_it(browser, tmp_path):
    done = run_cli(["cell=gru", "warmup=partial", "trainer.progress=false", "trainer.threads=1"],
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = re.search(r"browse: (\S+)", done.stdout).group(1)  # make run's link to the run
    port = free_port()
    ui = make_ui(tmp_path, port)
    here = f"http://127.0.0.1:{port}"
    try:
        links = subprocess.run([sys.executable, "-m", "src.tracking",
                                f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}", here],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
        table = re.search(r"warmup: (\S+)", links).group(1)  # make ui's link to the runs table
        run = printed.replace("http://127.0.0.1:5000", here)
        SHOTS.mkdir(parents=True, exist_ok=True)

        wait_for(lambda: answers(here), 120, "the MLflow UI")
        text = page(browser, run, "Metrics")
        close_assistant(browser)
        metrics = text[text.index("Metrics"):text.index("Parameters")]
        for name in ("test/loss", "vaa", "settled", "attractors"):
            assert f"\n{name}\n" in metrics, metrics
        browser.save_screenshot(str(SHOTS / "run.png"))

        text = page(browser, table, "gru-partial-copy-s0")
        close_assistant(browser)
        from selenium.webdriver.common.by import By

        headers = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role=columnheader]")]
        for name in ("attractors", "settled", "test/loss", "vaa", "cell"):
            assert name in headers, headers
        browser.save_screenshot(str(SHOTS / "runs-table.png"))

        artifacts = run.replace("?workflowType", "/artifacts?workflowType")
        text = page(browser, artifacts, "attractors.png")
        for name in ("config.yaml", "checkpoint", "weights"):
            assert name in text
        browser.save_screenshot(str(SHOTS / "artifacts.png"))
    finally:
        stop(ui)
    assert (SHOTS / "runs-table.png").stat().st_size > 10_000
    if os.environ.get("UPDATE_UI_PICTURE") == "1":  # make ui-picture
        shutil.copyfile(SHOTS / "runs-table.png", PICTURE)

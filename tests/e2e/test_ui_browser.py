"""The web UI in a real browser (issue 13): headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by scripts/install_test_deps.sh) opens the UI of a local
cluster, sees its agents, then sees a task launched with the CLI appear and finish, all
without a reload. The screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.testing.local_cluster import LocalCluster

MESOSLITE = Path(sys.executable).parent / "mesoslite"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WAIT_S = 30


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Chromium or chromedriver is not installed and could not be installed "
                    "(run scripts/install_test_deps.sh as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    # An explicit driver path: selenium would otherwise try to download one.
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def text_of(chrome: Any, table_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(chrome.find_element(By.ID, table_id).text)


def test_the_ui_shows_agents_and_a_cli_task_appearing_and_finishing_without_a_reload(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    with LocalCluster(tmp_path / "cluster", agents=2) as cluster:
        agents = [a.id for a in cluster.wait_for_agents(2)]
        browser.get(cluster.http_url())
        wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.2)
        wait.until(lambda c: all(a in text_of(c, "agents") for a in agents))
        # Set on this page load only: still there at the end means no reload happened.
        browser.execute_script("window.loadedOnce = true")
        task = subprocess.Popen(
            [str(MESOSLITE), "run", "--name", "ui-visible", "--", "sleep", "3"],
            env=cluster.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait.until(lambda c: "ui-visible" in text_of(c, "tasks"))
            wait.until(lambda c: _row(c, "ui-visible").count("TASK_FINISHED") == 1)
            assert task.wait(timeout=WAIT_S) == 0
        finally:
            if task.poll() is None:
                task.kill()
                task.wait()
        assert browser.execute_script("return window.loadedOnce") is True
        assert "live" in browser.find_element("id", "live").text
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "ui.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")


def _row(chrome: Any, name: str) -> str:
    return next((line for line in text_of(chrome, "tasks").splitlines() if name in line), "")


def test_mesoslite_local_prints_the_url_of_a_ui_that_answers(tmp_path: Path) -> None:
    import re
    import time
    import urllib.request

    from tests.e2e.conftest import stop_local

    out = tmp_path / "local.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [str(MESOSLITE), "local", "--agents", "1", "--port", "0", "--http-port", "0",
             "--work-dir", str(tmp_path / "local")],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        url = re.search(r"see the UI at (http://\S+)", out.read_text())
        assert url, out.read_text()
        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert "<title>mesoslite</title>" in page.read().decode()
        with urllib.request.urlopen(url.group(1) + "health", timeout=10) as health:
            assert health.status == 200
    finally:
        stop_local(proc)

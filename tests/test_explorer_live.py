"""The live fingerprint explorer as its users meet it: Voila on 127.0.0.1, headless Chromium.

Starts ``voila notebooks/explorer.ipynb`` with the repository's Voila set-up
(``notebooks/jupyter``: 127.0.0.1 only, a template without CDN stylesheets), as
``make explore`` does, on the mini benchmark with 2 frames per folder; then picks another
generator, wavelet and level and checks that the plot and the players follow. Skips
without Chromium or Voila, unless GPWAVE_REQUIRE_BOOK=1 (as ``make test`` sets).
A screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_book_browser as book_browser
from test_book_browser import ARTIFACTS, DECODE_AUDIO, _unavailable

pytestmark = pytest.mark.browser
driver = book_browser.driver  # the book test's headless Chromium (same flags, same binaries)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"
JUPYTER = REPO / "notebooks" / "jupyter"  # voila.json, the offline template, the kernel
STATE = """
return {
  img: (document.querySelector('.widget-output img') || {}).src || '',
  audio: Array.from(document.querySelectorAll('.widget-audio, audio')).map(a => a.src || ''),
};
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def explorer(mini_root: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """Voila serving the explorer on a free port of 127.0.0.1: (URL, its log); then stopped."""
    if importlib.util.find_spec("voila") is None:
        _unavailable("voila is not installed: pip install -e '.[explore]'")
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_PATH": os.pathsep.join(
            filter(None, [str(JUPYTER), os.environ.get("JUPYTER_PATH")])
        ),
        "JUPYTER_CONFIG_PATH": str(JUPYTER),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "GPWAVE_EXPLORER_DATA": str(mini_root),
        "GPWAVE_EXPLORER_FRAMES": "2",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    cmd = [sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "running at" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"voila did not start (exit {proc.poll()}):\n{log.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _state(driver) -> dict:
    return driver.execute_script(STATE)


def _until_changed(driver, before: dict, players: tuple[int, ...], what: str) -> dict:
    """Wait until the plot and the given players (0 real, 1 fake, 2 fingerprint) change."""
    from selenium.webdriver.support.ui import WebDriverWait

    def changed(d) -> dict | bool:
        now = _state(d)
        ok = now["img"] and now["img"] != before["img"] and len(now["audio"]) == 3
        ok = ok and all(now["audio"][i] and now["audio"][i] != before["audio"][i] for i in players)
        return now if ok else False

    try:
        return WebDriverWait(driver, 30, poll_frequency=0.2).until(changed)
    except Exception:
        raise AssertionError(f"after {what}: plot or players did not change") from None


def _open(driver, explorer_url: str, attempts: int = 3) -> dict:
    """Load the page until the plot and the three players are there: their state.

    On a machine with more runnable processes than cores, headless Chromium now and then
    stops reading Voila's streamed page half-way ("Executing 3 of 4") although the kernel
    has finished (the Voila log shows it idle within seconds); a reader would reload, and
    so does this, with a fresh kernel each time. Three stalled loads fail the test.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    stalls = []
    for attempt in range(attempts):
        driver.get_log("browser")
        try:
            driver.get(explorer_url)
            return WebDriverWait(driver, 60, poll_frequency=0.2).until(
                lambda d: (
                    (s := _state(d))["img"].startswith("data:image/png") and all(s["audio"]) and s
                )
            )
        except TimeoutException as err:
            stalls.append(f"load {attempt + 1}: {err.msg.splitlines()[0]}")
    raise AssertionError("the explorer never finished loading: " + "; ".join(stalls))


def test_live_explorer_follows_generator_wavelet_and_level(driver, explorer) -> None:
    url, log = explorer
    ARTIFACTS.mkdir(exist_ok=True)
    driver.set_page_load_timeout(60)  # Voila answers once the notebook has run (~5 s here)
    try:
        _drive(driver, url)
    except Exception as err:
        driver.save_screenshot(str(ARTIFACTS / "explorer_live_failed.png"))
        raise AssertionError(f"{err}\n--- voila log ---\n{log.read_text()[-4000:]}") from err


def _drive(driver, explorer_url: str) -> None:
    """Open the page, pick another generator, wavelet and level; check what changes."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    ready = _open(driver, explorer_url)
    assert len(ready["audio"]) == 3 and all(a.startswith("blob:") for a in ready["audio"])

    generators = driver.find_element(By.CSS_SELECTOR, ".widget-select-multiple select")
    assert generators.get_attribute("multiple")
    hifigan = generators.find_element(By.XPATH, "./option[normalize-space()='hifigan']")
    ActionChains(driver).click(hifigan).perform()  # a mouse click: hifigan alone is chosen
    assert [o.text for o in Select(generators).all_selected_options] == ["hifigan"]
    after_generator = _until_changed(driver, ready, (1, 2), "picking hifigan")

    wavelet = Select(driver.find_element(By.CSS_SELECTOR, ".widget-dropdown select"))
    assert wavelet.first_selected_option.text == "haar"
    wavelet.select_by_visible_text("db4")
    after_wavelet = _until_changed(driver, after_generator, (2,), "picking db4")

    level = driver.find_element(
        By.XPATH, "//div[contains(@class,'widget-hslider')][.//label[normalize-space()='level']]"
    )
    readout = level.find_element(By.CSS_SELECTOR, ".widget-readout")
    assert readout.text == "14"
    readout.click()
    readout.send_keys(Keys.CONTROL, "a")
    readout.send_keys("10", Keys.ENTER)
    after_level = _until_changed(driver, after_wavelet, (2,), "setting level 10")
    assert level.find_element(By.CSS_SELECTOR, ".widget-readout").text == "10"
    assert (
        len({ready["img"], after_generator["img"], after_wavelet["img"], after_level["img"]}) == 4
    )

    decoded = driver.execute_async_script(DECODE_AUDIO)
    assert len(decoded) == 3 and all(r.get("ok") for r in decoded), decoded
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    remote = [r for r in resources if not r.startswith((explorer_url, "data:", "blob:"))]
    assert not remote, f"the explorer page requested remote resources: {remote}"
    severe = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not severe, f"console errors: {severe}"
    driver.save_screenshot(str(ARTIFACTS / "explorer_live.png"))

"""The built book in a real browser: headless Chromium, served from 127.0.0.1, offline.

Build the book first (`gpwave book --quick` or `make book`). Without a built book these
tests skip, unless GPWAVE_REQUIRE_BOOK=1 (as `make test` sets), where they fail.
Screenshots of every chapter land in test-artifacts/.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "book" / "_build" / "html"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("GPWAVE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GPWAVE_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRE = os.environ.get("GPWAVE_REQUIRE_BOOK") == "1"


def _pages() -> list[str]:
    """Every page of the table of contents, as paths relative to the HTML root."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return [f"{f}.html" for f in files]


PAGES = _pages()
NOTEBOOK_PAGES = [p for p in PAGES if p.startswith("executed/")]


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Serve book/_build/html on a free port of 127.0.0.1 in a thread."""
    if not (HTML / "index.html").is_file():
        _unavailable(f"{HTML} is not built: run `gpwave book --quick` first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    """Headless Chromium via selenium, with no network but the loopback."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        _unavailable(f"{CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gpwave-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


WAIT_FOR_MATH = """
const done = arguments[arguments.length - 1];
const mj = window.MathJax;
if (mj && mj.startup && mj.startup.promise) {
  mj.startup.promise.then(() => done(true), () => done(false));
} else {
  done(true);
}
"""


def _open(driver, url: str) -> list[dict]:
    """Load a page, wait until it and its math are rendered; return its console log."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages left
    driver.get(url)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.execute_async_script(WAIT_FOR_MATH)
    return driver.get_log("browser")


def _screenshot(driver, page: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height), 900), 12000))
    driver.save_screenshot(str(ARTIFACTS / (page.replace("/", "_").removesuffix(".html") + ".png")))
    driver.set_window_size(1280, 1600)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_offline_without_console_errors(driver, base_url: str, page: str) -> None:
    log = _open(driver, base_url + page)
    severe = [e["message"] for e in log if e.get("level") == "SEVERE"]
    assert not severe, f"{page}: console errors: {severe}"
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    remote = [r for r in resources if not r.startswith((base_url, "data:", "blob:"))]
    assert not remote, f"{page} requested remote resources: {remote}"
    title = driver.execute_script("return document.querySelector('main h1')?.textContent || ''")
    assert title.strip(), f"{page} has no heading"
    _screenshot(driver, page)


@pytest.mark.parametrize("page", PAGES)
def test_images_present_and_decoded(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    images = driver.execute_script(
        "return Array.from(document.querySelectorAll('main img')).map("
        "i => [i.currentSrc.slice(0, 80), i.complete, i.naturalWidth, i.naturalHeight])"
    )
    broken = [i for i in images if not (i[1] and i[2] > 0 and i[3] > 0)]
    assert not broken, f"{page}: images not decoded: {broken}"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_figures_have_content(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    n_figures = driver.execute_script("return document.querySelectorAll('main figure img').length")
    n_captions = driver.execute_script(
        "return document.querySelectorAll('main figure figcaption').length"
    )
    assert n_captions >= n_figures
    if page.endswith(("01_fingerprints.html", "04_generalization.html", "06_attribution.html")):
        assert n_figures >= 1, f"{page}: no captioned figure"
    if page.endswith("07_robustness.html"):
        assert n_figures >= 2, f"{page}: expected the sweep and the speakers figures"


DECODE_AUDIO = """
const done = arguments[arguments.length - 1];
const audios = Array.from(document.querySelectorAll('audio'));
const ctx = new OfflineAudioContext(1, 1, 22050);
Promise.all(audios.map(async (a) => {
  const src = a.currentSrc || a.src || (a.querySelector('source') || {}).src || '';
  if (!src) return {src: '', ok: false, error: 'no source'};
  try {
    const buf = await (await fetch(src)).arrayBuffer();
    const audio = await ctx.decodeAudioData(buf);
    return {src: src.slice(0, 60), ok: audio.duration > 0, duration: audio.duration};
  } catch (e) {
    return {src: src.slice(0, 60), ok: false, error: String(e)};
  }
})).then(done, e => done([{ok: false, error: String(e)}]));
"""


@pytest.mark.parametrize("page", PAGES)
def test_every_audio_element_decodes(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    results = driver.execute_async_script(DECODE_AUDIO)
    bad = [r for r in results if not r.get("ok")]
    assert not bad, f"{page}: audio that does not decode: {bad[:5]}"
    if page.endswith(("01_fingerprints.html", "02_data.html", "07_robustness.html")):
        assert len(results) >= 2, f"{page}: expected audio players, found {len(results)}"


def test_math_renders_offline(driver, base_url: str) -> None:
    _open(driver, base_url + "method.html")
    n_svg = driver.execute_script("return document.querySelectorAll('mjx-container svg').length")
    raw = driver.execute_script(
        "return Array.from(document.querySelectorAll('div.math')).filter("
        "d => !d.querySelector('mjx-container')).length"
    )
    assert n_svg >= 5, "MathJax did not typeset the method chapter"
    assert raw == 0, f"{raw} display equations left as TeX"


def test_static_explorer_switches_generator(driver, base_url: str) -> None:
    from selenium.webdriver.support.ui import Select

    _open(driver, base_url + "executed/01_fingerprints.html")
    selects = driver.find_elements("css selector", ".gpwave-explorer select")
    assert selects, "no kernel-free explorer with a <select> on the fingerprints page"
    select = Select(selects[0])
    assert len(select.options) >= 2

    def sources() -> list[str]:
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('.gpwave-explorer audio')).map("
            "a => a.currentSrc || a.src || (a.querySelector('source') || {}).src || '')"
        )

    def images() -> list[str]:
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('.gpwave-explorer img'))"
            ".filter(i => i.offsetParent !== null).map(i => i.src)"
        )

    before_audio, before_img = sources(), images()
    current = select.first_selected_option.get_attribute("value")
    other = next(
        o.get_attribute("value") for o in select.options if o.get_attribute("value") != current
    )
    select.select_by_value(other)
    after_audio, after_img = sources(), images()
    assert after_audio != before_audio, "switching generator did not change the player source"
    assert after_img != before_img or not before_img, "switching generator did not change the plot"
    results = driver.execute_async_script(DECODE_AUDIO)
    assert all(r.get("ok") for r in results)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.find_element("css selector", ".gpwave-explorer").screenshot(
        str(ARTIFACTS / "explorer_switched.png")
    )


def test_training_chapter_says_for_every_seed_whether_it_converged(driver, base_url: str) -> None:
    _open(driver, base_url + "executed/03_train.html")
    text = driver.find_element("css selector", "main").text
    seeds = re.findall(r"^seed (\d+): [\d,]+ parameters", text, re.M)
    notes = re.findall(r"^\s*seed (\d+): (?:converged|NOT CONVERGED) - ", text, re.M)
    assert seeds, "the training chapter prints no per-seed summary"
    assert notes == seeds, f"convergence lines for seeds {notes}, trained seeds {seeds}"


def test_robustness_chapter_counts_noisy_real_frames_called_fake(driver, base_url: str) -> None:
    # the released models' verdicts under noise and their log-odds EER, side by side
    _open(driver, base_url + "executed/07_robustness.html")
    text = driver.find_element("css selector", "main").text
    said = re.findall(
        r"(paper-\w+) calls (\d+) % of the real frames fake \(EER (\d+\.\d) %\)", text
    )
    assert {name for name, _, _ in said} == {"paper-sym5", "paper-stft"}, said
    assert all(0 <= int(share) <= 100 and 0 <= float(e) <= 100 for _, share, e in said)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_exercise_solutions_collapsed_until_clicked(driver, base_url: str, page: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, base_url + page)
    section = driver.find_elements("css selector", "main section#exercises")
    assert section and section[0].is_displayed(), f"{page}: no visible Exercises section"
    exercises = section[0].find_elements("css selector", "section h3")
    solutions = section[0].find_elements("css selector", "div.admonition.dropdown")
    assert 2 <= len(exercises) <= 3, f"{page}: {len(exercises)} exercises"
    assert len(solutions) == len(exercises), f"{page}: {len(solutions)} solutions"
    for k, solution in enumerate(solutions, start=1):
        title = solution.find_element("css selector", ".admonition-title")
        body = solution.find_elements("css selector", ":scope > :not(.admonition-title)")
        assert exercises[k - 1].is_displayed() and title.is_displayed()
        assert "Solution" in title.text, f"{page}: solution {k} is titled {title.text!r}"
        assert body and not any(b.is_displayed() for b in body), f"{page}: solution {k} open"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", title)
        title.click()
        WebDriverWait(driver, 5).until(lambda d, shown=body: all(b.is_displayed() for b in shown))
        assert solution.find_elements("css selector", "div.highlight pre"), f"{page}: no code"
    ARTIFACTS.mkdir(exist_ok=True)
    name = page.replace("/", "_").removesuffix(".html")
    section[0].screenshot(str(ARTIFACTS / f"{name}_exercises_open.png"))


VERDICTS = ("reproduced", "not at this scale", "contradicted", "not measured")
SCOREBOARD_PAGES = ["intro.html"] + [
    p for p in NOTEBOOK_PAGES if p.split("/")[-1][:2] in {"01", "04", "05", "06"}
]


@pytest.mark.parametrize("page", SCOREBOARD_PAGES)
def test_scoreboard_with_verdicts_and_links(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    rows = driver.execute_script(
        "const t = Array.from(document.querySelectorAll('main table')).find("
        "  t => (t.querySelector('thead') || t).textContent.includes('Deliverable'));"
        "return t ? Array.from(t.querySelectorAll('tbody tr')).map(r => r.textContent) : null;"
    )
    assert rows, f"{page}: no scoreboard table"
    assert len(rows) == 4, f"{page}: {len(rows)} deliverables in the scoreboard"
    for deliverable, row in zip(("fingerprints", "generalisation", "dilation", "attribution"), rows,
                                strict=True):  # fmt: skip
        assert deliverable in row, f"{page}: scoreboard row {row[:60]!r}"
        assert any(v in row for v in VERDICTS), f"{page}: no verdict in {row[:80]!r}"
    links = driver.execute_script(
        "return Array.from(document.querySelectorAll('main a')).map(a => a.href)"
    )
    assert any("arxiv.org/abs/2305.13033" in h for h in links), f"{page}: no link to the paper"
    assert any("github.com/gan-police/audiodeepfake-detection" in h for h in links)


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_chapter_ends_with_what_we_found(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    text = driver.execute_script(
        "const s = document.querySelector('main section#what-we-found');"
        "return s ? s.textContent : '';"
    )
    assert "%" in text or "utterance" in text, f"{page}: no computed 'What we found'"


FETCH_DOWNLOAD = """
const done = arguments[arguments.length - 1];
const links = Array.from(document.querySelectorAll('a')).filter(
  a => a.href.endsWith('.ipynb')
       && a.closest('.dropdown-download-buttons, .article-header-buttons'));
if (!links.length) { done({found: false}); return; }
fetch(links[0].href).then(r => r.ok ? r.json() : null).then(
  nb => done({found: true, href: links[0].href, cells: nb ? nb.cells.length : -1,
              outputs: nb ? nb.cells.some(c => (c.outputs || []).length) : false}),
  e => done({found: true, href: links[0].href, cells: -1, error: String(e)}));
"""


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_download_button_gives_the_executed_notebook(driver, base_url: str, page: str) -> None:
    _open(driver, base_url + page)
    got = driver.execute_async_script(FETCH_DOWNLOAD)
    assert got.get("found"), f"{page}: no .ipynb download button"
    assert got["href"].startswith(base_url), f"{page}: download not served locally: {got}"
    assert got["cells"] > 0 and got["outputs"], f"{page}: download is not the executed notebook"


WIDE_TABLES = """
const col = document.querySelector('main article') || document.querySelector('main');
const right = col.getBoundingClientRect().right;
return Array.from(col.querySelectorAll('table')).filter(
  t => t.getBoundingClientRect().right > right + 1).map(
  t => [(t.querySelector('th') || t).textContent.trim().slice(0, 40),
        Math.round(t.getBoundingClientRect().width), Math.round(col.clientWidth)]);
"""


@pytest.mark.parametrize("page", PAGES)
def test_no_table_wider_than_the_text_column(driver, base_url: str, page: str) -> None:
    driver.set_window_size(1280, 1600)
    _open(driver, base_url + page)
    wide = driver.execute_script(WIDE_TABLES)
    assert not wide, f"{page}: tables wider than the text column at 1280 px: {wide}"


def test_course_map_and_glossary(driver, base_url: str) -> None:
    _open(driver, base_url + "course.html")
    text = driver.find_element("css selector", "main").text
    for heading in ("Learning goals", "Prerequisites", "Chapters, time and dependencies",
                    "Running a chapter on your own machine"):  # fmt: skip
        assert heading in text, f"course map lacks {heading!r}"
    linked = driver.execute_script(
        "return Array.from(document.querySelectorAll('main table a')).map(a => a.href)"
    )
    for page in NOTEBOOK_PAGES:
        assert any(h.endswith(page) for h in linked), f"course map does not link {page}"
    _open(driver, base_url + "glossary.html")
    terms = driver.execute_script(
        "return Array.from(document.querySelectorAll('main dl.glossary dt')).map(d => d.id)"
    )
    assert len(terms) >= 15, f"glossary has {len(terms)} terms"
    _open(driver, base_url + "method.html")
    refs = driver.execute_script(
        "return Array.from(document.querySelectorAll('main a')).filter("
        "a => a.href.includes('glossary.html#')).map(a => a.href.split('#')[1])"
    )
    assert refs and set(refs) <= set(terms), f"method's glossary links {refs} not in {terms}"

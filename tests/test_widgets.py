"""Audio tables, the kernel-free explorer and the live explorer's view, parsed as HTML."""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _signals import SR, make_tree, noise, tone, write_wav

from gpwave import fingerprints as fp
from gpwave import widgets

Q = 1 / 2**15  # one 16-bit step


class Elements(HTMLParser):
    """Every start tag as (tag, attrs), and the text inside <script> elements."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        def has(a):
            return cls is None or cls in (a.get("class") or "").split()

        return [a for t, a in self.tags if t == tag and has(a)]


def decode_wav(uri: str) -> tuple[np.ndarray, int, str]:
    head, b64 = uri.split(",", 1)
    assert head == "data:audio/wav;base64"
    buf = io.BytesIO(base64.b64decode(b64))
    info = sf.info(buf)
    buf.seek(0)
    x, sr = sf.read(buf, dtype="float32")
    return x, sr, info.subtype


def _spectra(level: int = 6) -> dict[str, fp.FingerprintSpectrum]:
    def spec(name, mean, label):
        freqs = (np.arange(2**level) + 0.5) * SR / 2 ** (level + 1)
        return fp.FingerprintSpectrum(name, mean, 0.2 * mean, 4, freqs, "haar", level, label)

    base = np.linspace(1.0, 0.1, 2**level)
    spike = base.copy()
    spike[40] *= 5
    return {"ljspeech": spec("ljspeech", base, 0), "melgan": spec("melgan", spike, 1),
            "hifigan": spec("hifigan", base * 0.8, 1)}  # fmt: skip


def _rows() -> list[dict]:
    return [
        {"generator": "melgan", "real": tone(440, 0.25), "fake": noise(0.25, seed=1),
         "fingerprint": tone(880, 0.5)},
        {"generator": "hifigan", "real": tone(440, 0.25), "fake": noise(0.25, seed=2),
         "fingerprint": tone(1760, 0.5)},
    ]  # fmt: skip


# --- audio_table -------------------------------------------------------------------------------
def test_audio_table_players_decode_back_to_their_signals(tmp_path):
    x = tone(300, 0.2)
    path = write_wav(tmp_path / "clip.wav", noise(0.1, seed=5), sr=16000)
    rows = [
        {"generator": "melgan <b>", "real": x, "fake": (x * 0.5, 8000), "score": 0.12345},
        {"generator": "hifigan", "real": path, "fake": None, "note": "file"},
    ]
    doc = Elements(widgets.audio_table(rows, caption="listen"))
    assert [a for t, a in doc.tags if t == "table"][0]["class"] == "gpwave-audio-table"
    audios = doc.find("audio")
    assert len(audios) == 3 and all("controls" in a for a in audios)
    (y0, sr0, sub0), (y1, sr1, _), (y2, sr2, _) = (decode_wav(a["src"]) for a in audios)
    assert (sr0, sr1, sr2, sub0) == (SR, 8000, 16000, "PCM_16")
    np.testing.assert_allclose(y0, x, atol=Q)
    np.testing.assert_allclose(y1, x * 0.5, atol=Q)
    np.testing.assert_allclose(y2, sf.read(path, dtype="float32")[0], atol=Q)
    html = widgets.audio_table(rows)
    assert "<th>score</th>" in html and "<td>0.123</td>" in html and "melgan &lt;b&gt;" in html
    assert len(doc.find("th")) == 5 and "http://" not in html and "https://" not in html


def test_audio_table_column_choice():
    html = widgets.audio_table(_rows(), columns=["generator", "fingerprint"])
    doc = Elements(html)
    assert len(doc.find("audio")) == 2 and len(doc.find("th")) == 2


# --- static_explorer ---------------------------------------------------------------------------
def test_static_explorer_is_self_contained_and_switchable():
    spectra, rows = _spectra(), _rows()
    html = widgets.static_explorer(spectra, audio=rows)
    doc = Elements(html)
    (div,) = doc.find("div", "gpwave-explorer")
    assert div["id"].startswith("gpwave-explorer-")
    assert html == widgets.static_explorer(spectra, audio=rows)  # stable ids and content
    assert [o["value"] for o in doc.find("option")] == ["melgan", "hifigan"]
    assert len(doc.find("select", "gpwave-explorer-select")) == 1
    (img,) = doc.find("img", "gpwave-explorer-plot")
    assert img["src"].startswith("data:image/png;base64,")
    players = {a["data-kind"]: a for a in doc.find("audio", "gpwave-explorer-audio")}
    assert set(players) == {"real", "fake", "fingerprint"}
    for kind, player in players.items():  # the first generator is shown initially
        np.testing.assert_allclose(decode_wav(player["src"])[0], rows[0][kind], atol=Q)
    assert "http://" not in html and "https://" not in html and "<link" not in html
    data = json.loads(next(t for a, t in doc.scripts if a.get("type") == "application/json"))
    assert set(data["choices"]) == {"melgan", "hifigan"}
    for row in rows:
        choice = data["choices"][row["generator"]]
        for kind in ("real", "fake", "fingerprint"):
            decoded = decode_wav(data["sources"][choice["audio"][kind]])[0]
            np.testing.assert_allclose(decoded, row[kind], atol=Q)
    assert data["choices"]["melgan"]["plot"] != data["choices"]["hifigan"]["plot"]
    # the shared real clip is stored once
    assert data["choices"]["melgan"]["audio"]["real"] == data["choices"]["hifigan"]["audio"]["real"]


def test_static_explorer_synthesises_missing_fingerprints():
    spectra = _spectra()
    doc = Elements(widgets.static_explorer(spectra, element_id="fx"))
    assert doc.find("div", "gpwave-explorer")[0]["id"] == "fx"
    players = {a["data-kind"]: a for a in doc.find("audio", "gpwave-explorer-audio")}
    assert "src" not in players["real"]
    expected = fp.audible_fingerprint(spectra["melgan"], spectra["ljspeech"])
    np.testing.assert_allclose(decode_wav(players["fingerprint"]["src"])[0], expected, atol=Q)


@pytest.mark.browser
def test_static_explorer_switches_in_headless_chromium(tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    page = tmp_path / "explorer.html"
    body = widgets.static_explorer(_spectra(), audio=_rows())
    page.write_text(f"<!doctype html><html><body>{body}</body></html>")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        driver.get(Path(page).as_uri())
        src = "return document.querySelector('.gpwave-explorer audio[data-kind=fake]').src"
        img = "return document.querySelector('.gpwave-explorer img').src"
        before = driver.execute_script(src), driver.execute_script(img)
        Select(driver.find_element("css selector", ".gpwave-explorer select")).select_by_value(
            "hifigan"
        )
        after = driver.execute_script(src), driver.execute_script(img)
        assert after[0] != before[0] and after[1] != before[1]
        np.testing.assert_allclose(decode_wav(after[0])[0], _rows()[1]["fake"], atol=Q)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors
    finally:
        driver.quit()


# --- the live explorer -------------------------------------------------------------------------
def test_explorer_view_without_a_kernel(tmp_path):
    root = make_tree(tmp_path / "tree")
    cache = widgets.SpectraCache(root)
    view = widgets.explorer_view(cache, ["melgan", "hifigan"], "db2", 6, (1000, 4000), "linear")
    ax = view.figure.axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["ljspeech", "melgan", "hifigan"]
    assert ax.get_yscale() == "linear" and ax.get_lines()[0].get_xdata().max() <= 4.0
    assert set(view.audio) == {"real", "fake", "fingerprint"}
    expected = fp.audible_fingerprint(view.spectra["melgan"], view.spectra["ljspeech"])
    np.testing.assert_array_equal(view.audio["fingerprint"], expected)
    assert len(view.audio["fake"]) == SR and cache.get("db2", 6) is view.spectra  # cached


def test_explorer_widget_redraws_on_a_new_level(tmp_path):
    pytest.importorskip("ipywidgets")
    root = make_tree(tmp_path / "tree")
    spectra = fp.folder_spectra(root, "haar", 5)
    box = widgets.explorer(root, spectra=spectra)
    controls = {getattr(c, "description", ""): c for c in box.children}
    players = [v.children[1] for v in box.children[-1].children]
    fingerprint_before = players[2].value
    assert players[1].value  # fake audio present
    controls["level"].value = 7  # computes level-7 spectra on demand
    assert players[2].value != fingerprint_before

"""Listening and exploring: tables of audio players, the fingerprint explorer and its twin.

Everything here renders to self-contained HTML (audio as ``data:`` URIs of 16-bit wav,
figures as inline PNG), so the static book works offline and without a kernel.
:func:`audio_table` is the one helper every notebook uses for players;
:func:`static_explorer` is the kernel-free explorer; :func:`explorer` the live one.

Notebook: notebooks/01_fingerprints.py
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

from gpwave import fingerprints as fp
from gpwave import plots
from gpwave.constants import SAMPLE_RATE, AxisScale, check_option

_AUDIO_SUFFIXES = {".wav", ".flac"}
_AUDIO_KINDS = ("real", "fake", "fingerprint")


# --- data URIs -----------------------------------------------------------------------------
def wav_bytes(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode float samples in [-1, 1] as a 16-bit PCM wav file in memory.

    Args:
        x: Samples (N,) or (N, channels).
        sample_rate: Sample rate in Hz.

    Returns:
        The bytes of the wav file.
    """
    buf = io.BytesIO()
    sf.write(
        buf, np.clip(np.asarray(x, dtype=np.float32), -1, 1), sample_rate, "PCM_16", format="WAV"
    )
    return buf.getvalue()


def audio_data_uri(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> str:
    """A ``data:audio/wav;base64,...`` URI of samples (16-bit PCM).

    Args:
        x: Samples in [-1, 1].
        sample_rate: Sample rate in Hz.

    Returns:
        The URI, for the ``src`` of an ``<audio>`` element.
    """
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(x, sample_rate)).decode("ascii")


def figure_png(fig: Figure, dpi: int = 80, close: bool = True) -> bytes:
    """A matplotlib figure as PNG bytes (whatever the backend, Agg included).

    Args:
        fig: The figure.
        dpi: Resolution.
        close: Close the figure afterwards.

    Returns:
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        plt.close(fig)
    return buf.getvalue()


def figure_data_uri(fig: Figure, dpi: int = 80, close: bool = True) -> str:
    """A ``data:image/png;base64,...`` URI of a matplotlib figure.

    Args:
        fig: The figure.
        dpi: Resolution.
        close: Close the figure afterwards.

    Returns:
        The URI, for the ``src`` of an ``<img>`` element.
    """
    png = figure_png(fig, dpi, close)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _as_audio(value: Any, sample_rate: int) -> tuple[np.ndarray, int] | None:
    """(samples, rate) if ``value`` is audio: an array, (array, rate) or an audio file."""
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.size > 1:
        return value, sample_rate
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], np.ndarray):
        return value[0], int(value[1])
    if isinstance(value, str | Path) and Path(value).suffix.lower() in _AUDIO_SUFFIXES:
        if Path(value).is_file():
            x, rate = sf.read(value, dtype="float32")
            return x, rate
    return None


# --- the one table of audio players --------------------------------------------------------
def _cell(value: Any, sample_rate: int) -> str:
    audio = _as_audio(value, sample_rate)
    if audio is not None:
        src = audio_data_uri(*audio)
        return f'<td><audio controls preload="metadata" src="{src}"></audio></td>'
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<td></td>"
    if isinstance(value, float | np.floating):
        return f"<td>{value:.3f}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def audio_table(
    rows: Sequence[Mapping[str, Any]],
    sample_rate: int = SAMPLE_RATE,
    columns: Sequence[str] | None = None,
    caption: str | None = None,
) -> str:
    """An HTML table of audio players (e.g. real / fake / fingerprint), one row per item.

    Cells holding audio (a float array, an ``(array, sample_rate)`` pair, or the path of
    a .wav/.flac file) become ``<audio controls>`` with a 16-bit wav ``data:`` URI, so the
    page needs no files or network; other cells are text (floats with 3 decimals).

    Args:
        rows: One mapping per row, column name -> value.
        sample_rate: Sample rate of bare arrays.
        columns: Columns in order (default: every key, in order of first appearance).
        caption: Optional table caption.

    Returns:
        The HTML of a ``<table class="gpwave-audio-table">``.

    Notebook: notebooks/01_fingerprints.py
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(row.get(c), sample_rate) for c in columns) + "</tr>" for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="gpwave-audio-table">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


# --- the kernel-free explorer ----------------------------------------------------------------
_EXPLORER_JS = """
(function () {
  var root = document.getElementById(%(id)s);
  if (!root) { return; }
  var data = JSON.parse(root.querySelector("script.gpwave-explorer-data").textContent);
  var select = root.querySelector("select.gpwave-explorer-select");
  var img = root.querySelector("img.gpwave-explorer-plot");
  function show(name) {
    var choice = data.choices[name];
    img.src = data.sources[choice.plot];
    img.alt = "mean packet spectrum: " + name;
    root.querySelectorAll("audio.gpwave-explorer-audio").forEach(function (a) {
      var kind = a.getAttribute("data-kind");
      var cell = a.parentNode;
      if (kind in choice.audio) {
        a.src = data.sources[choice.audio[kind]];
        cell.style.display = "";
      } else {
        a.removeAttribute("src");
        cell.style.display = "none";
      }
    });
  }
  select.addEventListener("change", function () { show(select.value); });
  show(select.value);  // a browser may restore an earlier choice on reload
})();
"""


@dataclass
class _Pool:
    """Deduplicated data URIs, referenced by index from the explorer's choices."""

    sources: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, uri: str) -> int:
        if uri not in self.index:
            self.index[uri] = len(self.sources)
            self.sources.append(uri)
        return self.index[uri]


def _explorer_audio(
    spectra: Mapping[str, fp.FingerprintSpectrum], audio: Sequence[Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """Generator -> {kind: samples}; fingerprints are computed where ``audio`` has none."""
    given = {str(row["generator"]): row for row in audio or []}
    real = fp.real_spectrum(spectra)
    out = {}
    for name, spec in spectra.items():
        row = dict(given.get(name, {}))
        if row.get("fingerprint") is None:
            row["fingerprint"] = fp.audible_fingerprint(spec, real)
        out[name] = {k: row[k] for k in _AUDIO_KINDS if row.get(k) is not None}
    return out


def static_explorer(
    spectra: Mapping[str, fp.FingerprintSpectrum],
    audio: Sequence[Mapping[str, Any]] | None = None,
    *,
    scale: AxisScale = "log",
    freq_range: tuple[float, float] | None = None,
    element_id: str | None = None,
    dpi: int = 80,
) -> str:
    """The kernel-free fingerprint explorer: pick a generator, see and hear it, offline.

    Every choice is precomputed: one PNG of real vs the generator's spectrum and their
    difference in dB (:func:`gpwave.plots.plot_comparison`) and players for real,
    fake and fingerprint audio, all as ``data:`` URIs inside one
    ``<div class="gpwave-explorer">``. A ``<select class="gpwave-explorer-select">``
    switches the ``<img class="gpwave-explorer-plot">`` and the ``<audio
    class="gpwave-explorer-audio" data-kind="real|fake|fingerprint">`` sources with a few
    lines of inline JavaScript (it also works with only the first choice, without JS);
    no external URL is referenced.

    Args:
        spectra: Generator name -> spectrum, with exactly one real spectrum.
        audio: Rows as from :func:`gpwave.fingerprints.fingerprint_rows` (generator,
            real, fake, fingerprint); missing fingerprints are synthesised.
        scale: "log" or "linear" magnitude axis of the plots.
        freq_range: (low, high) in Hz to plot.
        element_id: The id of the outer div (default: derived from the content).
        dpi: Resolution of the plots.

    Returns:
        The HTML.

    Notebook: notebooks/01_fingerprints.py
    """
    check_option(scale, AxisScale, "scale")
    real = fp.real_spectrum(spectra)
    names = [n for n, s in spectra.items() if s is not real] or [real.generator]
    sounds = _explorer_audio(spectra, audio)
    pool, choices = _Pool(), {}
    for name in names:
        if spectra[name] is real:
            fig = plots.plot_spectra(real, scale=scale, freq_range=freq_range)
        else:
            fig = plots.plot_comparison(real, spectra[name], scale=scale, freq_range=freq_range)
        plot = pool.add(figure_data_uri(fig, dpi))
        clips = {k: pool.add(audio_data_uri(v, real.sample_rate)) for k, v in sounds[name].items()}
        choices[name] = {"plot": plot, "audio": clips}
    payload = json.dumps({"choices": choices, "sources": pool.sources})
    uid = element_id or "gpwave-explorer-" + hashlib.sha1(payload.encode()).hexdigest()[:10]
    return _explorer_html(uid, names, choices[names[0]], pool.sources, payload)


def _explorer_html(
    uid: str, names: list[str], first: dict[str, Any], sources: list[str], payload: str
) -> str:
    options = "".join(f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in names)
    cells = "".join(
        f'<div style="{"" if k in first["audio"] else "display:none"}"><div>{k}</div>'
        f'<audio controls preload="metadata" class="gpwave-explorer-audio" data-kind="{k}"'
        + (f' src="{sources[first["audio"][k]]}"' if k in first["audio"] else "")
        + "></audio></div>"
        for k in _AUDIO_KINDS
    )
    script = _EXPLORER_JS % {"id": json.dumps(uid)}
    data = payload.replace("</", "<\\/")
    return (
        f'<div class="gpwave-explorer" id="{html.escape(uid)}">'
        f'<label>generator <select class="gpwave-explorer-select" autocomplete="off">'
        f"{options}</select></label>"
        f'<div><img class="gpwave-explorer-plot" style="max-width:100%" '
        f'alt="mean packet spectrum: {html.escape(names[0])}" src="{sources[first["plot"]]}"/>'
        f'</div><div class="gpwave-explorer-players" '
        f'style="display:flex;flex-wrap:wrap;gap:0.5em">{cells}</div>'
        f'<script type="application/json" class="gpwave-explorer-data">'
        f"{data}</script><script>{script}</script></div>"
    )


# --- the live explorer -------------------------------------------------------------------------
@dataclass
class ExplorerView:
    """What the live explorer shows for one set of choices.

    Attributes:
        figure: Real vs the chosen generators' spectra.
        audio: Kind ("real", "fake", "fingerprint") -> samples, for the first generator.
        spectra: The spectra used (generator name -> spectrum).
    """

    figure: Figure
    audio: dict[str, np.ndarray]
    spectra: dict[str, fp.FingerprintSpectrum]


class SpectraCache:
    """Spectra of a data tree per (wavelet, level), computed on first use.

    Args:
        data_dir: Letter-prefixed folder tree.
        spectra: Already computed spectra (cached under their wavelet and level).
        max_frames: Frames per folder for newly computed spectra (None: all).
    """

    def __init__(
        self,
        data_dir: str | Path,
        spectra: Mapping[str, fp.FingerprintSpectrum] | None = None,
        max_frames: int | None = None,
    ):
        self.data_dir, self.max_frames = Path(data_dir), max_frames
        self._cache: dict[tuple[str, int], dict[str, fp.FingerprintSpectrum]] = {}
        if spectra:
            first = next(iter(spectra.values()))
            self._cache[(first.wavelet, first.level)] = dict(spectra)

    def get(self, wavelet: str, level: int) -> dict[str, fp.FingerprintSpectrum]:
        """Spectra of every folder for this wavelet and level.

        Args:
            wavelet: PyWavelets wavelet name.
            level: Decomposition level.

        Returns:
            Generator name -> spectrum (computed once, then cached).
        """
        key = (wavelet, int(level))
        if key not in self._cache:
            self._cache[key] = fp.folder_spectra(
                self.data_dir, wavelet, int(level), max_frames=self.max_frames
            )
        return self._cache[key]


def explorer_view(
    cache: SpectraCache,
    generators: Sequence[str],
    wavelet: str = "haar",
    level: int = 14,
    freq_range: tuple[float, float] | None = None,
    scale: AxisScale = "log",
    clip_seconds: float = 1.0,
) -> ExplorerView:
    """Compute what the live explorer shows; needs no kernel (tested directly).

    Args:
        cache: Spectra of the data tree.
        generators: Generators to overlay on real speech; the first one is played.
        wavelet: PyWavelets wavelet name.
        level: Decomposition level.
        freq_range: (low, high) in Hz to show.
        scale: "log" or "linear" magnitude axis.
        clip_seconds: Length of the real and fake clips.

    Returns:
        The figure and the audio of the first generator (real, fake, fingerprint).
    """
    spectra = cache.get(wavelet, level)
    real = fp.real_spectrum(spectra)
    chosen = [spectra[g] for g in generators if g in spectra and spectra[g] is not real]
    fig = plots.plot_spectra([real, *chosen], scale=scale, freq_range=freq_range)
    audio: dict[str, np.ndarray] = {}
    if chosen:
        gen = chosen[0]
        audio["fake"], utt = fp.example_clip(cache.data_dir, gen.generator, None, clip_seconds)
        audio["real"], _ = fp.example_clip(cache.data_dir, real.generator, utt, clip_seconds)
        audio["fingerprint"] = fp.audible_fingerprint(gen, real)
    return ExplorerView(fig, audio, spectra)


def explorer(
    data_dir: str | Path,
    spectra: Mapping[str, fp.FingerprintSpectrum] | None = None,
    *,
    wavelet: str = "haar",
    level: int = 14,
    max_frames: int | None = None,
    wavelets: Sequence[str] = ("haar", "db4", "sym5", "sym8", "coif3"),
) -> Any:
    """The live ipywidgets fingerprint explorer (needs a Jupyter kernel to interact).

    Controls: generators (multi-select), wavelet, level, frequency range (kHz) and
    linear/log axis; it redraws the spectra and plays real, fake and fingerprint audio of
    the first chosen generator. Spectra of new wavelet/level choices are computed on
    demand from ``data_dir`` (cached).

    Args:
        data_dir: Letter-prefixed folder tree.
        spectra: Precomputed spectra (e.g. from :func:`gpwave.fingerprints.folder_spectra`).
        wavelet: Initial wavelet (the spectra's, when given).
        level: Initial level (the spectra's, when given).
        max_frames: Frames per folder for spectra computed on demand.
        wavelets: Wavelets to offer.

    Returns:
        An ``ipywidgets.VBox``; its ``.refresh()`` redraws with the current choices.

    Notebook: notebooks/01_fingerprints.py
    """
    import ipywidgets as w

    cache = SpectraCache(data_dir, spectra, max_frames)
    if spectra:
        first = next(iter(spectra.values()))
        wavelet, level = first.wavelet, first.level
    names = [n for n, s in cache.get(wavelet, level).items() if s.label != 0]
    nyq = next(iter(cache.get(wavelet, level).values())).sample_rate / 2e3
    ctl = {
        "generators": w.SelectMultiple(options=names, value=names[:1], description="generators"),
        "wavelet": w.Dropdown(options=sorted({wavelet, *wavelets}), value=wavelet,
                              description="wavelet"),
        "level": w.IntSlider(value=level, min=1, max=14, description="level"),
        "freq_khz": w.FloatRangeSlider(value=(0.0, nyq), min=0.0, max=nyq, step=0.1,
                                       description="kHz"),
        "scale": w.ToggleButtons(options=["log", "linear"], description="scale"),
    }  # fmt: skip
    plot = w.Output()
    players = {k: w.Audio(format="wav", autoplay=False, loop=False) for k in _AUDIO_KINDS}
    box = w.VBox([*ctl.values(), plot, w.HBox([w.VBox([w.Label(k), p])
                                              for k, p in players.items()])])  # fmt: skip

    def refresh(_: Any = None) -> None:
        lo, hi = ctl["freq_khz"].value
        choice = {k: c.value for k, c in ctl.items()}
        view = explorer_view(
            cache, list(choice["generators"]), choice["wavelet"], choice["level"],
            (lo * 1e3, hi * 1e3), choice["scale"],
        )  # fmt: skip
        _show(plot, view.figure)
        for kind, player in players.items():
            if kind in view.audio:
                player.value = wav_bytes(view.audio[kind])

    for c in ctl.values():
        c.observe(refresh, names="value")
    box.refresh = refresh
    refresh()
    return box


def _show(output: Any, fig: Figure) -> None:
    """Replace an Output widget's content with the figure as a PNG image.

    A PNG, not ``display(fig)``: under a non-inline backend (``MPLBACKEND=Agg``, as the
    Makefile sets) IPython would only show the figure's text repr.
    """
    from IPython.display import Image, display

    png = figure_png(fig, dpi=100)
    output.clear_output(wait=True)
    with output:
        display(Image(data=png, format="png"))

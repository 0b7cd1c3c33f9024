"""Export a detector as one ONNX graph, waveform frame in, fake log-odds out.

:func:`export_detector` writes ``NAME.onnx`` and a JSON sidecar ``NAME.json`` for a named
detector (the paper's released models, or any published gpwave model). The graph holds
the whole pipeline of :class:`gpwave.models.Detector`, written with ONNX operators that
every runtime has (the book's "Try it on your own audio" page runs it in the browser with
onnxruntime-web):

* level normalisation (unit RMS) when the detector uses it;
* wavelet packets as ``level`` strided convolutions with the decomposition filters, the
  boundary extension (``reflect``, ``symmetric``, ...) an explicit index gather computed
  here (frames have a fixed length, so every node length is known), and the Gray-code
  permutation to frequency order; or the STFT as one strided convolution whose kernels
  are the window times the DFT's cosine and sine rows, after a reflect gather of
  ``n_fft // 2`` samples on either side (``center=True``);
* ``log(|c|**power + eps)``, the normaliser's ``(x - mean) / std`` and the network;
* the fake log-odds ``z_fake - z_real`` (:func:`gpwave.models.log_odds`).

The sidecar holds what a runtime needs to cut and judge a file as ``gpwave detect`` does
(rate, window length, threshold, silence rule), the licence and the provenance.

Notebook: none (the book's page book/try.md runs the graphs in the browser).
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pywt
import torch
from torch import nn

from gpwave import hub
from gpwave.constants import SILENCE_FLOOR_DBFS, SILENCE_RELATIVE_DB
from gpwave.errors import CheckpointError
from gpwave.models import Detector
from gpwave.transforms import _extension_index, freq_permutation

#: ONNX opset of the exported graphs (onnxruntime-web 1.2x runs it).
OPSET = 17
#: Published models the book does not offer (retired).
RETIRED = ("gpwave-robust",)
#: Fake if the mean probability over scorable windows is at least this.
THRESHOLD = 0.5


def _known(name: str) -> str:
    """``name`` if it is a released or an offered published model, else a CheckpointError."""
    from gpwave.pretrained import PAPER_MODELS

    if name in PAPER_MODELS or name in published_models():
        return name
    raise CheckpointError(f"{name}: no such released or published model (gpwave models lists them)")


def _load(name: str) -> Detector:
    """A named detector, through the model hub."""
    return hub.resolve(_known(name))


def _source_file(name: str) -> Path:
    """The checkpoint file a named detector comes from (for the provenance md5)."""
    return hub.source_file(_known(name))


def published_models(models_dir: str | Path | None = None) -> list[str]:
    """Published gpwave models present in ``models_dir``: ``<name>.pt`` with ``<name>.json``.

    Args:
        models_dir: Folder of models (default ``$GPWAVE_DATA/models``).

    Returns:
        Sorted names, retired ones (:data:`RETIRED`) left out.
    """
    if models_dir is None:
        names = hub.published_names()
    else:
        folder = Path(models_dir)
        names = [p.stem for p in folder.glob("*.pt") if p.with_suffix(".json").is_file()]
    return sorted(n for n in names if n not in RETIRED)


# --- the ONNX-friendly feature transforms ---------------------------------------------------
class PacketsGraph(nn.Module):
    """Wavelet packets of fixed-length frames as strided convolutions and index gathers.

    Equal to :func:`gpwave.transforms.wavelet_packets` (same filters, extension and
    order) for frames of ``n_samples``, with no data-dependent control flow.

    Args:
        wavelet: Wavelet name.
        level: Packet level.
        mode: Boundary mode.
        order: ``freq`` or ``natural``.
        n_samples: Frame length.
    """

    def __init__(self, wavelet: str, level: int, mode: str, order: str, n_samples: int):
        super().__init__()
        w = pywt.Wavelet(wavelet)
        bank = np.stack([w.dec_lo[::-1], w.dec_hi[::-1]])[:, None, :].astype(np.float32)
        self.register_buffer("filters", torch.as_tensor(bank.copy()))
        self.mode, self.lengths, flen, n = mode, [], w.dec_len, int(n_samples)
        for k in range(level):
            n_out = (n + flen - 1) // 2
            left, right = flen - 2, 2 * n_out - n
            idx = _extension_index(n, left, right, mode, torch.device("cpu"))
            self.register_buffer(f"index{k}", idx if mode != "zero" else torch.zeros(0))
            self.lengths.append((n, left, right, n_out))
            n = n_out
        perm = freq_permutation(level) if order == "freq" else np.arange(2**level)
        self.register_buffer("perm", torch.as_tensor(perm, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(B, 2**level, T)`` of frames ``(B, N)``."""
        c = x[:, None, :]
        for k, (_, left, right, n_out) in enumerate(self.lengths):
            if self.mode == "zero":
                xp = nn.functional.pad(c, (left, right))
            else:
                xp = c.index_select(2, getattr(self, f"index{k}"))
            nodes = c.shape[1]
            out = nn.functional.conv1d(xp.reshape(-1, 1, xp.shape[2]), self.filters, stride=2)
            c = out.reshape(-1, 2 * nodes, n_out)
        return c.index_select(1, self.perm)


class StftGraph(nn.Module):
    """Power spectrogram of fixed-length frames as one matrix product, in float64.

    Equal to ``|torch.stft(x, n_fft, hop, hann_window(n_fft), center=True,
    pad_mode="reflect")|**2`` (first ``bins`` bins) computed in float64: the reflect
    padding and the framing are one index gather ``(T, n_fft)``, the DFT one product
    with the window times the cosine and sine rows (a convolution of stride ``hop``
    written as a matmul). float64, as gpwave's own STFT feature: low-power bins lose
    their digits in float32 (a float32 STFT moved the released STFT model's log-odds by
    up to 2e-2).

    Args:
        n_fft: FFT size (= window length).
        hop: Hop.
        bins: Bins kept.
        n_samples: Frame length.
    """

    def __init__(self, n_fft: int, hop: int, bins: int, n_samples: int):
        super().__init__()
        pad = n_fft // 2
        source = _extension_index(n_samples, pad, pad, "reflect", torch.device("cpu"))
        starts = torch.arange(0, n_samples + 2 * pad - n_fft + 1, hop)
        self.register_buffer("index", source[starts[:, None] + torch.arange(n_fft)].flatten())
        n = np.arange(n_fft)
        window = torch.hann_window(n_fft, dtype=torch.float64).numpy()
        angle = 2 * np.pi * np.outer(n, np.arange(bins)) / n_fft
        basis = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
        self.register_buffer("basis", torch.as_tensor(basis, dtype=torch.float64))
        self.n_frames, self.n_fft, self.bins = len(starts), n_fft, bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Power ``(B, bins, T)`` (float32) of frames ``(B, N)``."""
        frames = x.double().index_select(1, self.index).reshape(-1, self.n_frames, self.n_fft)
        spec = frames @ self.basis  # (B, T, 2 * bins)
        re, im = spec[..., : self.bins], spec[..., self.bins :]
        return (re * re + im * im).float().transpose(1, 2)


class ExportGraph(nn.Module):
    """A :class:`~gpwave.models.Detector` rewritten for export: frames in, log-odds out.

    Args:
        det: A packets or STFT detector (eval mode).

    Raises:
        CheckpointError: A detector whose features cannot be exported.
    """

    def __init__(self, det: Detector):
        super().__init__()
        cfg = det.feature_config
        if cfg.kind not in ("packets", "stft") or cfg.sign_channel:
            raise CheckpointError(
                f"cannot export a detector on {cfg.kind!r} features (packets or stft only)"
            )
        self.cfg, self.level_norm = cfg, det.level_norm
        if cfg.kind == "packets":
            self.transform = PacketsGraph(
                cfg.wavelet, cfg.level, cfg.mode, cfg.order, det.n_samples
            )  # fmt: skip
        else:
            n_fft, hop, bins = cfg.stft_size()
            self.transform = StftGraph(n_fft, hop, bins, det.n_samples)
        norm = det.normalizer
        self.register_buffer("mean", norm.mean.float()[None, :, :, None].clone())
        self.register_buffer("std", norm.std.float()[None, :, :, None].clone())
        self.model = det.model
        if hasattr(self.model, "memory_format"):
            self.model.memory_format = torch.contiguous_format
            self.model.to(memory_format=torch.contiguous_format)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Fake log-odds ``(B,)`` of frames ``(B, N)``."""
        x = frames
        if self.level_norm:
            x = x / x.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)
        if self.cfg.kind == "packets":
            c = self.transform(x).abs()
            power = self.cfg.power
            mag = c * c if power == 2.0 else (c if power == 1.0 else c**power)
        else:
            mag = self.transform(x)
        feats = torch.log(mag + self.cfg.eps) if self.cfg.log else mag
        logits = self.model((feats[:, None] - self.mean) / self.std)
        return logits[:, 1] - logits[:, 0]


# --- writing the graph and its sidecar ------------------------------------------------------
def _git_commit() -> str:
    """The repository's commit (empty outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parents[1],
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def sidecar(name: str, det: Detector, source: Path) -> dict[str, Any]:
    """What a runtime needs besides the graph: framing, verdict rule, licence, provenance.

    Args:
        name: The model's name.
        det: The detector.
        source: The checkpoint file it was loaded from.

    Returns:
        A JSON-ready dict.
    """
    from gpwave import __version__
    from gpwave.pretrained import LICENCE, PAPER_MODELS
    from gpwave.transfer import file_hash

    paper = name in PAPER_MODELS
    cfg = det.feature_config
    return {
        "name": name,
        "onnx": f"{name}.onnx",
        "sample_rate": int(cfg.sample_rate),
        "frame_length": int(det.n_samples),
        "input": "frames",
        "output": "log_odds",
        "threshold": THRESHOLD,
        "threshold_on": "mean fake probability of scorable windows: sigmoid(a * log-odds + b) "
        "with the calibration (a, b), or sigmoid(log-odds) without one",
        "calibration": None if det.calibration is None else list(det.calibration),
        "silence_floor_dbfs": SILENCE_FLOOR_DBFS,
        "silence_relative_db": SILENCE_RELATIVE_DB,
        "feature": cfg.kind,
        "description": PAPER_MODELS[name].note if paper else f"published gpwave model {name}",
        "released": paper,
        "licence": LICENCE if paper else "EUPL-1.2",
        "provenance": {
            "source_file": source.name,
            "source_md5": file_hash(source, "md5"),
            "gpwave_version": __version__,
            "gpwave_commit": _git_commit(),
            "opset": OPSET,
        },
    }


def export_detector(name: str, out: str | Path) -> Path:
    """Write a named detector as ``<out>/<name>.onnx`` and its sidecar ``<name>.json``.

    Notebook: none (the book's page book/try.md runs what it writes).

    Args:
        name: A released model (``paper-sym5``, ``paper-stft``) or a published one.
        out: Output folder (created).

    Returns:
        The ``.onnx`` path.

    Raises:
        CheckpointError: An unknown, missing or unexportable model.
    """
    if name in RETIRED:
        raise CheckpointError(f"{name} is retired and not exported")
    det = _load(name).cpu().eval()
    graph = ExportGraph(det).eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.onnx"
    example = torch.zeros(2, det.n_samples)
    # the TorchScript-based exporter (no onnxscript needed); torch marks it deprecated
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph, (example,), str(target), input_names=["frames"], output_names=["log_odds"],
            dynamic_axes={"frames": {0: "batch"}, "log_odds": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    meta = sidecar(name, det, _source_file(name))
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return target


# --- the book's "Try it on your own audio" page ---------------------------------------------
#: Files of the npm package onnxruntime-web that the page loads (WebAssembly backend only).
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: The MIT notice of onnxruntime-web, shipped beside its files.
ORT_WEB_LICENCE = """onnxruntime-web (npm), MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def vendor_ort_web(node_modules: str | Path, dest: str | Path) -> Path:
    """Copy onnxruntime-web's WebAssembly files (and its licence) into ``dest``.

    Args:
        node_modules: The folder ``npm ci`` filled (``make web-deps``).
        dest: Target folder (created).

    Returns:
        ``dest``.

    Raises:
        FileNotFoundError: The package is not installed (the message says how).
    """
    import shutil

    pkg = Path(node_modules) / "onnxruntime-web"
    missing = [f for f in ORT_WEB_FILES if not (pkg / "dist" / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{pkg}: missing {missing}; run `make web-deps` (npm ci)")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in ORT_WEB_FILES:
        shutil.copyfile(pkg / "dist" / f, dest / f)
    version = json.loads((pkg / "package.json").read_text())["version"]
    (dest / "LICENSE.txt").write_text(ORT_WEB_LICENCE)
    (dest / "VERSION").write_text(version + "\n")
    return dest


def export_for_book(dest: str | Path, names: list[str] | None = None) -> dict[str, Any]:
    """Export the page's models into ``dest`` with an ``index.json`` the page reads.

    Args:
        dest: Folder of the ``.onnx`` files and sidecars (created).
        names: Models (default: the released ones and every published one present).

    Returns:
        The index: ``models`` (name, sidecar file, description, released) and
        ``published_note`` (why the picker offers only the released models, if it does).
    """
    from gpwave.pretrained import PAPER_MODELS

    published = published_models()
    names = names if names is not None else [*PAPER_MODELS, *published]
    rows = []
    for name in names:
        export_detector(name, dest)
        meta = json.loads((Path(dest) / f"{name}.json").read_text())
        rows.append({"name": name, "sidecar": f"{name}.json", "released": meta["released"],
                     "description": meta["description"]})  # fmt: skip
    note = "" if published else (
        "No published gpwave detector was present when this book was built "
        "($GPWAVE_DATA/models/<name>.pt with its .json), so only the released models are offered."
    )  # fmt: skip
    index = {"models": rows, "published_note": note}
    (Path(dest) / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return index

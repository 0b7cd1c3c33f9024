"""Synthetic audio for unit tests: tones, chirps, noise and tiny letter-prefixed trees.

Unit tests never download; integration tests use the mini benchmark (see conftest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    """A sine at ``freq`` Hz, float32."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(f0: float = 100.0, f1: float = 8000.0, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """A linear chirp from ``f0`` to ``f1`` Hz, float32, amplitude 0.5."""
    t = np.arange(int(round(seconds * sr))) / sr
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / seconds * t**2)
    return (0.5 * np.sin(phase)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = SR, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """Gaussian white noise, float32."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    """Write ``x`` (samples or samples x channels) as a wav file, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype=subtype)
    return path


def make_tree(
    root: Path,
    folders: dict[str, list[str]] | None = None,
    seconds: float = 3.0,
    sr: int = SR,
) -> Path:
    """Make a tiny letter-prefixed tree: real tones in ``A_*``, noisier fakes elsewhere.

    Args:
        root: Where to create the folders.
        folders: Folder name -> utterance ids; fakes get WaveFake's ``_gen`` suffix.
        seconds: Length of every file.
        sr: Sample rate.

    Returns:
        ``root``.
    """
    folders = folders or {
        "A_ljspeech": [f"LJ001-{i:04d}" for i in range(1, 7)],
        "B_melgan": [f"LJ001-{i:04d}" for i in range(1, 7)],
        "C_hifigan": [f"LJ001-{i:04d}" for i in range(1, 4)],
    }
    for k, (folder, utts) in enumerate(sorted(folders.items())):
        for j, utt in enumerate(utts):
            x = chirp(200 + 50 * j, 4000, seconds, sr) + noise(seconds, sr, seed=100 * k + j)
            name = f"{utt}.wav" if folder.startswith("A_") else f"{utt}_gen.wav"
            write_wav(root / folder / name, np.clip(x, -1, 1), sr)
    return root

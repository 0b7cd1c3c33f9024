"""Shared fixtures: where the mini benchmark is, and a scratch folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO.parent / "shared" / "wavefake-mini"
SHARED_MODELS = REPO.parent / "shared" / "reference-models"
SHARED_SPEAKERS = REPO.parent / "shared" / "speakers-tts-mini"


def _mini_root() -> Path | None:
    """The fetched mini benchmark, else the shared mirror itself, else None."""
    candidates = [
        os.environ.get("GPWAVE_MINI_ROOT"),
        str(Path(os.environ.get("GPWAVE_DATA", REPO / "data")) / "wavefake-mini"),
        str(SHARED_MINI),
    ]
    for c in candidates:
        if c and (Path(c) / "A_ljspeech").is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """Root of the mini benchmark (letter-prefixed folders); skips if absent."""
    root = _mini_root()
    if root is None:
        pytest.skip("mini benchmark not available: run `make data` or set GPWAVE_MINI_ROOT")
    return root


@pytest.fixture(scope="session")
def shared_mini() -> Path:
    """The read-only shared mirror of the mini benchmark (with MANIFEST.tsv)."""
    if not (SHARED_MINI / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/wavefake-mini is not next to this checkout")
    return SHARED_MINI


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """The read-only shared mirror of the paper's released checkpoints (with MANIFEST.tsv)."""
    if not (SHARED_MODELS / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/reference-models is not next to this checkout")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def shared_speakers() -> Path:
    """The read-only shared mirror of speakers-tts-mini (test only; with MANIFEST.tsv)."""
    if not (SHARED_SPEAKERS / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/speakers-tts-mini is not next to this checkout")
    return SHARED_SPEAKERS

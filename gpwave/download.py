"""Registries and downloads: the mini benchmark, LJSpeech, WaveFake and its extension.

Notebook: notebooks/02_data.py
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """Where data lives: ``$GPWAVE_DATA``, else ``./data``.

    Notebook: notebooks/02_data.py

    Returns:
        The data folder (not created).
    """
    return Path(os.environ.get("GPWAVE_DATA") or Path.cwd() / "data").expanduser()

"""The frame store's index: built once per data folder, not once per seed or rank."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from _detector_data import base_config, make_detector_tree
from _signals import noise, write_wav

from gpwave import data, dist, frames, store
from gpwave.config import TrainConfig
from gpwave.data import DataConfig


@pytest.fixture()
def tree(tmp_path):
    return make_detector_tree(tmp_path / "tree", n_utts=4, seconds=0.5)


def _listings(monkeypatch) -> dict[str, int]:
    """Count directory listings (``Path.iterdir`` and ``os.scandir``) per folder."""
    counts: dict[str, int] = {}
    iterdir, scandir = Path.iterdir, os.scandir

    def count(path) -> None:
        counts[Path(path).name] = counts.get(Path(path).name, 0) + 1

    monkeypatch.setattr(Path, "iterdir", lambda self: count(self) or iterdir(self))
    monkeypatch.setattr(data.os, "scandir", lambda p: count(p) or scandir(p))
    return counts


def test_a_prepare_lists_each_folder_once(tree, tmp_path, monkeypatch):
    counts = _listings(monkeypatch)
    store.prepare_store(DataConfig(tree, seconds=0.25), store_dir=tmp_path / "s", progress=False)
    folders = {p.name for p in tree.iterdir()}
    assert {k: v for k, v in counts.items() if k in folders} == dict.fromkeys(folders, 1)


def test_a_second_prepare_of_unchanged_data_writes_nothing(tree, tmp_path, monkeypatch):
    cfg = DataConfig(tree, seconds=0.25)
    first = store.prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    writes = []
    monkeypatch.setattr(store, "_atomic_write_csv", lambda p, df: writes.append(p))
    monkeypatch.setattr(store, "_atomic_write_text", lambda p, t: writes.append(p))
    second = store.prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    assert writes == []
    pd.testing.assert_frame_equal(first.index, second.index, check_dtype=False)


def test_changed_data_or_split_settings_rebuild_the_index(tree, tmp_path):
    cfg = DataConfig(tree, seconds=0.25)
    n = len(store.prepare_store(cfg, store_dir=tmp_path / "s", progress=False).index)
    write_wav(tree / "B_melgan" / "LJ001-0099_gen.wav", noise(0.5, seed=99))
    grown = store.prepare_store(cfg, store_dir=tmp_path / "s", progress=False)
    assert len(grown.index) == n + 2  # two 0.25 s frames of the new file
    resplit = DataConfig(tree, seconds=0.25, split=(0.5, 0.25, 0.25))
    other = store.prepare_store(resplit, store_dir=tmp_path / "s", progress=False)
    assert other.meta["key"] != grown.meta["key"]


def test_other_ranks_open_the_leads_store_without_listing_the_data(tree, tmp_path, monkeypatch):
    cfg = TrainConfig.from_dict(base_config(tree, tmp_path / "s"))
    lead = frames.open_store(cfg, dist.Dist(), progress=False)
    monkeypatch.setattr(dist, "barrier", lambda d: None)
    monkeypatch.setattr(store, "prepare_store", lambda *a, **k: pytest.fail("rank 1 prepared"))
    counts = _listings(monkeypatch)
    other = frames.open_store(cfg, dist.Dist(rank=1, world=2), progress=False)
    assert not set(counts) & {p.name for p in tree.iterdir()}
    pd.testing.assert_frame_equal(lead.index, other.index, check_dtype=False)

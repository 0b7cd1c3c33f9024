"""gpwave.runs: run paths, atomic writes (a full disk loses nothing), refusing to overwrite."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from gpwave import runs
from gpwave.errors import ConfigError, DataError


def test_run_paths_follow_the_layout_notebooks_read(tmp_path):
    run = runs.Run(tmp_path, "dcnn_packets")
    assert run.dir == tmp_path / "runs" / "dcnn_packets"
    s = run.seed(3)
    assert (s.best, s.last, s.metrics, s.config) == tuple(
        tmp_path / "runs" / "dcnn_packets" / "seed3" / f
        for f in ("best.pt", "last.pt", "metrics.json", "config.yaml")
    )
    assert run.seeds() == []
    for k in (10, 2):
        run.seed(k).dir.mkdir(parents=True)
        run.seed(k).metrics.write_text(json.dumps({"seed": k}))
    assert run.seeds() == [2, 10]  # numerically, not as text
    assert runs.Run.folder(tmp_path / "out").seed(0).dir == tmp_path / "out" / "seed0"


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_keeps_the_old_file_and_leaves_no_tmp(tmp_path, monkeypatch):
    """Issue 21 item 13: a full disk left ``.last.pt.*.tmp`` and a traceback."""
    path = tmp_path / "last.pt"
    runs.save({"a": torch.zeros(2)}, path)
    before = path.read_bytes()

    def partial_then_full(obj, f):
        open(f, "wb").write(b"partial")
        _enospc()

    monkeypatch.setattr(runs.torch, "save", partial_then_full)
    with pytest.raises(DataError) as err:
        runs.save({"a": torch.ones(2)}, path)
    assert str(err.value) == (
        f"{path}: could not be written (the disk is full); the previous file, if any, is kept"
    )
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_check_out_refuses_an_existing_run_unless_told(tmp_path):
    """Issue 21 items 1 and 16: no silent overwrite, no silent fresh start on --resume."""
    seed0 = tmp_path / "seed0"
    with pytest.raises(ConfigError, match="--resume, but no run of this config has a last.pt"):
        runs.check_out(tmp_path, [seed0], resume=True, overwrite=False)
    runs.check_out(tmp_path, [seed0], resume=False, overwrite=False)  # empty: fine
    seed0.mkdir()
    (seed0 / "metrics.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        runs.check_out(tmp_path, [seed0], resume=False, overwrite=False)
    text = str(err.value)
    assert str(tmp_path) in text and "--resume" in text and "new --out" in text
    assert "--overwrite" in text
    runs.check_out(tmp_path, [seed0], resume=False, overwrite=True)
    with pytest.raises(ConfigError, match="contradict"):
        runs.check_out(tmp_path, [seed0], resume=True, overwrite=True)


def test_temporary_names_are_unique():
    p = Path("run/last.pt")
    assert len({runs.tmp_name(p) for _ in range(50)}) == 50


def test_runs_overview_reads_each_seed_and_flags_unconverged(tmp_path):
    for seed, eer in ((0, 0.01), (1, 0.48)):
        folder = runs.Run(tmp_path, "dcnn_packets").seed(seed).dir
        folder.mkdir(parents=True)
        check = runs.convergence({"val_eer": eer, "val_loss": 0.69, "epoch": 3}, 0.2)
        metrics = {
            "seed": seed, "model": "dcnn", "feature": {"kind": "packets"},
            "n_train_frames": 662, "steps": 63, "history": [{}, {}, {}],
            "train_seconds": 100.4, "best": {"val_eer": eer},
            "converged": check["converged"], "convergence": check["reason"],
        }  # fmt: skip
        (folder / "metrics.json").write_text(json.dumps(metrics))
    table = runs.runs_overview(tmp_path, ["dcnn_packets"])
    assert table["seed"].tolist() == [0, 1]
    assert table["converged"].tolist() == [True, False]
    assert table["epochs"].tolist() == [3, 3] and table["steps"].tolist() == [63, 63]
    assert "near chance" in table["reason"].iloc[1]
    with pytest.raises(DataError, match="train lcnn first"):
        runs.runs_overview(tmp_path, ["lcnn"])

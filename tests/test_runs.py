"""gpwave.runs: run paths, atomic writes (a full disk loses nothing), refusing to overwrite."""

from __future__ import annotations

import errno
import json

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

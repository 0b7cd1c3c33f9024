"""gpwave.hub: one resolver for released, published and checkpoint detectors; publishing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from gpwave import hub, pretrained
from gpwave.errors import CheckpointError, ConfigError
from gpwave.models import Detector


def _checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    det = Detector({"kind": "lfcc"}, "linear", n_samples=2205)
    with torch.no_grad():
        det.model.fc.weight.normal_()
    torch.save({"detector": det.spec(), "model": det.state_dict()}, path)
    return path


def test_resolve_takes_a_checkpoint_path_and_a_published_name(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    ckpt = _checkpoint(tmp_path / "best.pt")
    ref = torch.load(ckpt, weights_only=True)["model"]
    by_path = hub.resolve(ckpt)
    assert not by_path.training
    assert all(torch.equal(v, ref[k]) for k, v in by_path.state_dict().items())
    dest = hub.publish(ckpt, "tiny", {"feature": "lfcc", "note": "a test model"})
    assert dest == tmp_path / "data" / "models" / "tiny.pt"
    prov = json.loads(dest.with_suffix(".json").read_text())
    assert prov["md5"] == hashlib.md5(ckpt.read_bytes()).hexdigest() and prov["name"] == "tiny"
    by_name = hub.resolve("tiny")
    assert all(torch.equal(v, ref[k]) for k, v in by_name.state_dict().items())
    assert hub.published_names() == ["tiny"]
    row = hub.list_models().set_index("name").loc["tiny"]
    assert row["note"] == "a test model" and row["source"] == "gpwave"  # from its own JSON


def test_a_pt_without_provenance_is_not_a_published_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    (tmp_path / "models").mkdir()
    _checkpoint(tmp_path / "models" / "stray.pt")
    assert hub.published_names() == []
    with pytest.raises(CheckpointError, match="stray: not a released model.*none yet"):
        hub.resolve("stray")


def test_publishing_over_a_name_needs_overwrite_and_keeps_the_old_files(tmp_path, monkeypatch):
    """Issue 21 item 3: publish silently replaced a named model."""
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    first = hub.publish(_checkpoint(tmp_path / "a.pt", 0), "tiny", {"note": "first"})
    before = first.read_bytes(), first.with_suffix(".json").read_text()
    second = _checkpoint(tmp_path / "b.pt", 1)
    with pytest.raises(ConfigError, match="tiny.*already exists.*--overwrite"):
        hub.publish(second, "tiny", {"note": "second"})
    assert (first.read_bytes(), first.with_suffix(".json").read_text()) == before
    hub.publish(second, "tiny", {"note": "second"}, overwrite=True)
    assert first.read_bytes() == second.read_bytes()
    assert hub.list_models().set_index("name").loc["tiny", "note"] == "second"
    assert not list(first.parent.glob(".*tmp"))


def test_listing_names_a_pool_and_a_calibration_from_the_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    cfg = {"real": "ljspeech", "train_generator": "melgan", "data_dir": "d/wavefake-mini",
           "pool": "d/speakers-train", "pool_families": None}  # fmt: skip
    prov = {"config": cfg, "validation": {"val_eer": 0.165, "calibration": [0.3, -1.0]}}
    hub.publish(_checkpoint(tmp_path / "a.pt"), "pooled", prov)
    plain = {"config": {**cfg, "pool": None}, "validation": {"val_eer": 0.2}}
    hub.publish(_checkpoint(tmp_path / "b.pt"), "plain", plain)
    rows = hub.list_models().set_index("name")
    assert rows.loc["pooled", "training_data"] == (
        "ljspeech vs melgan (d/wavefake-mini) + pool d/speakers-train (vocoder families: all)"
    )
    assert "verdicts calibrated on validation" in rows.loc["pooled", "note"]
    assert rows.loc["plain", "training_data"] == "ljspeech vs melgan (d/wavefake-mini)"
    assert "calibrated" not in rows.loc["plain", "note"]


@pytest.mark.parametrize("name", ["Paper", "paper-sym5", "../x", "", "a b"])
def test_bad_publish_names_are_refused(name):
    with pytest.raises(ConfigError, match="publish="):
        hub.check_name(name)


def test_resolve_passes_a_detector_through_in_eval_mode():
    det = Detector({"kind": "lfcc"}, "linear", n_samples=2205).train()
    assert hub.resolve(det) is det and not det.training


@pytest.fixture
def released(request) -> Path:
    """A folder with the released checkpoints: the shared mirror, or $GPWAVE_MODELS_MIRROR."""
    mirror = Path(os.environ.get("GPWAVE_MODELS_MIRROR") or "/nonexistent")
    if (mirror / "MANIFEST.tsv").is_file():
        return mirror
    return request.getfixturevalue("shared_models")


def test_released_model_offline_needs_no_mirror_and_checks_only_its_file(
    tmp_path, monkeypatch, released
):
    """Issue 21 item 17: a missing mirror or a corrupt unused file blocked paper-sym5."""
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for f in released.glob("model_*.pt"):
        shutil.copy(f, data / "models" / f.name)
    coif4 = next((data / "models").glob("model_packetscoif4_*"))
    coif4.write_bytes(b"corrupt")
    monkeypatch.setenv("GPWAVE_DATA", str(data))
    monkeypatch.setenv("GPWAVE_MODELS_MIRROR", str(tmp_path / "missing-mirror"))
    det = hub.resolve("paper-sym5")
    assert det.feature_config.wavelet == "sym5"
    sym5 = next((data / "models").glob("model_packetssym5_*"))
    assert pretrained.checkpoint_path("paper-sym5") == sym5

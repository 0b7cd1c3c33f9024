"""A run's frames from the protocol's folder plus a many-speaker pool (gpwave.poolstore)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from gpwave import dist, frames, pool, poolstore
from gpwave.config import TrainConfig
from gpwave.errors import ConfigError
from gpwave.store import INT16_SCALE
from tests._signals import make_tree

SR = 22050


def _pool(root: Path) -> Path:
    """Two trees: ``one`` at 22.05 kHz (MelGAN, WaveRNN), ``two`` at 16 kHz (PWG)."""
    utts_a = [f"a{i}" for i in range(10)]
    utts_b = [f"b{i}" for i in range(10)]
    make_tree(root / "one", {"A_rec": utts_a, "B_umelgan_en": utts_a, "C_wavernn_en": utts_a},
              seconds=2.2)  # fmt: skip
    make_tree(root / "two", {"A_vcc": utts_b, "B_pwg16": utts_b}, seconds=2.2, sr=16000)
    rows = []
    for f in sorted(root.glob("*/*_*/*.wav")):
        utt = f.stem.removesuffix("_gen")
        rows.append({"file": f"{f.parent.parent.name}/{f.parent.name}/{f.name}",
                     "utterance": utt, "speaker": f"s:{utt[1:]}"})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "MANIFEST.tsv", sep="\t", index=False)
    return root


@pytest.fixture
def union_cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path / "data"))
    mini = make_tree(tmp_path / "mini", {"A_ljspeech": [f"LJ001-{i:04d}" for i in range(12)],
                                         "B_melgan": [f"LJ001-{i:04d}" for i in range(12)]},
                     seconds=2.2)  # fmt: skip
    pool_root = _pool(tmp_path / "pool")
    store = str(tmp_path / "store")
    cfg = TrainConfig.from_dict({"data_dir": str(mini), "pool": str(pool_root),
                                 "store_dir": store, "progress": False})  # fmt: skip
    return cfg, frames.open_store(cfg, dist.Dist(), progress=False)


def test_union_rows_are_the_members_rows_in_order(union_cfg):
    _, union = union_cfg
    assert union.index["row"].tolist() == list(range(len(union)))
    main, *trees = union.members
    assert len(union) == sum(len(s) for s in union.members)
    rows = np.array([0, len(main) - 1, len(main), len(union) - 1, 3])
    got = union.read_stored(rows)
    np.testing.assert_array_equal(got[0], main.read_stored([0])[0])
    np.testing.assert_array_equal(got[2], trees[0].read_stored([0])[0])
    np.testing.assert_array_equal(got[3], trees[-1].read_stored([len(trees[-1]) - 1])[0])
    with pytest.raises(IndexError):
        union.read_stored([len(union)])


def test_both_classes_of_a_low_rate_tree_are_upsampled_alike(union_cfg):
    _, union = union_cfg
    idx = union.index
    for folder in ["two/A_vcc", "two/B_pwg16"]:
        first = idx[(idx["folder"] == folder) & (idx["offset"] == 0)].iloc[0]
        x, rate = sf.read(first["file"], dtype="float32")
        assert rate == 16000
        # librosa's soxr_hq resampling as the reference (up to int16 rounding); scipy's
        # polyphase filter agrees below the old band edge (broadband noise differs there)
        ref = librosa.resample(x, orig_sr=16000, target_sr=SR, res_type="soxr_hq")[:SR]
        got = union.read_stored([first["row"]])[0].astype(np.float32) * INT16_SCALE
        assert np.abs(got - ref).max() <= 1.01 * INT16_SCALE, folder
        low = resample_poly(x, 441, 320)[:SR] - got
        assert np.abs(np.fft.rfft(low)[: SR // 4]).max() < 0.05 * np.abs(np.fft.rfft(got)).max()


def test_no_speaker_in_two_splits_and_test_speakers_never_read(union_cfg):
    cfg, union = union_cfg
    idx = union.index
    part = idx[idx["tree"] != ""]
    by_split = part.groupby("split")["utterance"].agg(set)  # speaker s:k is utterance [ab]k
    speakers = {k: {u[1:] for u in v} for k, v in by_split.items()}
    assert not (speakers["train"] & speakers.get("val", set()))
    assert not (speakers["train"] & speakers[poolstore.HELD_OUT])
    assert speakers[poolstore.HELD_OUT]  # some speakers are held out for testing
    for split in ["train", "val"]:
        rows = frames.select_rows(cfg, union, split, None)
        assert not (set(idx.iloc[rows]["split"]) - {split})
    test = frames.select_rows(cfg, union, "test", None)
    assert set(idx.iloc[test]["tree"]) == {""}  # test rows: the protocol's only


def test_each_tree_brings_as_many_real_as_fake_frames(union_cfg):
    cfg, union = union_cfg
    rows = frames.select_rows(cfg, union, "train", None)
    t = union.index.iloc[rows]
    counts = t.groupby(["tree", "label"]).size().unstack()
    assert (counts[0] == counts[1]).all(), counts
    pool_fakes = t[(t["tree"] != "") & (t["label"] == 1)]
    every = union.index[(union.index["tree"] != "") & (union.index["split"] == "train")
                        & (union.index["label"] == 1) & ~union.index["silent"]]  # fmt: skip
    assert set(pool_fakes["row"]) == set(every["row"])  # every fake frame is used


def test_pool_families_pick_the_fakes_and_their_trees_real(union_cfg):
    cfg, union = union_cfg
    cfg.pool_families = ["pwg"]
    t = union.index.iloc[frames.select_rows(cfg, union, "train", None)]
    assert set(t[t["tree"] != ""]["tree"]) == {"two"}
    fakes = t[(t["tree"] != "") & (t["label"] == 1)]
    assert set(fakes["family"]) == {"pwg"}
    assert pool.family_of("B_pwg16") == "pwg"


def test_a_pool_inside_a_test_only_set_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GPWAVE_DATA", str(tmp_path))
    with pytest.raises(ConfigError, match="pool="):
        TrainConfig.from_dict({"pool": str(tmp_path / "speakers-tts-mini")})


def test_held_out_rows_are_test_speakers_of_trees_with_unseen_fakes(union_cfg):
    _, union = union_cfg
    idx = union.index
    rows = poolstore.held_out_rows(union, exclude=["pwg"])
    t = idx.iloc[rows]
    assert set(t["split"]) == {poolstore.HELD_OUT} and set(t["tree"]) == {"one"}
    assert set(t[t["label"] == 1]["family"]) <= {"melgan", "wavernn"}
    assert (t["label"] == 0).any()
    every = poolstore.held_out_rows(union)
    assert set(idx.iloc[every]["tree"]) == {"one", "two"}
    train = idx[idx["split"] == "train"]
    assert not set(t["utterance"].str[1:]) & set(train["utterance"].str[1:])  # no speaker seen


def test_speakers_config_trains_on_the_pool_with_the_mini_protocols_test_folders():
    from gpwave.config import load_yaml

    repo = Path(__file__).resolve().parents[1]
    speakers = load_yaml(repo / "configs" / "speakers.yaml")
    mini = load_yaml(repo / "configs" / "mini.yaml")
    assert speakers["only_test_folders"] == mini["only_test_folders"]
    assert speakers["pool"].endswith("/speakers-train") and speakers["publish"]
    cfg = TrainConfig.from_dict(speakers)
    assert cfg.init == "paper-stft" and cfg.pool_families is None


def test_the_union_key_changes_with_any_member(union_cfg, tmp_path):
    _, union = union_cfg
    other = poolstore.StoreUnion(union.members[:2], union.index[union.index["tree"] != "two"])
    assert union.meta["key"] != other.meta["key"]
    assert union.meta["key"] != union.members[0].meta["key"]  # not the protocol store's cache


def test_pool_families_is_a_list_not_a_grid_axis():
    from gpwave.config import expand_grid

    points = expand_grid({"pool_families": ["melgan", "pwg"]})
    assert len(points) == 1 and points[0]["pool_families"] == ["melgan", "pwg"]
    assert len(expand_grid({"pool_families": [["melgan"], ["pwg"]]})) == 2


def test_a_pool_reached_through_a_symlink_opens_the_same_stores(union_cfg, tmp_path):
    """The same data under another spelling (a symlinked folder) is the same pool."""
    cfg, union = union_cfg
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "pool", target_is_directory=True)
    other = TrainConfig.from_dict({**cfg.to_dict(), "pool": str(link)})
    again = frames.open_store(other, dist.Dist(), progress=False)
    cols = ["split", "family", "tree", "label"]
    pd.testing.assert_frame_equal(again.index[cols], union.index[cols])

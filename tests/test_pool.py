"""The multi-tree training pool: speaker splits, resampling, frames, balance, families."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy.signal import resample_poly
from sklearn.utils.class_weight import compute_class_weight

from gpwave import pool
from gpwave.errors import DataError
from tests._signals import chirp, make_tree, noise, write_wav

REPO = Path(__file__).resolve().parents[1]


def _manifest(trees: dict[str, Path], speakers: dict[str, str]) -> pd.DataFrame:
    """A manifest (file, utterance, speaker) for synthetic trees; speaker by utterance."""
    rows = []
    for name, root in trees.items():
        for f in sorted(root.glob("*_*/*.wav")):
            utt = f.stem.removesuffix("_gen")
            rows.append({"file": f"{name}/{f.parent.name}/{f.name}", "utterance": utt,
                         "speaker": speakers[utt]})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def synthetic(tmp_path) -> pd.DataFrame:
    """Two trees, 10 speakers (two of them in both trees), 3 unknown-speaker utterances."""
    utts_a = [f"a{i}" for i in range(8)] + ["shared"]
    utts_b = [f"b{i}" for i in range(6)] + ["shared", "u1", "u2", "u3"]
    make_tree(tmp_path / "one", {"A_rec": utts_a, "B_umelgan_en": utts_a,
                                 "C_wavernn_ko": utts_a}, seconds=1.5)  # fmt: skip
    make_tree(tmp_path / "two", {"A_rec": utts_b, "B_pwg16": utts_b, "C_qppwg20": utts_b},
              seconds=1.5)  # fmt: skip
    spk = {u: f"s:{i // 2}" for i, u in enumerate(utts_a)}
    spk |= {f"b{i}": f"s:{i}" for i in range(6)}  # s:0..s:3 also occur in tree "one"
    spk |= {"shared": "s:9", "u1": "arctic:unknown", "u2": "arctic:unknown",
            "u3": "arctic:unknown"}  # fmt: skip
    man = _manifest({"one": tmp_path / "one", "two": tmp_path / "two"}, spk)
    man.to_csv(tmp_path / "MANIFEST.tsv", sep="\t", index=False)
    return pool.pool_table(tmp_path)


@pytest.mark.parametrize(
    ("folder", "family"),
    [("B_universalmelgan_en", "melgan"), ("C_fbmelgan_ko", "melgan"), ("E_qppwg16", "qppwg"),
     ("B_pwg16", "pwg"), ("G_qpnet", "qpnet"), ("D_univnetc16official", "univnet"),
     ("B_hifigan", "hifigan"), ("D_usfgan", "usfgan"), ("C_fwgan", "fwgan"),
     ("B_lpcnet", "lpcnet"), ("B_nsf", "nsf"), ("C_vocos", "vocos"), ("D_wavehax", "wavehax"),
     ("D_singgan", "singgan"), ("F_wavenet_en", "wavenet"), ("D_wavernn_en", "wavernn"),
     ("E_waveglow_ko", "waveglow"), ("B_wavenetmol", "wavenet"),
     ("C_taco2hifiganv1ft", "hifigan"), ("A_libritts", "real")],
)  # fmt: skip
def test_family_of(folder, family):
    assert pool.family_of(folder) == family


def test_family_of_refuses_an_unknown_name():
    with pytest.raises(DataError, match="B_mystery"):
        pool.family_of("B_mystery")


def test_pool_table_columns_and_speakers(synthetic):
    assert list(synthetic.columns) == pool.POOL_COLUMNS
    assert len(synthetic) == 3 * 9 + 3 * 10
    row = synthetic[synthetic.file.str.endswith("two/B_pwg16/b3_gen.wav")].iloc[0]
    assert (row.speaker, row.utterance, row.label, row.family) == ("s:3", "b3", 1, "pwg")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_speaker_in_two_splits(synthetic, seed):
    s = pool.speaker_splits(synthetic, seed=seed)
    known = s[~s.speaker.str.endswith(":unknown")]
    assert known.groupby("speaker")["split"].nunique().max() == 1  # across both trees
    assert s.groupby("utterance")["split"].nunique().max() == 1  # "shared" in two trees
    assert set(s.split) == {"train", "val", "test"}


def test_unknown_speakers_are_one_utterance_each(synthetic):
    groups = pool.speaker_groups(synthetic)
    unknown = synthetic.speaker.str.endswith(":unknown")
    per_group = synthetic[unknown].groupby(groups[unknown])["utterance"].nunique()
    assert len(per_group) == 3 and (per_group == 1).all()
    splits = {pool.speaker_splits(synthetic, seed=s).loc[unknown].groupby("utterance")["split"]
              .first().nunique() for s in range(6)}  # fmt: skip
    assert max(splits) > 1  # not forced into one split together


def test_split_is_deterministic_and_seeded(synthetic):
    a = pool.speaker_splits(synthetic, seed=5).split
    assert a.equals(pool.speaker_splits(synthetic, seed=5).split)
    assert any(not a.equals(pool.speaker_splits(synthetic, seed=s).split) for s in range(6))


def test_preset_splits_are_kept(synthetic):
    preset = synthetic.assign(split=np.where(synthetic.tree == "one", "train", ""))
    s = pool.speaker_splits(preset, seed=0)
    assert (s.loc[s.tree == "one", "split"] == "train").all()


def test_resampling_applies_to_both_classes(tmp_path):
    x = chirp(100, 5000, 2.0, sr=16000)  # well below both resamplers' band edges
    real = write_wav(tmp_path / "A_rec" / "u.wav", np.clip(x, -1, 1), sr=16000)
    fake = write_wav(tmp_path / "B_lpcnet" / "u_gen.wav", np.clip(0.9 * x, -1, 1), sr=16000)
    a, b = pool.load_resampled(real), pool.load_resampled(fake)
    assert len(a) == len(b) == int(np.ceil(2.0 * 16000 * 22050 / 16000))
    ref = resample_poly(sf.read(real, dtype="float32")[0], 441, 320)  # scipy as reference
    inner = slice(2000, len(a) - 2000)
    assert np.abs(a[inner] - ref[inner]).max() < 5e-3
    np.testing.assert_allclose(b, 0.9 * a, atol=2e-4)  # the same resampling on the fake
    table = pd.DataFrame({"tree": "t", "utterance": "u", "file": [str(real), str(fake)],
                          "label": [0, 1]})  # fmt: skip
    frames, index = pool.pair_frames(table)
    assert frames.shape == (4, 22050)
    assert index.groupby("label").size().tolist() == [2, 2]


def test_frames_are_cut_inside_every_file_of_an_utterance(tmp_path):
    real = write_wav(tmp_path / "A_rec" / "u.wav", noise(3.5, seed=1))
    fake = write_wav(tmp_path / "B_wavehax" / "u_gen.wav", noise(2.8, seed=2))
    table = pd.DataFrame({"tree": "t", "utterance": "u", "file": [str(real), str(fake)],
                          "label": [0, 1]})  # fmt: skip
    frames, index = pool.pair_frames(table)
    assert index.groupby("label").size().tolist() == [2, 2]  # 2.8 s: two frames on both sides
    np.testing.assert_array_equal(frames[0], sf.read(real, dtype="float32")[0][:22050])


def test_class_weights_match_sklearn_balanced():
    y = np.array([0] * 3 + [1] * 12)
    want = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    np.testing.assert_allclose(pool.class_weights(y), want[y])
    w = pool.class_weights(y)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    with pytest.raises(ValueError, match="both classes"):
        pool.class_weights([1, 1])


def test_leave_family_out_excludes_every_folder_of_the_family(synthetic):
    folders = pool.family_folders(synthetic)
    assert folders["melgan"] == ["one/B_umelgan_en"]
    kept = pool.leave_family_out(synthetic, ["pwg", "melgan"])
    assert not kept.family.isin(["pwg", "melgan"]).any()
    assert (kept.label == 0).sum() == (synthetic.label == 0).sum()
    assert set(pool.families(kept)) == {"qppwg", "wavernn"}


def _shared_train() -> Path | None:
    for c in (REPO.parent / "shared" / "speakers-train",
              os.environ.get("GPWAVE_SPEAKERS_TRAIN_MIRROR")):  # fmt: skip
        if c and (Path(c) / "MANIFEST.tsv").is_file():
            return Path(c)
    return None


@pytest.mark.slow
def test_speakers_train_pool_splits_by_speaker_across_trees():
    root = _shared_train()
    if root is None:
        pytest.skip("../shared/speakers-train is not next to this checkout")
    p = pool.pool_table(root)
    assert len(p) == 458 and (p.label == 0).sum() == 89
    assert p.tree.nunique() == 7 and set(p.rate) == {16000, 22050, 24000}
    for seed in range(3):
        s = pool.speaker_splits(p, seed=seed)
        known = s[~s.speaker.str.endswith(":unknown")]
        assert known.groupby("speaker")["split"].nunique().max() == 1
        assert s.groupby("utterance")["split"].nunique().max() == 1
        multi = s[s.speaker == "libritts:1089"]
        assert multi.tree.nunique() > 1 and multi.split.nunique() == 1
    small = p[p.tree == "usfgan"]
    frames, index = pool.pair_frames(small, max_frames=2)
    assert frames.shape[1] == 22050 and set(index.label) == {0, 1}


def test_group_folds_hold_each_speaker_out_once(synthetic):
    folds = pool.group_folds(synthetic, n_folds=3, seed=1)
    assert set(folds) == {0, 1, 2}
    known = ~synthetic.speaker.str.endswith(":unknown")
    assert synthetic[known].groupby("speaker").apply(lambda t: folds[t.index].nunique()).max() == 1
    assert synthetic.groupby("utterance").apply(lambda t: folds[t.index].nunique()).max() == 1


def test_mini_training_folders_keep_the_protocols_utterance_split(tmp_path):
    from gpwave.data import split_of

    root = make_tree(tmp_path / "mini", seconds=1.2)
    t = pool.mini_train_table(root)
    assert set(t.folder) == {"A_ljspeech", "B_melgan"} and set(t.speaker) == {"ljspeech:LJ"}
    assert (t.split == [split_of(u) for u in t.utterance]).all()
    joined = pool.speaker_splits(t, seed=3)
    assert joined.split.tolist() == t.split.tolist()  # preset splits survive the speaker split

"""gpwave.robustness: sweep selection, whole-utterance perturbation, EER per condition.

References are computed here by hand (numpy slicing, scikit-learn's ROC), not by the code.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from _signals import SR, noise, tone, write_wav
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from gpwave import perturb, robustness


def _sk_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def _index(counts: dict[str, int], split: str = "test") -> pd.DataFrame:
    rows = []
    for folder, n in counts.items():
        for i in range(n):
            for offset in (0, SR):  # two frames per file: files must be deduplicated
                rows.append({"file": f"/d/{folder}/u{i}.wav", "offset": offset,
                             "label": int(not folder.startswith("A_")),
                             "generator": folder.split("_", 1)[1], "folder": folder,
                             "utterance": f"u{i}", "split": split})  # fmt: skip
    return pd.DataFrame(rows)


def test_sweep_clips_spreads_fakes_evenly_and_takes_small_folders_whole():
    index = pd.concat([_index({"A_real": 10, "B_big": 20, "C_small": 1, "D_mid": 5}),
                       _index({"A_real": 3, "B_big": 3}, split="train").assign(
                           file=lambda d: d["file"] + ".train")])  # fmt: skip
    clips = robustness.sweep_clips(index, n_real=4, n_fake=9, seed=1)
    assert clips["file"].is_unique
    assert not clips["file"].str.endswith(".train").any()
    assert (clips["label"] == 0).sum() == 4
    per_folder = clips[clips["label"] == 1]["folder"].value_counts().to_dict()
    assert per_folder == {"B_big": 4, "C_small": 1, "D_mid": 4}
    assert list(clips["label"]) == [0] * 4 + [1] * 9  # real first


def test_sweep_clips_filters_folders_and_needs_both_classes():
    index = _index({"A_real": 4, "B_x": 4, "C_y": 4})
    clips = robustness.sweep_clips(index, 2, 10, folders=["C_y"])
    assert set(clips.loc[clips["label"] == 1, "folder"]) == {"C_y"}
    assert (clips["label"] == 1).sum() == 4  # all C_y has
    with pytest.raises(ValueError, match="no fake"):
        robustness.sweep_clips(index, 2, 2, folders=["Z_none"])


def test_load_clips_keeps_the_first_seconds(tmp_path):
    x = noise(3.0, seed=4)
    path = write_wav(tmp_path / "a.wav", x, subtype="FLOAT")
    (clip,) = robustness.load_clips([path], 1.5)
    np.testing.assert_array_equal(clip, x[: int(1.5 * SR)])


def test_perturbed_frames_cut_after_perturbing_the_whole_clip():
    clips = [noise(2.5, seed=0), noise(1.2, seed=1)]
    frames, owner = robustness.perturbed_frames(clips, robustness.CLEAN, 0.0, 3)
    np.testing.assert_array_equal(owner, [0, 0, 1])
    np.testing.assert_array_equal(frames[1], clips[0][SR : 2 * SR])
    # a shift of 0.5 s moves the frame grid: the first frame starts half a second in
    frames, owner = robustness.perturbed_frames(clips, "shift", 0.5, 3)
    np.testing.assert_array_equal(owner, [0, 0])  # 0.7 s of clip 1 is left: no frame
    np.testing.assert_array_equal(frames[0], clips[0][SR // 2 : SR // 2 + SR])
    # a gain scales by 10^(dB/20)
    frames, _ = robustness.perturbed_frames(clips, "gain", -6.0, 1)
    np.testing.assert_allclose(frames[0], clips[0][:SR] * 10 ** (-6 / 20), rtol=1e-6)


def test_perturbed_frames_seed_each_clip_differently():
    clips = [np.zeros(SR, np.float32) + 0.1, np.zeros(SR, np.float32) + 0.1]
    frames, _ = robustness.perturbed_frames(clips, "white-noise", 10.0, 1, seed=3)
    assert not np.allclose(frames[0], frames[1])
    expected = perturb.add_noise(clips[1], 10.0, "white", 4)  # clip i uses seed + i
    np.testing.assert_allclose(frames[1], expected)


def test_conditions_start_clean_and_refuse_unknown_kinds():
    assert robustness.conditions({"mp3": [64, 32]}) == [
        ("clean", 0.0),
        ("mp3", 64.0),
        ("mp3", 32.0),
    ]
    with pytest.raises(ValueError, match="unknown perturbation"):
        robustness.conditions({"reverb": [1]})


class _Loudness(torch.nn.Module):
    """A toy detector: the fake logit is the frame's RMS (louder = more fake)."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def fake_log_odds(self, x):
        self.seen.append(x.clone())
        return x.pow(2).mean(-1).sqrt()


def test_perturbation_sweep_eer_per_condition_matches_sklearn():
    rng = np.random.default_rng(0)
    amps = np.r_[rng.uniform(0.05, 0.3, 6), rng.uniform(0.2, 0.5, 6)]
    audio = [tone(440 + 10 * i, 2.0, amp=a) for i, a in enumerate(amps)]
    clips = pd.DataFrame({"file": [f"f{i}" for i in range(12)], "label": [0] * 6 + [1] * 6,
                          "generator": ["real"] * 6 + ["fake"] * 6,
                          "folder": ["A_real"] * 6 + ["B_fake"] * 6,
                          "utterance": [f"u{i}" for i in range(12)]})  # fmt: skip
    table, scores = robustness.perturbation_sweep(
        {"loud": _Loudness()}, clips, audio, {"gain": [6.0]}, frames_per_clip=2, n_boot=50
    )
    assert list(table.columns) == robustness.SWEEP_COLUMNS
    assert list(table["kind"]) == ["clean", "gain"]
    assert list(table["n_frames"]) == [24, 24]
    y = np.repeat(clips["label"].to_numpy(), 2)
    rms = np.repeat(amps / np.sqrt(2), 2)
    assert table["eer"].iloc[0] == pytest.approx(_sk_eer(y, rms), abs=1e-6)
    # a gain scales every score alike: the ranking, hence the EER, stays
    assert table["eer"].iloc[1] == pytest.approx(table["eer"].iloc[0], abs=1e-6)
    clean = scores[scores["kind"] == "clean"]["loud"].to_numpy()
    gained = scores[scores["kind"] == "gain"]["loud"].to_numpy()
    np.testing.assert_allclose(gained, clean * 10 ** (6 / 20), rtol=1e-4)
    row = table.iloc[0]
    assert row["eer_ci_low"] <= row["eer"] <= row["eer_ci_high"]
    assert table["unit"].tolist() == ["", "dB"]


def test_worst_case_names_the_worst_condition():
    table = pd.DataFrame(
        [["a", "clean", 0.0, "", 10, 0.05, 0, 0.1],
         ["a", "mp3", 32.0, "kbit/s", 10, 0.4, 0.3, 0.5],
         ["a", "gain", -24.0, "dB", 10, 0.2, 0.1, 0.3],
         ["b", "clean", 0.0, "", 10, 0.1, 0, 0.2],
         ["b", "mp3", 32.0, "kbit/s", 10, 0.1, 0, 0.2],
         ["b", "gain", -24.0, "dB", 10, 0.3, 0.2, 0.4]],
        columns=robustness.SWEEP_COLUMNS,
    )  # fmt: skip
    worst = robustness.worst_case(table)
    assert worst.loc["a", "worst_condition"] == "mp3 32 kbit/s"
    assert worst.loc["b", "worst_condition"] == "gain -24 dB"
    assert worst.loc["a", "mean_perturbed"] == pytest.approx(0.3)
    assert worst.loc["b", "clean"] == pytest.approx(0.1)


def test_every_detector_scores_the_same_perturbed_frames():
    audio = [noise(1.5, seed=i, amp=0.05 * (1 + i)) for i in range(4)]
    clips = pd.DataFrame({"file": list("abcd"), "label": [0, 0, 1, 1],
                          "generator": ["r", "r", "f", "f"], "folder": ["A_r"] * 2 + ["B_f"] * 2,
                          "utterance": list("abcd")})  # fmt: skip
    a, b = _Loudness(), _Loudness()
    sweep = {"white-noise": [10.0], "mp3": [32.0]}
    robustness.perturbation_sweep({"a": a, "b": b}, clips, audio, sweep, 1, n_boot=5)
    assert len(a.seen) == len(b.seen) == 3
    assert all(torch.equal(u, v) for u, v in zip(a.seen, b.seen, strict=True))
    expected = perturb.codec_round_trip(audio[2], SR, "mp3", 32.0)[:SR]
    np.testing.assert_allclose(a.seen[2].numpy()[2], expected, atol=1e-6)


class _Saturating(torch.nn.Module):
    """A toy detector whose log-odds saturate: min(RMS, 0.25)."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def fake_log_odds(self, x):
        return x.pow(2).mean(-1).sqrt().clamp(max=0.25)


class _LevelStore:
    index = pd.DataFrame({"row": range(5), "label": [0, 0, 1, 1, 1],
                          "generator": ["real", "real", "melgan", "melgan", "pwg"],
                          "split": ["test"] * 5})  # fmt: skip
    levels = np.array([0.1, 0.2, 0.3, 0.4, 0.01])

    def read(self, rows):
        return np.repeat(self.levels[np.asarray(rows)][:, None], 32, 1).astype(np.float32)


def test_gain_sweep_by_hand():
    # frames of constant level: RMS = level x gain. Real 0.1, 0.2 vs melgan 0.3, 0.4:
    # at -6 dB and 0 dB the saturated scores still separate them (EER 0); at +12 dB
    # (x3.98) every frame saturates at 0.25, all scores tie and the EER is 0.5
    t = robustness.gain_sweep(
        {"sat": _Saturating(), "loud": _Loudness()}, _LevelStore(), [-6, 0, 12], ["melgan"]
    )
    assert list(t.index) == [-6, 0, 12] and t.index.name == "gain_db"
    assert list(t.columns) == ["sat", "loud"]
    assert t["sat"].tolist() == [0.0, 0.0, 0.5]
    assert t["loud"].tolist() == [0.0, 0.0, 0.0]  # no saturation: a gain keeps the order
    # every generator: pwg (0.01) ranks below both reals, EER 1/3 pooled at 0 dB by hand:
    # ROC over 0.4f 0.3f 0.2r 0.1r 0.01f: (0,0) (0,1/3) (0,2/3) (.5,2/3) (1,2/3) (1,1)
    pooled = robustness.gain_sweep({"loud": _Loudness()}, _LevelStore(), [0])
    assert pooled.loc[0, "loud"] == pytest.approx(1 / 3)

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from scipy.special import logit
from sklearn.metrics import roc_curve

from gpwave import evaluate
from gpwave.errors import DataError


def sklearn_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_eer_perfect_separation():
    assert evaluate.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0


def test_eer_perfectly_wrong():
    assert evaluate.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == pytest.approx(1.0)


def test_eer_identical_distributions():
    y = np.r_[np.zeros(50), np.ones(50)]
    assert evaluate.eer(y, np.full(100, 0.3)) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    s = rng.random(200_000)
    y = rng.integers(0, 2, 200_000)
    assert evaluate.eer(y, s) == pytest.approx(0.5, abs=0.01)


def test_argmax_eer_hand_computed():
    # 4 real (2 flagged: FPR a = 1/2), 4 fake (1 flagged: TPR b = 1/4); a + b < 1:
    # EER = a + (1 - a)(1 - a - b) / (2 - a - b) = 1/2 + (1/2)(1/4)/(5/4) = 0.6
    # (scores are log-odds: scipy's logit of the probabilities; the argmax is log-odds >= 0)
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = logit([0.9, 0.6, 0.1, 0.2, 0.7, 0.4, 0.3, 0.2])
    assert evaluate.argmax_eer(y, s) == pytest.approx(0.6)
    # a = 1/4, b = 3/4: a + b = 1, EER = a / (a + b) = 1/4
    s = logit([0.6, 0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.45])
    assert evaluate.argmax_eer(y, s) == pytest.approx(0.25)
    # perfectly ranked but badly calibrated scores: score EER 0, argmax EER 1/2
    s = logit([0.6, 0.7, 0.8, 0.9, 0.95, 0.96, 0.97, 0.98])
    assert evaluate.eer(y, s) == 0.0 and evaluate.argmax_eer(y, s) == pytest.approx(0.5)


def test_eer_known_roc():
    # Scores: reals at 1, 2, 3, 4; fakes at 2.5, 3.5, 5, 6 -> ROC steps cross FPR=FNR=0.25
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [1, 2, 3, 4, 2.5, 3.5, 5, 6]
    assert evaluate.eer(y, s) == pytest.approx(0.25)
    # Ties between classes make a diagonal ROC segment: interpolated, not a step
    y2 = [0, 0, 1, 1]
    s2 = [0.0, 0.5, 0.5, 1.0]
    fpr, tpr = evaluate.roc(y2, s2)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    # FNR = 1 - TPR falls from 0.5 to 0 while FPR rises from 0 to 0.5: they meet at 0.25
    assert evaluate.eer(y2, s2) == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(5))
def test_eer_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + y * rng.uniform(0, 2)
    s = np.round(s, 1)  # ties
    fpr, tpr = evaluate.roc(y, s)
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert evaluate.eer(y, s) == pytest.approx(sklearn_eer(y, s), abs=1e-9)


def test_eer_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        evaluate.eer([1, 1], [0.2, 0.3])


def test_accuracy_at_log_odds_zero_is_accuracy_at_probability_half():
    assert evaluate.accuracy([0, 1, 1, 0], logit([0.2, 0.7, 0.4, 0.5])) == 0.5
    assert evaluate.accuracy([0, 1, 1, 0], [0.2, 0.7, 0.4, 0.5], threshold=0.5) == 0.5


def test_probability_is_the_logistic_function():
    s = np.array([-700.0, -3.0, 0.0, 2.0, 40.0])
    np.testing.assert_allclose(evaluate.probability(s), 1 / (1 + np.exp(-s)), rtol=1e-12)


def test_bootstrap_resamples_utterances_not_frames():
    rng = np.random.default_rng(1)
    # 20 utterances, 30 frames each; each utterance's frames share one score.
    utt = np.repeat(np.arange(20), 30)
    y = (utt % 2).astype(int)
    base = rng.normal(size=20) + 0.8 * (np.arange(20) % 2)
    s = base[utt]
    lo, hi = evaluate.eer_ci(y, s, utt, n_boot=400)
    assert lo <= evaluate.eer(y, s) <= hi
    # Treating frames as independent understates the spread; groups must give a wider CI.
    lo_f, hi_f = evaluate.eer_ci(y, s, np.arange(len(y)), n_boot=400)
    assert hi - lo > 2 * (hi_f - lo_f)


def make_frames():
    rng = np.random.default_rng(0)
    rows = []
    for gen, label, shift in [("ljspeech", 0, 0.0), ("melgan", 1, 3.0), ("pwg", 1, 0.0)]:
        for u in range(10):
            for _k in range(3):
                rows.append((gen, label, f"{gen}{u}", rng.normal() + shift))
    df = pd.DataFrame(rows, columns=["generator", "label", "utterance", "score"])
    return df, 1 / (1 + np.exp(-df["score"].to_numpy()))


def test_table_per_generator_and_pooled(tmp_path):
    frames, scores = make_frames()
    t = evaluate.table_from_scores(frames, scores, seen=["melgan"], n_boot=50)
    assert list(t.columns) == evaluate.TABLE_COLUMNS
    assert list(t["generator"]) == ["melgan", "pwg", evaluate.POOLED]
    assert t.set_index("generator").loc["melgan", "eer"] < 0.1
    assert t.set_index("generator").loc["pwg", "eer"] > 0.2
    # pooled unseen == pwg here (melgan is seen)
    assert t.iloc[2]["eer"] == pytest.approx(t.iloc[1]["eer"])
    assert (t["n_frames"] == [60, 60, 60]).all()
    paths = evaluate.save_table(t, tmp_path / "table")
    assert json.loads(paths["json"].read_text())[0]["generator"] == "melgan"
    assert "melgan" in paths["md"].read_text()
    assert r"pooled\_unseen" in paths["tex"].read_text()
    assert "<table" in paths["html"].read_text()


def test_aggregate_seeds():
    t0 = pd.DataFrame(
        {
            "generator": ["a", "b"],
            "n_frames": [10, 10],
            "eer": [0.1, 0.3],
            "eer_ci_low": [0, 0],
            "eer_ci_high": [1, 1],
            "accuracy": [0.9, 0.7],
        }
    )
    t1 = t0.assign(eer=[0.3, 0.3], accuracy=[0.7, 0.7])
    agg = evaluate.aggregate_seeds([t0, t1]).set_index("generator")
    assert agg.loc["a", "eer_mean"] == pytest.approx(0.2)
    assert agg.loc["a", "eer_std"] == pytest.approx(0.1)
    assert agg.loc["b", "eer_std"] == pytest.approx(0.0)
    assert agg.loc["a", "n_seeds"] == 2


def test_disagreements_lists_a_right_b_wrong():
    frames = pd.DataFrame(
        {
            "row": [0, 1, 2, 3],
            "label": [0, 1, 1, 0],
            "generator": ["ljspeech", "melgan", "melgan", "ljspeech"],
            "file": ["a.wav"] * 4,
            "offset": [0, 1, 2, 3],
        }
    )
    a = logit([0.1, 0.9, 0.9, 0.8])
    b = logit([0.6, 0.2, 0.9, 0.9])
    d = evaluate.disagreements(a, b, frames)
    assert sorted(d["row"]) == [0, 1]
    assert list(d["row"]) == [1, 0]  # most confidently wrong first


class _Store:
    sample_rate = 8000

    def read(self, rows):
        return np.stack([np.full(800, 0.1 * (r + 1), dtype=np.float32) for r in rows])


def test_export_disagreements_writes_clips_with_scores(tmp_path):
    import soundfile as sf

    frames = pd.DataFrame(
        {
            "row": [0, 1, 2],
            "label": [1, 1, 0],
            "offset": [0, 0, 0],
            "generator": ["melgan", "melgan", "ljspeech"],
            "file": ["x/a_gen.wav", "x/b_gen.wav", "x/c.wav"],
        }
    )
    d = evaluate.disagreements(logit([0.9, 0.8, 0.1]), logit([0.1, 0.3, 0.9]), frames)
    out = evaluate.export_disagreements(d, _Store(), tmp_path, n=2)
    assert len(out) == 2
    x, sr = sf.read(out["clip"].iloc[0])
    assert sr == 8000 and len(x) == 800
    saved = pd.read_csv(tmp_path / "disagreements.csv")
    assert list(saved["score_b"]) == list(out["score_b"])


def test_split_scores_score_only_the_split_and_feed_disagreements():

    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    rng = np.random.default_rng(0)
    waves = rng.normal(0, 0.1, (6, 4096)).astype(np.float32)

    class Store:
        index = pd.DataFrame(
            {
                "row": range(6),
                "label": [0, 1, 0, 1, 0, 1],
                "offset": 0,
                "generator": ["ljspeech", "melgan"] * 3,
                "file": "f.wav",
                "split": ["test"] * 4 + ["train"] * 2,
            }
        )

        def read(self, rows):
            return waves[np.asarray(rows)]

    torch.manual_seed(0)
    a, b = (Detector(FeatureConfig(level=4), "linear", 4096).eval() for _ in range(2))
    frames, scores_a = evaluate.split_scores(a, Store())
    _, scores_b = evaluate.split_scores(b, Store())
    assert list(frames["row"]) == [0, 1, 2, 3]  # the test split only
    with torch.no_grad():
        za, zb = (m(torch.from_numpy(waves[:4])) for m in (a, b))
    sa, sb = ((z[:, 1] - z[:, 0]).numpy() for z in (za, zb))  # log-odds from the logits
    np.testing.assert_allclose(scores_a, sa, rtol=1e-5)
    out = evaluate.disagreements(scores_a, scores_b, frames)
    ref = evaluate.disagreements(sa, sb, Store.index.iloc[:4])
    assert list(out["row"]) == list(ref["row"])


class _IndexStore:
    """A store whose index is all that split_frames reads."""

    def __init__(self, counts):
        gens = [g for g, n in counts.items() for _ in range(n)]
        self.index = pd.DataFrame(
            {
                "row": range(len(gens)),
                "generator": gens,
                "label": [int(g != "ljspeech") for g in gens],
                "split": "test",
            }
        )


def test_split_frames_caps_each_folder_and_filters_generators():
    store = _IndexStore({"ljspeech": 10, "melgan": 6, "hifigan": 3})
    counts = evaluate.split_frames(store, limit=4).groupby("generator").size().to_dict()
    assert counts == {"ljspeech": 4, "melgan": 4, "hifigan": 3}
    only = evaluate.split_frames(store, generators=["melgan"])
    assert set(only.generator) == {"ljspeech", "melgan"} and len(only) == 16
    a, b = (evaluate.split_frames(store, limit=4, seed=s)["row"].tolist() for s in (1, 1))
    assert a == b == sorted(a)
    assert evaluate.split_frames(store, "train").empty


def test_load_seed_tables_reads_every_seed_in_order(tmp_path):
    for seed in (10, 2, 0):
        (tmp_path / f"seed{seed}").mkdir()
        pd.DataFrame({"generator": ["melgan"], "eer": [seed / 100]}).to_csv(
            tmp_path / f"seed{seed}" / "test_table.csv", index=False
        )
    tables = evaluate.load_seed_tables(tmp_path)
    assert list(tables) == [0, 2, 10] and tables[10]["eer"][0] == 0.1
    with pytest.raises(DataError, match="no seed"):
        evaluate.load_seed_tables(tmp_path / "untrained")


def test_notebooks_evaluate_through_one_path():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("03_train", "04_generalization", "05_dilation"):
        text = (notebooks / f"{name}.py").read_text()
        for private in ("table_from_scores", "select_frames", "score_frames(", "glob("):
            assert private not in text, f"{name} scores or loads tables by hand: {private}"
    for name in ("03_train", "04_generalization", "05_dilation"):
        assert "load_seed_tables" in (notebooks / f"{name}.py").read_text()


def test_extra_pools_leave_out_the_named_generators():
    frames = pd.DataFrame(
        {
            "label": [0, 0, 0, 0, 1, 1, 1, 1],
            "generator": ["ljspeech"] * 4 + ["melgan", "melgan", "wavenet", "wavenet"],
            "utterance": [f"u{i}" for i in range(8)],
        }
    )
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.0, 0.05])
    t = evaluate.table_from_scores(frames, scores, n_boot=0, pools={"no_wavenet": ["wavenet"]})
    rows = t.set_index("generator")["eer"]
    assert rows["melgan"] == 0.0 and rows["no_wavenet"] == 0.0
    # hand-computed: the pooled row ranks both wavenet frames below every real frame
    assert rows[evaluate.POOLED] == pytest.approx(evaluate.eer([0] * 4 + [1] * 4, scores))
    assert rows[evaluate.POOLED] > 0.25


def _sk_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


def test_paired_eer_difference_point_estimate_and_paired_interval():
    rng = np.random.default_rng(0)
    n_utts, per = 40, 3
    groups = np.repeat([f"u{i}" for i in range(n_utts)], per)
    y = np.repeat(rng.integers(0, 2, n_utts), per)
    shared = rng.normal(size=y.size)  # both detectors see the same hard frames
    a = y * 1.5 + shared + 0.1 * rng.normal(size=y.size)
    b = y * 1.0 + shared + 0.1 * rng.normal(size=y.size)
    diff, low, high = evaluate.paired_eer_difference(y, a, b, groups, n_boot=300, seed=1)
    assert diff == pytest.approx(_sk_eer(y, a) - _sk_eer(y, b), abs=1e-6)
    assert low <= diff <= high and high < 0  # A is reliably better
    # pairing: the interval of the difference is narrower than the two EERs' own spread
    lo_a, hi_a = evaluate.eer_ci(y, a, groups, n_boot=300, seed=1)
    lo_b, hi_b = evaluate.eer_ci(y, b, groups, n_boot=300, seed=1)
    assert high - low < (hi_a - lo_a) + (hi_b - lo_b)
    same = evaluate.paired_eer_difference(y, a, a, groups, n_boot=50)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        evaluate.paired_eer_difference(y, a, b[:-1], groups)


def test_paired_table_rows_for_the_seen_generator_and_the_unseen_pool():
    frames = pd.DataFrame(
        {
            "label": [0, 0, 0, 0, 1, 1, 1, 1],
            "generator": ["ljspeech"] * 4 + ["melgan", "melgan", "hifigan", "wavenet"],
            "utterance": ["u0", "u1", "u2", "u3", "u0", "u1", "u2", "u3"],
        }
    )
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.7, 0.6])  # separates everything
    b = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.0, 0.05])  # misses the unseen ones
    t = evaluate.paired_table(frames, a, b, "melgan", n_boot=50).set_index("test_frames")
    assert list(t.index) == ["melgan", evaluate.POOLED]
    assert t.loc["melgan", "difference"] == 0.0
    assert t.loc[evaluate.POOLED, "eer_a"] == 0.0
    assert t.loc[evaluate.POOLED, "eer_b"] == pytest.approx(
        _sk_eer([0] * 4 + [1, 1], b[[0, 1, 2, 3, 6, 7]])
    )
    assert t.loc[evaluate.POOLED, "difference"] < 0


def test_scores_of_a_detector_sure_of_every_frame_keep_their_order():
    # logits (0, 40 + w.x): every frame's float32 fake probability is 1.0 (all tied, EER
    # 0.5), but the log-odds still rank fakes above reals; the EER must come from them
    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    waves = (rng.normal(0, 1, (40, 4096)) * (0.05 + 0.05 * y[:, None])).astype(np.float32)
    det = Detector(FeatureConfig(level=4), "linear", 4096, level_norm=False).eval()
    with torch.no_grad():
        det.model.fc.bias.copy_(torch.tensor([0.0, 40.0]))
        z = det(torch.from_numpy(waves)).double().numpy()
    assert (det.fake_probability(torch.from_numpy(waves)).numpy() == 1.0).all()
    s = evaluate.score_waveforms(det, waves, batch_size=16)
    np.testing.assert_allclose(s, z[:, 1] - z[:, 0], rtol=1e-6)
    assert len(np.unique(s)) == 40
    assert evaluate.eer(y, s) == pytest.approx(sklearn_eer(y, z[:, 1] - z[:, 0]), abs=1e-9)
    p = evaluate.score_waveforms(det, waves, kind="probability")
    assert evaluate.eer(y, p) == pytest.approx(0.5)

"""The cheap detector of the learning curves: features against PyWavelets, fits, points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import pywt

from gpwave import curves, metrics
from tests._signals import chirp, noise


def test_mean_log_packets_matches_pywavelets():
    frames = np.stack([chirp(100, 8000, 0.2) + noise(0.2, seed=1), noise(0.2, seed=2)])
    ours = curves.mean_log_packets(frames, "sym5", 4, batch_size=1)
    for k, x in enumerate(frames):
        wp = pywt.WaveletPacket(x.astype(np.float64), "sym5", mode="reflect", maxlevel=4)
        ref = [np.log(np.abs(n.data) + curves.LOG_FLOOR).mean() for n in wp.get_level(4, "freq")]
        np.testing.assert_allclose(ours[k], ref, atol=1e-4)


def test_fit_probe_separates_and_weights_classes():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, (10, 3)), rng.normal(3, 1, (90, 3))]
    y = np.r_[np.zeros(10, int), np.ones(90, int)]
    model = curves.fit_probe(x, y)
    assert metrics.eer(y, model.decision_function(x)) < 0.1
    assert (model.predict(x[:10]) == 0).mean() >= 0.8


def test_draw_is_seeded_and_caps_at_all():
    items = [f"s{i}" for i in range(10)]
    assert curves.draw(items, 3, 1) == curves.draw(items, 3, 1)
    assert len(set(map(tuple, (curves.draw(items, 3, s) for s in range(5))))) > 1
    assert curves.draw(items, None, 0) == sorted(items) == curves.draw(items, 20, 0)


def test_point_mean_over_seeds_and_interval():
    y = np.array([0, 0, 1, 1] * 5)
    groups = np.repeat(np.arange(5), 4)
    perfect, chance = y.astype(float), np.zeros(len(y))
    p = curves.point(y, [perfect, chance], groups, n_boot=50)
    assert p["eer"] == pytest.approx((0.0 + 0.5) / 2)
    assert (p["seed_min"], p["seed_max"], p["n_seeds"]) == (0.0, 0.5, 2)
    assert p["low"] <= p["eer"] <= p["high"]


def test_evaluate_fits_scores_each_test_set():
    rng = np.random.default_rng(1)
    feats = np.r_[rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (20, 2))]
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    model = curves.fit_probe(feats, labels)
    test = pd.DataFrame({"row": np.arange(40), "label": labels, "utterance": np.arange(40) % 10})
    out = curves.evaluate_fits([model], {"t": test}, feats, n_boot=20)
    assert list(out.test) == ["t"] and out.eer.iloc[0] < 0.1


def test_matched_real_keeps_only_the_real_files_of_the_fakes_trees():
    rows = pd.DataFrame({"tree": ["a", "a", "b", "b", "c"], "label": [0, 1, 0, 1, 0],
                         "family": ["real", "lpcnet", "real", "vocos", "real"]})  # fmt: skip
    out = curves.matched_real(rows, rows["family"] == "lpcnet")
    assert out.index.tolist() == [0, 1]


def test_family_protocol_finds_a_family_separable_within_its_tree():
    """Tree "a": lpcnet fakes are shifted in feature 0; tree "b": vocos fakes are not."""
    rng = np.random.default_rng(0)
    rows, feats = [], []
    for tree, family, shift in [("a", "lpcnet", 3.0), ("b", "vocos", 0.0)]:
        for spk in range(6):
            for label in (0, 1):
                rows.append({"tree": tree, "file": f"{tree}/{spk}/{label}", "utterance":
                             f"{tree}{spk}", "speaker": f"{tree}:{spk}", "label": label,
                             "family": family if label else "real"})  # fmt: skip
                feats.append(rng.normal(0, 1, (4, 2)) + [shift * label + 5 * (tree == "b"), 0])
    pool_t = pd.DataFrame(rows)
    frames = pool_t.loc[pool_t.index.repeat(4)].reset_index(drop=True)
    frames["row"] = np.arange(len(frames))
    out = curves.family_protocol(np.concatenate(feats), frames, pool_t, ["lpcnet", "vocos"],
                                 seeds=(0,), n_folds=3)  # fmt: skip
    e = out.set_index(["train", "test"])["eer"]
    assert e["lpcnet", "lpcnet"] < 0.15
    assert e["vocos", "vocos"] > 0.3  # nothing to find: near chance
    assert (out["n_real"] == 24).all() and (out["n_fake"] == 24).all()

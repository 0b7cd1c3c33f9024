"""gpwave.report: tables from scores (hand-computed rows), seed aggregation and export."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from gpwave import report
from gpwave.errors import DataError


def _sk_eer(y, s):
    fpr, tpr, _ = roc_curve(y, s)
    return brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)


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
    t = report.table_from_scores(frames, scores, seen=["melgan"], n_boot=50)
    assert list(t.columns) == report.TABLE_COLUMNS
    assert list(t["generator"]) == ["melgan", "pwg", report.POOLED]
    assert t.set_index("generator").loc["melgan", "eer"] < 0.1
    assert t.set_index("generator").loc["pwg", "eer"] > 0.2
    # pooled unseen == pwg here (melgan is seen)
    assert t.iloc[2]["eer"] == pytest.approx(t.iloc[1]["eer"])
    assert (t["n_frames"] == [60, 60, 60]).all()
    paths = report.save_table(t, tmp_path / "table")
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
    agg = report.aggregate_seeds([t0, t1]).set_index("generator")
    assert agg.loc["a", "eer_mean"] == pytest.approx(0.2)
    assert agg.loc["a", "eer_std"] == pytest.approx(0.1)
    assert agg.loc["b", "eer_std"] == pytest.approx(0.0)
    assert agg.loc["a", "n_seeds"] == 2


def test_load_seed_tables_reads_every_seed_in_order(tmp_path):
    for seed in (10, 2, 0):
        (tmp_path / f"seed{seed}").mkdir()
        pd.DataFrame({"generator": ["melgan"], "eer": [seed / 100]}).to_csv(
            tmp_path / f"seed{seed}" / "test_table.csv", index=False
        )
    tables = report.load_seed_tables(tmp_path)
    assert list(tables) == [0, 2, 10] and tables[10]["eer"][0] == 0.1
    with pytest.raises(DataError, match="no seed"):
        report.load_seed_tables(tmp_path / "untrained")


def test_extra_pools_leave_out_the_named_generators():
    frames = pd.DataFrame(
        {
            "label": [0, 0, 0, 0, 1, 1, 1, 1],
            "generator": ["ljspeech"] * 4 + ["melgan", "melgan", "wavenet", "wavenet"],
            "utterance": [f"u{i}" for i in range(8)],
        }
    )
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.0, 0.05])
    t = report.table_from_scores(frames, scores, n_boot=0, pools={"no_wavenet": ["wavenet"]})
    rows = t.set_index("generator")["eer"]
    assert rows["melgan"] == 0.0 and rows["no_wavenet"] == 0.0
    # hand-computed: the pooled row ranks both wavenet frames below every real frame
    assert rows[report.POOLED] == pytest.approx(_sk_eer([0] * 4 + [1] * 4, scores))
    assert rows[report.POOLED] > 0.25


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
    t = report.paired_table(frames, a, b, "melgan", n_boot=50).set_index("test_frames")
    assert list(t.index) == ["melgan", report.POOLED]
    assert t.loc["melgan", "difference"] == 0.0
    assert t.loc[report.POOLED, "eer_a"] == 0.0
    assert t.loc[report.POOLED, "eer_b"] == pytest.approx(
        _sk_eer([0] * 4 + [1, 1], b[[0, 1, 2, 3, 6, 7]])
    )
    assert t.loc[report.POOLED, "difference"] < 0


def test_table_rows_by_another_column():
    # two systems share one generator name; grouping by folder keeps them apart
    frames = pd.DataFrame(
        {
            "label": [0, 0, 1, 1, 1, 1],
            "generator": ["gt", "gt", "hifigan", "hifigan", "hifigan", "hifigan"],
            "folder": ["A_gt", "A_gt", "B_hifigan", "B_hifigan", "C_hifigan", "C_hifigan"],
            "utterance": ["u0", "u1", "u0", "u1", "u0", "u1"],
        }
    )
    scores = np.array([0.2, 0.4, 0.9, 0.8, 0.3, 0.1])
    t = report.table_from_scores(frames, scores, n_boot=0, by="folder").set_index("generator")
    assert list(t.index) == ["B_hifigan", "C_hifigan", report.POOLED]
    assert t.loc["B_hifigan", "eer"] == 0.0
    # hand-computed: reals 0.2, 0.4 vs fakes 0.3, 0.1: ROC (0,0) (.5,0) (.5,.5) (1,.5) (1,1)
    assert t.loc["C_hifigan", "eer"] == 0.5
    by_gen = report.table_from_scores(frames, scores, n_boot=0)
    assert list(by_gen["generator"]) == ["hifigan", report.POOLED]


def test_jsonable_and_to_json_are_strict():
    text = report.to_json({"a": np.float32(np.nan), "b": [np.int64(2), float("inf")]})
    assert json.loads(text) == {"a": None, "b": [2, None]}
    with pytest.raises(DataError):
        report.load_seed_tables("/nonexistent/run")

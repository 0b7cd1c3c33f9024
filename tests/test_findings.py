"""Tests of gpwave.findings with hand-made tables and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpwave import findings


def test_high_share_hand_computed():
    freqs = np.array([1000.0, 3000.0, 6000.0, 9000.0])
    assert findings.high_share([1, -1, 2, 4], freqs, 5500) == pytest.approx(6 / 8)
    assert findings.uniform_share(freqs, 5500) == pytest.approx(0.5)
    assert np.isnan(findings.high_share([0, 0, 0, 0], freqs, 5500))


def test_share_interval_point_estimate_and_bounds():
    freqs = np.array([1000.0, 8000.0])
    per_frame = np.array([[1.0, 3.0], [3.0, 1.0], [1.0, 1.0]])
    share, low, high = findings.share_interval(per_frame, freqs, 5500, n_boot=500)
    assert share == pytest.approx(5 / 10)  # share of the summed profiles, not mean of shares
    assert 0.25 <= low <= share <= high <= 0.75
    assert np.isnan(findings.share_interval(per_frame[:1], freqs, 5500)[1])


@pytest.mark.parametrize(
    ("low", "high", "expected"), [(0.2, 0.3, 1), (0.01, 0.05, -1), (0.05, 0.2, 0), (np.nan, 0.2, 0)]
)
def test_direction(low, high, expected):
    assert findings.direction(low, high, 0.1) == expected


def test_verdict_rules():
    assert findings.verdict(1, paper_scale=False) == "reproduced"
    assert findings.verdict(-1, paper_scale=True) == "contradicted"
    assert findings.verdict(-1, paper_scale=False) == "not at this scale"
    assert findings.verdict(0, paper_scale=True) == "not at this scale"
    assert findings.verdict(1, paper_scale=False, converged=False) == "not at this scale"


def _paired(seen_diff, seen_ci, unseen_diff, unseen_ci):
    return pd.DataFrame(
        [
            {"test_frames": "melgan", "difference": seen_diff, "ci_low": seen_ci[0],
             "ci_high": seen_ci[1]},
            {"test_frames": "pooled_unseen", "difference": unseen_diff,
             "ci_low": unseen_ci[0], "ci_high": unseen_ci[1]},
        ]
    )  # fmt: skip


def test_ablation_findings_say_which_model_won():
    paired = _paired(0.084, (0.054, 0.135), -0.01, (-0.05, 0.03))
    overview = pd.DataFrame({"run": ["a", "b"], "converged": [True, True]})
    found = findings.ablation_findings(paired, overview, "melgan")
    text = found.markdown()
    assert "without dilation was better by 8.4 points" in text
    assert "+5.4 to +13.5" in text
    assert "cannot be told apart: the difference is -1.0 points" in text
    assert found.rows[0].verdict_trained == "not at this scale"


def test_ablation_findings_reproduced_when_dilation_wins_unseen():
    paired = _paired(0.0, (-0.01, 0.01), -0.1, (-0.15, -0.05))
    overview = pd.DataFrame({"run": ["a", "b"], "converged": [True, True]})
    found = findings.ablation_findings(paired, overview, "melgan")
    assert "with dilation was better by 10.0 points" in found.markdown()
    assert found.rows[0].verdict_trained == "reproduced"


def _table(rows):
    cols = ["generator", "eer", "eer_ci_low", "eer_ci_high"]
    return pd.DataFrame(rows, columns=cols)


def test_generalization_findings_verdicts_and_numbers():
    paper = _table([["melgan", 0.01, 0.0, 0.02], ["wavenet", 0.7, 0.6, 0.8],
                    ["pooled_unseen", 0.3, 0.25, 0.35],
                    ["pooled_without_U-Z", 0.02, 0.01, 0.04]])  # fmt: skip
    own = _table([["melgan", 0.125, 0.08, 0.2], ["pooled_unseen", 0.427, 0.38, 0.47]])
    own = own.rename(columns={"eer": "eer_mean"})
    overview = pd.DataFrame({"run": ["dcnn_packets"], "model": ["dcnn"],
                             "best_val_eer": [0.045], "converged": [True]})  # fmt: skip
    found = findings.generalization_findings(paper, {"dcnn_packets": own}, overview, "melgan")
    row = found.rows[0]
    assert row.verdict_released == "reproduced"  # 1-4 % lies below 10 %
    assert row.verdict_trained == "not at this scale"  # 38-47 %, mini benchmark
    assert "2.0 % (95 % CI 1.0–4.0 %) on the folders it never saw without" in row.released
    assert "30.0 %" in row.released
    assert found.numbers["cnn_max_val_eer"] == pytest.approx(0.045)
    assert found.numbers["cnn_max_seen_eer"] == pytest.approx(0.125)
    assert "12.5 %" in found.markdown() and "42.7 %" in found.markdown()


def test_released_generalization_contradicted():
    paper = _table([["pooled_without_U-Z", 0.3, 0.25, 0.35]])
    assert findings.released_generalization(paper, "pooled_without_U-Z")[1] == "contradicted"


def test_attribution_findings():
    found = findings.attribution_findings(
        (0.62, 0.58, 0.66), (0.56, 0.49, 0.6), 0.5, converged=True, top_khz=[1.0, 6.0, 10.5]
    )
    assert found.rows[0].verdict_released == "reproduced"
    assert found.rows[0].verdict_trained == "not at this scale"
    assert "2 of the released model's 3 most attributed bands" in found.markdown()


def test_fingerprint_findings():
    found = findings.fingerprint_findings(
        {"melgan": 0.8, "hifigan": 0.7, "waveglow": 0.3}, 0.5, {"ljspeech": 40, "melgan": 8}
    )
    assert found.rows[0].verdict_trained == "not at this scale"  # 2 of 3: not 2/3 majority
    assert "2 of 3 generators" in found.markdown()
    assert "between 8 and 40 frames" in found.markdown()


def test_save_load_and_scoreboard(tmp_path):
    found = findings.attribution_findings((0.6, 0.55, 0.65), (0.5, 0.4, 0.6), 0.5, True)
    found.quick = True
    findings.save(found, tmp_path)
    loaded = findings.load_all(tmp_path)
    assert loaded["06_attribution"].rows == found.rows
    table = findings.scoreboard_markdown(loaded)
    lines = table.splitlines()
    assert lines[0].startswith("| Deliverable")
    assert sum(line.startswith("| ") for line in lines) == 1 + len(findings.CLAIMS)  # header + rows
    assert "{doc}`attribution </executed/06_attribution>`" in table
    assert "not measured in this build" in table  # the three other deliverables
    assert findings.QUICK_NOTE in table


def test_data_training_and_robustness_findings():
    summary = pd.DataFrame({"generator": ["ljspeech", "melgan", "fbmelgan"], "label": [0, 1, 1],
                            "seconds": [632.0, 449.0, 66.0]})  # fmt: skip
    found = findings.data_findings(summary, pd.Series([1, 1]), "melgan", "fbmelgan")
    assert "melgan (449 s" in found.markdown() and "fbmelgan (66 s)" in found.markdown()
    assert "10.5 minutes of real" in found.markdown() and "6.8 times as much" in found.markdown()
    metrics = {0: {"steps": 100, "n_train_frames": 660, "converged": False,
                   "best": {"val_eer": 0.45}}}  # fmt: skip
    cols = ["generator", "eer_mean", "eer_ci_low", "eer_ci_high"]
    rows = [["melgan", 0.1, 0.05, 0.2], ["pooled_unseen", 0.4, 0.3, 0.5]]
    table = pd.DataFrame(rows, columns=cols)
    text = findings.training_findings(metrics, table, "melgan", "dcnn").markdown()
    assert "did not learn" in text and "45.0 %" in text and "40.0 % (95 % CI 30.0–50.0 %)" in text
    wide = pd.DataFrame({"gmm": [0.138, 0.214]}, index=["clean", "shift 0.5 s"])
    text = findings.robustness_findings(wide, "clean", ["shift 0.5 s", "lowpass"]).markdown()
    assert "gmm 13.8 % → 21.4 %" in text and "lowpass" not in text


def test_tables_for_people():
    t = pd.DataFrame({"generator": ["a", "b"], "eer": [0.125, 0.5],
                      "eer_ci_low": [0.068, np.nan], "eer_ci_high": [0.2, np.nan]})  # fmt: skip
    assert findings.eer_with_ci(t) == ["12.5 (6.8–20.0)", "50.0"]
    md = findings.for_people(t.drop(columns=["eer_ci_low", "eer_ci_high"]), ["eer"],
                             {"eer": "EER %"})  # fmt: skip
    assert md.splitlines()[0].replace(" ", "") == "|generator|EER%|"
    assert "12.5" in md and "0.125" not in md and "| 50.0 " in md
    ov = pd.DataFrame({"run": ["x"], "seed": [0], "train_frames": [660], "best_val_eer": [0.045],
                       "converged": [True], "reason": ["ok"], "epochs": [3]})  # fmt: skip
    md = findings.overview_for_people(ov)
    assert "val. EER %" in md and "4.5" in md and "yes" in md and "reason" not in md

"""The targets of a generalising detector and the scorecard (hand-made tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpwave import scorecard

LETTERS = {"melgan": "B", "hifigan": "C", "kbpwg": "O", "wavenet": "U", "clarinet": "V"}


def _mini(eers: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"generator": list(eers), "eer": list(eers.values()),
                         "eer_ci_low": [e / 2 for e in eers.values()],
                         "eer_ci_high": [min(1.0, 2 * e) for e in eers.values()]})  # fmt: skip


def _speakers(det: str, vctk: float, tts: float) -> pd.DataFrame:
    return pd.DataFrame({"detector": det, "eer": [0.5, vctk, tts], "eer_ci_low": 0.0,
                         "eer_ci_high": 1.0,
                         "folder": ["vctk/melgan", "vctk/pooled", "tts/pooled"]})  # fmt: skip


def test_scorecard_reads_each_target_from_its_table():
    mini = {"a": _mini({"melgan": 0.01, "hifigan": 0.04, "kbpwg": 0.02, "wavenet": 0.1,
                        "clarinet": 0.3, "pooled_unseen": 0.9}),
            "b": _mini({"melgan": 0.2, "hifigan": 0.1, "kbpwg": 0.3, "wavenet": 0.5,
                        "clarinet": 0.5})}  # fmt: skip
    speakers = pd.concat([_speakers("a", 0.06, 0.02), _speakers("b", 0.14, 0.39)])
    perturbed = pd.DataFrame({"detector": ["a"] * 3 + ["b"] * 3,
                              "kind": ["clean", "mp3", "lowpass"] * 2,
                              "eer": [0.0, 0.1, 0.3, 0.9, 0.2, 0.2]})  # fmt: skip
    card = scorecard.scorecard(mini, LETTERS, speakers, perturbed)
    assert card.loc["a", "B–T worst"] == 0.04 and card.loc["a", "B–T worst folder"] == "hifigan"
    assert card.loc["b", "B–T worst folder"] == "kbpwg"  # O lies between B and T
    assert card.loc["a", "U–Z mean"] == pytest.approx(0.2)  # the pooled row has no letter
    assert card.loc["a", "perturbed mean"] == pytest.approx(0.2)  # clean left out
    assert card.loc["b", "VCTK pooled"] == 0.14 and card.loc["b", "TTS pooled"] == 0.39
    met = scorecard.verdicts(card, perturbed_limit=0.2)
    assert met.loc["a"].tolist() == [True, True, True, True, True]
    assert met.loc["b"].tolist() == [False, False, False, False, True]
    text = scorecard.markdown(card, met, 0.2)
    assert "| U–Z mean ≤ 20.0 % | 20.0 %, meets | 50.0 %, misses |" in text
    assert "| perturbed mean ≤ paper-stft's 20.0 % |" in text


def test_a_missing_pooled_row_is_an_error_naming_the_detector():
    with pytest.raises(ValueError, match="'tts'"):
        scorecard.scorecard({"a": _mini({"melgan": 0.1})}, LETTERS,
                            _speakers("a", 0.1, 0.1).iloc[:2], pd.DataFrame(
                                {"detector": [], "kind": [], "eer": []}))  # fmt: skip


def test_an_unmeasured_target_is_neither_met_nor_missed():
    card = pd.DataFrame({"VCTK pooled": [np.nan], "TTS pooled": [0.031], "B–T worst": [0.05],
                         "U–Z mean": [0.2], "perturbed mean": [0.21]}, index=["x"])  # fmt: skip
    met = scorecard.verdicts(card, perturbed_limit=0.208)
    assert pd.isna(met.loc["x", "VCTK pooled"])
    assert met.loc["x"].tolist()[1:] == [False, True, True, False]

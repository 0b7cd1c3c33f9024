"""gpwave.ablation: paired ablation tables and disagreements, on hand-computed scores."""

import numpy as np
import pandas as pd
from _detector_data import MeanDetector
from scipy.special import logit

from gpwave import ablation, report


class _ValueStore:
    """Frames of constant value; the index is what split_frames reads."""

    values = np.array([0.1, 0.2, 0.3, 0.4, 0.05, 0.5, 0.9])
    index = pd.DataFrame(
        {
            "row": range(7),
            "label": [0, 0, 1, 1, 1, 1, 1],
            "generator": ["ljspeech"] * 2 + ["melgan"] * 2 + ["pwg"] * 2 + ["melgan"],
            "utterance": ["u0", "u1", "u0", "u1", "u0", "u1", "u2"],
            "split": ["test"] * 6 + ["train"],
        }
    )

    def read(self, rows):
        return np.repeat(self.values[np.asarray(rows)][:, None], 64, 1).astype(np.float32)


def test_paired_ablation_compares_both_variants_seed_by_seed():
    pairs = {s: (MeanDetector(1.0), MeanDetector(-1.0)) for s in (0, 3)}
    table, scored = ablation.paired_ablation(pairs, _ValueStore(), "melgan", n_boot=20)
    assert list(table["seed"]) == [0, 0, 3, 3]
    t = table[table["seed"] == 0].set_index("test_frames")
    # seen: reals 0.1, 0.2 vs melgan 0.3, 0.4: A separates (EER 0), B inverts (EER 1)
    assert (t.loc["melgan", "eer_a"], t.loc["melgan", "eer_b"]) == (0.0, 1.0)
    assert t.loc["melgan", "difference"] == -1.0
    # unseen pool (pwg 0.05, 0.5): the ROC (0,0) (0,.5) (.5,.5) (1,.5) (1,1) for both
    assert t.loc[report.POOLED, ["eer_a", "eer_b", "difference"]].tolist() == [0.5, 0.5, 0.0]
    frames, a, b = scored[3]
    assert list(frames["row"]) == [0, 1, 2, 3, 4, 5]  # the test split only
    np.testing.assert_allclose(a, _ValueStore.values[:6], rtol=1e-6)
    np.testing.assert_allclose(b, -a)


def test_paired_ablation_limit_samples_frames_per_folder_with_the_seed():
    pairs = {1: (MeanDetector(1.0), MeanDetector(1.0))}
    table, scored = ablation.paired_ablation(pairs, _ValueStore(), "melgan", limit=1, n_boot=5)
    frames = scored[1][0]
    assert frames.groupby("generator").size().to_dict() == {"ljspeech": 1, "melgan": 1, "pwg": 1}
    assert (table["difference"] == 0).all()


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
    d = ablation.disagreements(a, b, frames)
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
    d = ablation.disagreements(logit([0.9, 0.8, 0.1]), logit([0.1, 0.3, 0.9]), frames)
    out = ablation.export_disagreements(d, _Store(), tmp_path, n=2)
    assert len(out) == 2
    x, sr = sf.read(out["clip"].iloc[0])
    assert sr == 8000 and len(x) == 800
    saved = pd.read_csv(tmp_path / "disagreements.csv")
    assert list(saved["score_b"]) == list(out["score_b"])

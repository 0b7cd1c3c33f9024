"""File-level detection (gpwave.detect): per-window scores, verdicts, silence, streaming."""

import numpy as np
import torch

from gpwave import detect


def test_detect_files_reports_short_files(tmp_path):
    import soundfile as sf

    from gpwave.models import Detector
    from gpwave.transforms import FeatureConfig

    det = Detector(FeatureConfig(), "linear", 22050).eval()
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(1000, dtype=np.float32), 22050)
    long = tmp_path / "long.wav"
    sf.write(long, np.random.default_rng(0).normal(0, 0.1, 22050 * 2 + 10), 22050)
    reps = detect.detect_files(det, [short, long], progress=False)
    assert reps[0].verdict == "error" and "shorter" in reps[0].error
    assert len(reps[1].scores) == 2 and reps[1].verdict in ("fake", "real")
    frames = torch.from_numpy(sf.read(long, dtype="float32")[0][: 2 * 22050].reshape(2, -1))
    np.testing.assert_allclose(reps[1].scores, det.fake_probability(frames).numpy(), rtol=1e-5)
    assert "short.wav" in str(reps[0]) and reps[1].to_dict()["file"] == str(long)

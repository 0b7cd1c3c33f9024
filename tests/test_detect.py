"""File-level detection (gpwave.detect): per-window scores, verdicts, silence, streaming."""

import os
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _signals import noise, write_wav

from gpwave import detect
from gpwave.constants import SILENCE_FLOOR_DBFS, SILENCE_RELATIVE_DB


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


class _EnergyDetector(torch.nn.Module):
    """A stand-in detector: fake probability 1 for a window above -60 dBFS, else 0.02.

    Like the released models, it scores quiet windows low, so that averaging silence
    into a file's score would pull a fake towards "real".
    """

    def __init__(self, rate: int = 8000, n: int = 8000):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.feature_config = SimpleNamespace(sample_rate=rate)
        self.n_samples = n

    def fake_probability(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.double().pow(2).mean(dim=1).sqrt()
        return torch.where(rms > 1e-3, 1.0, 0.02)


def _report(tmp_path, name, x, sr=8000, subtype="PCM_16", **kw):
    path = write_wav(tmp_path / name, x, sr, subtype=subtype)
    (rep,) = detect.detect_files(_EnergyDetector(), [path], progress=False, device="cpu", **kw)
    return rep


def test_scorable_windows_follow_the_documented_rule():
    # levels -20, -65 (45 dB below the loudest), -75 (below the floor), -59 dBFS, silence
    amps = [0.1, 10 ** (-65 / 20), 10 ** (-75 / 20), 10 ** (-39 / 20) * 0.1]
    frames = np.stack([np.full(16, a) for a in amps] + [np.zeros(16)])
    np.testing.assert_allclose(detect.window_dbfs(frames[:3]), [-20, -65, -75], atol=1e-9)
    assert detect.scorable_windows(frames).tolist() == [True, False, False, True, False]
    # the relative rule alone: a loud file makes -65 dBFS silent, a quiet one keeps it
    assert detect.scorable_windows(frames[1:2]).tolist() == [True]
    assert SILENCE_FLOOR_DBFS == -70.0 and SILENCE_RELATIVE_DB == 40.0


@pytest.mark.parametrize("pad", ["digital silence", "-80 dBFS noise"])
def test_padding_a_fake_with_silence_keeps_its_verdict(tmp_path, pad):
    fake = noise(3.0, sr=8000, amp=0.1)
    quiet = np.zeros(6 * 8000) if pad == "digital silence" else noise(6.0, 8000, 1, amp=1e-4)
    alone = _report(tmp_path, "fake.wav", fake, subtype="FLOAT")
    padded = _report(tmp_path, "padded.wav", np.concatenate([fake, quiet]), subtype="FLOAT")
    assert alone.verdict == "fake" and padded.verdict == "fake"
    assert alone.score == 1.0 and padded.score == 1.0 and alone.n_silent == 0
    assert padded.n_silent == 6 and padded.scores[3:] == [None] * 6
    assert "6 silent window(s) left out" in str(padded)
    assert padded.to_dict()["scores"][-1] is None


def test_an_all_silent_file_gets_no_verdict(tmp_path):
    rep = _report(tmp_path, "silence.wav", np.zeros(3 * 8000))
    assert rep.verdict is None and rep.error == "" and rep.n_silent == 3
    assert np.isnan(rep.score) and rep.to_dict()["score"] is None
    assert "no verdict: no window with speech energy" in str(rep)


def test_streamed_windows_equal_the_whole_file_decoded_at_once(tmp_path):
    from gpwave.data import frame_audio, load_audio

    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((44100 * 5 + 123, 2))).astype(np.float32)
    path = write_wav(tmp_path / "stereo44k.wav", x, 44100, subtype="FLOAT")
    whole = frame_audio(load_audio(path, 22050), 22050)
    for block in (1, 2, 64):
        parts = list(detect.stream_windows(path, 22050, 22050, block_windows=block))
        streamed = np.concatenate(parts)
        assert streamed.shape == whole.shape == (5, 22050)
        np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert max(len(p) for p in detect.stream_windows(path, 22050, 22050, block_windows=2)) <= 3


def test_eight_bit_input_is_scored_with_a_warning(tmp_path):
    rep = _report(tmp_path, "u8.wav", noise(2.0, 8000), subtype="PCM_U8")
    assert rep.verdict == "fake" and "low bit depth" in rep.warning and "8-bit" in rep.warning


def test_bad_thresholds_are_refused():
    for bad in (float("nan"), -1.0, 2.0):
        with pytest.raises(ValueError, match="threshold"):
            detect.detect_files(_EnergyDetector(), [], threshold=bad, progress=False)


def test_a_fifo_is_skipped_without_opening_and_the_next_file_is_scored(tmp_path):
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    good = write_wav(tmp_path / "good.wav", noise(2.0, 8000), 8000)

    def unblock():  # the old code blocks opening the FIFO; a writer releases it
        time.sleep(5)
        fd = os.open(fifo, os.O_RDWR)
        os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    t0 = time.monotonic()
    reps = detect.detect_files(_EnergyDetector(), [fifo, good], progress=False, device="cpu")
    assert time.monotonic() - t0 < 4
    assert "FIFO" in reps[0].error and "not a regular file" in reps[0].error
    assert reps[1].verdict == "fake"


def test_a_symlink_loop_is_named_as_such(tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    os.symlink(b, a)
    os.symlink(a, b)
    (rep,) = detect.detect_files(_EnergyDetector(), [a], progress=False, device="cpu")
    assert "symbolic link loop" in rep.error


def test_the_docstring_examples_run():
    import doctest

    result = doctest.testmod(detect, raise_on_error=False)
    assert result.attempted >= 1 and result.failed == 0

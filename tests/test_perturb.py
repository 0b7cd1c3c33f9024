"""Perturbations, each checked against a property measured on its output.

Levels, SNRs and spectra are measured here with numpy/scipy (never read back from the
module); bit rates from the encoded byte count and libsndfile's reading of the MP3 frame
headers; alignment from the cross-correlation peak.
"""

from __future__ import annotations

import io
from typing import get_args

import numpy as np
import pytest
import soundfile as sf
from _signals import SR, chirp, noise, tone
from scipy import signal

from gpwave import perturb
from gpwave.constants import PerturbationKind


def _db(y: np.ndarray, x: np.ndarray) -> float:
    """Level of ``y`` relative to ``x`` in dB (RMS, float64)."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    return 10 * np.log10(np.sum(y**2) / np.sum(x**2))


def _lag(x: np.ndarray, y: np.ndarray) -> int:
    """Lag of ``y`` behind ``x`` at the peak of their cross-correlation (scipy)."""
    xcorr = signal.correlate(y.astype(np.float64), x.astype(np.float64), method="fft")
    return int(signal.correlation_lags(len(y), len(x))[np.argmax(xcorr)])


def _peak_hz(y: np.ndarray, sr: int = SR) -> float:
    """Frequency of the largest Hann-windowed spectral peak, parabolically interpolated."""
    mag = np.log(np.abs(np.fft.rfft(y * np.hanning(len(y)))) + 1e-30)
    k = int(np.argmax(mag))
    delta = 0.5 * (mag[k - 1] - mag[k + 1]) / (mag[k - 1] - 2 * mag[k] + mag[k + 1])
    return (k + delta) * sr / len(y)


MID = slice(SR // 10, -SR // 10)  # away from the ends, where a cut tone is broadband


@pytest.mark.parametrize("db", [-24.0, -6.0, 0.0, 12.0])
def test_gain_changes_rms_by_the_db_asked(db):
    x = np.stack([chirp(), noise()])
    y = perturb.gain(x, db)
    assert y.dtype == np.float32 and y.shape == x.shape
    for row_y, row_x in zip(y, x, strict=True):
        assert _db(row_y, row_x) == pytest.approx(db, abs=1e-4)


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr", [40.0, 20.0, 0.0, -5.0])
def test_noise_reaches_the_target_snr(color, snr):
    x = np.stack([tone(1000.0), chirp(), 0.01 * noise(seed=3)])
    y = perturb.add_noise(x, snr, color, seed=7)
    assert y.dtype == np.float32 and y.shape == x.shape
    for row_y, row_x in zip(y, x, strict=True):
        assert -_db(row_y - row_x, row_x) == pytest.approx(snr, abs=0.1)


def test_noise_leaves_a_silent_row_silent():
    x = np.stack([np.zeros(1000, np.float32), tone(1000.0)[:1000]])
    y = perturb.add_noise(x, 10.0, seed=0)
    assert np.all(y[0] == 0) and not np.allclose(y[1], x[1])


@pytest.mark.parametrize(("color", "slope"), [("white", 0.0), ("pink", -10.0)])
def test_noise_spectral_slope_in_db_per_decade(color, slope):
    x = noise(seconds=20.0, seed=1)
    n = perturb.add_noise(x, 0.0, color, seed=2).astype(np.float64) - x
    freqs, psd = signal.welch(n, SR, nperseg=8192)
    band = (freqs >= 20) & (freqs <= 10000)
    fit = np.polyfit(np.log10(freqs[band]), 10 * np.log10(psd[band]), 1)[0]
    assert fit == pytest.approx(slope, abs=0.5)


def test_noise_is_deterministic_given_the_seed():
    x = chirp()
    a, b = perturb.add_noise(x, 10.0, "pink", seed=5), perturb.add_noise(x, 10.0, "pink", seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, perturb.add_noise(x, 10.0, "pink", seed=6))


@pytest.mark.parametrize("rate", [16000, 8000])
def test_resample_round_trip_removes_the_band_above_half_the_rate(rate):
    x = noise(seconds=2.0, seed=2)
    y = perturb.resample(x, SR, rate)
    assert y.shape == x.shape and y.dtype == np.float32
    freqs, p_x = signal.welch(x, SR, nperseg=2048)
    _, p_y = signal.welch(y, SR, nperseg=2048)
    above, below = freqs > rate / 2 + 100, freqs < 0.8 * rate / 2
    assert 10 * np.log10(p_y[above].sum() / p_x[above].sum()) < -60
    assert 10 * np.log10(p_y[below].sum() / p_x[below].sum()) == pytest.approx(0, abs=0.05)


@pytest.mark.parametrize("rate", [16000, 8000])
def test_resample_round_trip_keeps_a_1khz_tone(rate):
    x = np.stack([tone(1000.0), tone(1000.0, amp=0.1)])
    y = perturb.resample(x, SR, rate)
    assert np.max(np.abs(y - x)[:, MID]) < 1e-4
    assert _db(y, x) == pytest.approx(0, abs=0.01)


@pytest.mark.parametrize("cutoff", [2000.0, 4000.0, 8000.0])
def test_lowpass_stops_above_and_passes_below_the_cutoff(cutoff):
    above, below, at = tone(1.2 * cutoff), tone(0.8 * cutoff), tone(cutoff)
    assert _db(perturb.lowpass(above, SR, cutoff)[MID], above[MID]) < -40
    passed = perturb.lowpass(below, SR, cutoff)
    assert _db(passed, below) == pytest.approx(0, abs=0.5)
    assert np.max(np.abs(passed - below)[MID]) < 1e-3  # zero phase: no shift, no delay
    assert _db(perturb.lowpass(at, SR, cutoff)[MID], at[MID]) == pytest.approx(-6.02, abs=0.1)


def test_lowpass_filters_each_row_of_a_batch():
    x = np.stack([tone(1000.0), tone(6000.0)])
    y = perturb.lowpass(x, SR, 3000.0)
    assert y.shape == x.shape
    assert _db(y[0], x[0]) == pytest.approx(0, abs=0.5) and _db(y[1][MID], x[1][MID]) < -40


def test_shift_drops_a_prefix_so_frames_start_later():
    x = np.stack([chirp(seconds=2.0), noise(seconds=2.0)])
    y = perturb.shift(x, SR, 0.25)
    k = round(0.25 * SR)
    assert y.shape == (2, x.shape[-1] - k)
    np.testing.assert_array_equal(y[:, :SR], x[:, k : k + SR])  # the first 1 s frame


CODEC_CASES = [
    ("mp3", 128),
    ("mp3", 32),  # no gapless header fits such small frames: the delay is measured
    ("ogg-opus", 64),
    ("ogg-opus", 32),
    ("ogg-vorbis", 0.4),
]


@pytest.mark.parametrize(("codec", "setting"), CODEC_CASES)
def test_codec_round_trip_keeps_length_tone_and_alignment(codec, setting):
    x = np.stack([tone(1000.0, seconds=1.5), chirp(100.0, 4000.0, seconds=1.5)])
    y = perturb.codec_round_trip(x, SR, codec, setting)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _peak_hz(y[0][MID]) == pytest.approx(1000.0, abs=1.0)
    tolerance = 0.6 if codec == "mp3" else 0.3  # LAME/mpg123: MPEG-2 comes back -0.45 dB
    assert _db(y[0][MID], x[0][MID]) == pytest.approx(0, abs=tolerance)
    assert _lag(x[1], y[1]) == 0


def _kbps(codec: str, setting: float, x: np.ndarray) -> float:
    """Bit rate from the encoded byte count, measured here."""
    return 8 * len(perturb.encode(x, SR, codec, setting)) / (len(x) / SR) / 1000


def test_mp3_bit_rate_is_the_nominal_frame_rate():
    x = noise(seconds=3.0, seed=4)
    for kbps in (128, 96, 64, 48, 32):
        data = perturb.encode(x, SR, "mp3", kbps)
        with sf.SoundFile(io.BytesIO(data)) as f:
            assert f"bitrate        : {kbps} kbps" in f.extra_info
        achieved = 8 * len(data) / 3.0 / 1000
        assert achieved == pytest.approx(kbps, rel=0.05)
        assert perturb.encoded_kbps(x, SR, "mp3", kbps) == pytest.approx(achieved)


@pytest.mark.parametrize(
    ("codec", "settings", "rel"),
    [
        ("mp3", (128, 96, 64, 48, 32), 0.05),
        ("ogg-opus", (64, 32, 16, 8), 0.2),
        ("ogg-vorbis", (1.0, 0.6, 0.2, 0.0), None),
    ],
)
def test_achieved_bit_rate_falls_with_the_setting(codec, settings, rel):
    x = noise(seconds=3.0, seed=4)
    achieved = [_kbps(codec, s, x) for s in settings]
    assert all(a > b for a, b in zip(achieved, achieved[1:], strict=False)), achieved
    if rel is not None:  # a target bit rate: the achieved one is near it
        np.testing.assert_allclose(achieved, settings, rtol=rel)


def test_codec_goes_through_a_rate_it_supports():
    x = tone(1000.0, sr=11025)  # Opus has no 11.025 kHz: 12 kHz and back
    y = perturb.codec_round_trip(x, 11025, "ogg-opus", 32)
    assert y.shape == x.shape and _peak_hz(y[1000:-1000], 11025) == pytest.approx(1000, abs=1)


@pytest.mark.parametrize("kind", get_args(PerturbationKind))
def test_apply_every_kind_is_deterministic_and_changes_the_audio(kind):
    x = np.stack([chirp(seconds=1.2), noise(seconds=1.2, seed=9)])
    strongest = perturb.PERTURBATIONS[kind].grid[-1]
    y = perturb.apply(x, SR, kind, strongest, seed=3)
    np.testing.assert_array_equal(y, perturb.apply(x, SR, kind, strongest, seed=3))
    assert y.dtype == np.float32 and y.shape[0] == 2
    assert y.shape[1] == x.shape[1] or kind == "shift"
    assert not np.allclose(y, x[:, : y.shape[1]], atol=1e-3)


def test_the_table_covers_every_kind_with_a_grid():
    assert set(perturb.PERTURBATIONS) == set(get_args(PerturbationKind))
    for entry in perturb.PERTURBATIONS.values():
        assert entry.unit and len(entry.grid) >= 2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: perturb.apply(x, SR, "reverb", 1.0), "kind='reverb' is not one of"),
        (lambda x: perturb.add_noise(x, float("nan")), "snr_db=nan must be a finite"),
        (lambda x: perturb.add_noise(x, 10.0, "blue"), "color='blue' is not one of"),
        (lambda x: perturb.lowpass(x, SR, 12000.0), "Nyquist"),
        (lambda x: perturb.lowpass(x, SR, 0.0), "Nyquist"),
        (lambda x: perturb.gain(x, float("inf")), "db=inf must be a finite"),
        (lambda x: perturb.resample(x, SR, 0), "rate=0 must be positive"),
        (lambda x: perturb.shift(x, SR, 5.0), "drops"),
        (lambda x: perturb.shift(x, SR, -0.1), "drops"),
        (lambda x: perturb.encode(x, SR, "aac", 64), "codec='aac' is not one of"),
        (lambda x: perturb.encode(x, SR, "mp3", 100), r"takes kbit/s in \(8, 16"),
        (lambda x: perturb.encode(x, SR, "ogg-opus", 300), "6 to 256"),
        (lambda x: perturb.encode(x, SR, "ogg-vorbis", 1.5), r"quality in \[0, 1\]"),
        (lambda x: perturb.encode(np.stack([x, x]), SR, "mp3", 64), "one signal"),
        (lambda x: perturb.gain(x[None, None], 1.0), r"shape \(n,\) or \(b, n\)"),
    ],
)
def test_bad_options_are_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(tone(1000.0))


@pytest.mark.parametrize("n", [1, 3, 1000])
def test_lowpass_passes_dc_even_when_the_signal_is_shorter_than_the_filter(n):
    x = np.full(n, 0.25, np.float32)
    np.testing.assert_allclose(perturb.lowpass(x, SR, 100.0), x, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", get_args(PerturbationKind))
def test_non_finite_audio_is_refused_by_every_perturbation(kind, bad):
    x = tone(440.0, 0.5)
    x[100] = bad
    strength = perturb.PERTURBATIONS[kind].grid[0]
    with pytest.raises(ValueError, match="NaN or infinite"):
        perturb.apply(x, SR, kind, strength)


def test_a_huge_gain_is_a_clear_value_error_not_an_overflow():
    x = tone(440.0, 0.1)
    with pytest.raises(ValueError, match="overflows float32"):
        perturb.gain(x, 1e6)
    with pytest.raises(ValueError, match="overflows float32"):
        perturb.gain(x, 800.0)  # a finite factor, but samples beyond float32
    np.testing.assert_allclose(perturb.gain(x, -1e6), 0.0)  # underflow to silence is fine
